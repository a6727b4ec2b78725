"""Drive the running Airflow the way a user does: `airflow dags trigger`, then watch the run through the
REST API the web UI uses. Shared by `make demo` (dev/demo.py) and the end-to-end test."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable

import requests

TERMINAL = {"success", "failed"}


class AirflowApi:
    def __init__(self, base_url: str | None = None, user: str | None = None, password: str | None = None):
        self.base_url = base_url or f"http://127.0.0.1:{os.environ.get('AIRFLOW_API_PORT', '8080')}"
        self._user = user or os.environ["AIRFLOW_ADMIN_USER"]
        self._password = password or os.environ["AIRFLOW_ADMIN_PASSWORD"]
        self._token: str | None = None

    def token(self) -> str:
        """The admin's JWT from the auth manager's /auth/token, fetched once."""
        if self._token is None:
            r = requests.post(f"{self.base_url}/auth/token", timeout=30,
                              json={"username": self._user, "password": self._password})
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return self._token

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def get(self, path: str) -> requests.Response:
        return requests.get(f"{self.base_url}/api/v2/{path}", headers=self._headers(), timeout=30)

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Until the dag-processor has parsed the DAG and the API knows it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.get(f"dags/{dag_id}")
            if r.status_code == 200:
                return
            time.sleep(3)
        raise TimeoutError(f"DAG {dag_id} did not appear in Airflow within {timeout:.0f}s "
                           "(see .local/logs/airflow-dag-processor.log)")

    def run_state(self, dag_id: str, run_id: str) -> str:
        r = self.get(f"dags/{dag_id}/dagRuns/{run_id}")
        r.raise_for_status()
        return r.json()["state"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        r = self.get(f"dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        r.raise_for_status()
        return {ti["task_id"]: ti["state"] for ti in r.json()["task_instances"]}

    def wait_until_idle(self, dag_id: str, settle: float = 10, timeout: float = 900) -> None:
        """Until the DAG has no queued or running run and none appears for `settle` seconds (unpausing a
        scheduled DAG makes the scheduler create the latest interval's run within a few seconds)."""
        deadline, quiet_since = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            r = self.get(f"dags/{dag_id}/dagRuns?state=queued&state=running")
            r.raise_for_status()
            if r.json()["total_entries"]:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle:
                return
            time.sleep(2)
        raise TimeoutError(f"{dag_id} still has active runs after {timeout:.0f}s")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 900,
                     progress: Callable[[dict], None] | None = None) -> str:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            tasks = self.task_states(dag_id, run_id)
            if progress and tasks != last:
                progress(tasks)
                last = tasks
            if state in TERMINAL:
                return state
            time.sleep(3)
        raise TimeoutError(f"run {run_id} of {dag_id} still not finished after {timeout:.0f}s")


def airflow_cli(*args: str) -> str:
    """Run an `airflow` CLI command (as a user would in a shell); return its stdout."""
    done = subprocess.run(["airflow", *args], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def trigger(dag_id: str, run_id: str, conf: dict | None = None) -> None:
    airflow_cli("dags", "unpause", dag_id)
    airflow_cli("dags", "trigger", dag_id, "--run-id", run_id, *(["--conf", json.dumps(conf)] if conf else []))
