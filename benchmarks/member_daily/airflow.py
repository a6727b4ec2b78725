"""The benchmark's own Airflow, for the DAG contender (see PrivateAirflow)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmarks.harness.processes import start_ticks
from benchmarks.harness.stack import env
from benchmarks.member_daily.config import DAG_ID, STATE


class PrivateAirflow:
    """An Airflow of the benchmark's own, for the DAG contender: the stack's Airflow reads the `members`
    database and the `landing`/`lakehouse` buckets (its connection and settings are fixed when it starts),
    which the benchmark must not touch. This one runs the same DAG files, Airflow version, executor and
    settings as `dev/stack.sh start` (LocalExecutor, parallelism 4, deferrable Databricks operator, the same
    runner), with only what an environment changes: the connection `mysql_members` names the scratch
    database, LANDING_BUCKET / LAKEHOUSE_BUCKET the benchmark's buckets, JOBS_WHEEL_PATH its wheel; its own
    metadata database (`airflow_bench` on the stack's Postgres), ports and AIRFLOW_HOME (.local/bench-airflow);
    `[scheduler] use_job_schedule = False`, so it runs only the runs the benchmark triggers. Started once per
    benchmark run (not timed), stopped at the end."""

    COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")

    def __init__(self, port: int, overrides: dict[str, str]):
        self.port, self.home = port, STATE / "bench-airflow"
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_PII_")}
        self.env.update(overrides)
        db = (f"postgresql+psycopg2://airflow:{quote(env('AIRFLOW_METADATA_PASSWORD'), safe='')}@127.0.0.1:"
              f"{env('AIRFLOW_METADATA_PORT')}/airflow_bench")
        self.env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port + 704),  # 8091 -> 8795 (the stack's: 8793)
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(port + 705),
        })
        self.airflow = str(Path(sys.executable).with_name("airflow"))

    def _create_database(self) -> None:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=env("AIRFLOW_METADATA_PORT"), user="postgres",
                                password=env("AIRFLOW_METADATA_PASSWORD"), dbname="postgres")
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("SELECT 1 FROM pg_database WHERE datname = 'airflow_bench'")
        if not cur.fetchone():
            cur.execute("CREATE DATABASE airflow_bench OWNER airflow")
        conn.close()

    def _pidfile(self, component: str) -> Path:
        return STATE / "run" / f"bench-airflow-{component}.pid"

    def _stop_leftovers(self) -> None:
        """Stop the components a killed benchmark left running: only the processes recorded in our pid files
        whose start time is still the recorded one (a recycled pid belongs to someone else)."""
        for c in self.COMPONENTS:
            try:
                pid, started = self._pidfile(c).read_text().split()
                pid = int(pid)
            except (OSError, ValueError):
                continue
            if start_ticks(pid) == started:
                print(f"  stopping the benchmark's Airflow {c} left by an earlier run (pid {pid})", flush=True)
                try:
                    os.killpg(pid, signal.SIGTERM)
                    for _ in range(60):
                        if start_ticks(pid) != started:
                            break
                        time.sleep(0.5)
                    else:
                        os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self._pidfile(c).unlink(missing_ok=True)

    def start(self) -> None:
        import socket

        (STATE / "run").mkdir(parents=True, exist_ok=True)
        self._stop_leftovers()
        for port in (self.port, self.port + 704, self.port + 705):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    raise RuntimeError(f"port {port} is taken: the benchmark's Airflow needs it (--airflow-port)")
        self.home.mkdir(parents=True, exist_ok=True)
        (STATE / "logs").mkdir(parents=True, exist_ok=True)
        passwords = self.home / "passwords.json"
        passwords.write_text(json.dumps({env("AIRFLOW_ADMIN_USER"): env("AIRFLOW_ADMIN_PASSWORD")}))
        passwords.chmod(0o600)
        self._create_database()
        with open(STATE / "logs" / "bench-airflow-migrate.log", "ab") as log:
            for cmd in (["db", "migrate"], ["pools", "set", "lakehouse_member_tables", "1",
                                            "writers of the member Delta tables", "--include-deferred"]):
                if subprocess.run([self.airflow, *cmd], env=self.env, stdout=log, stderr=log).returncode:
                    raise RuntimeError(f"airflow {cmd[0]} failed: see .local/logs/bench-airflow-migrate.log")
        for c in self.COMPONENTS:
            args = [self.airflow, c] + (["--host", "127.0.0.1", "--port", str(self.port)] if c == "api-server" else [])
            log = open(STATE / "logs" / f"bench-airflow-{c}.log", "ab")  # noqa: SIM115 (kept open by the child)
            self.procs[c] = subprocess.Popen(args, env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                             start_new_session=True)
            self._pidfile(c).write_text(f"{self.procs[c].pid} {start_ticks(self.procs[c].pid)}\n")
        import requests

        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/api/v2/monitor/health", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs.values()):
                raise RuntimeError("the benchmark's Airflow did not start: see .local/logs/bench-airflow-*.log")
            time.sleep(2)
        from dev.airflow_api import AirflowApi

        self.api = AirflowApi(base_url=f"http://127.0.0.1:{self.port}")
        self.api.wait_for_dag(DAG_ID, timeout=300)
        # a run left by an interrupted benchmark would hold the DAG's one active slot (max_active_runs=1),
        # and the first load measured would count its wait as Airflow's (seen: 71 s)
        left = self.http("get", f"dags/{DAG_ID}/dagRuns", params={"state": ["queued", "running"]})
        left.raise_for_status()
        for run in left.json()["dag_runs"]:
            print(f"  failing {run['dag_run_id']}, left {run['state']} by an earlier benchmark", flush=True)
            self.http("patch", f"dags/{DAG_ID}/dagRuns/{run['dag_run_id']}", json={"state": "failed"}
                      ).raise_for_status()
        r = self.http("patch", f"dags/{DAG_ID}", json={"is_paused": False})
        r.raise_for_status()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values() if p.poll() is None]

    def http(self, method: str, path: str, **kwargs):
        import requests

        return requests.request(method, f"{self.api.base_url}/api/v2/{path}", headers=self.api._headers(),
                                timeout=60, **kwargs)

    def xcom(self, run_id: str, task_id: str, key: str) -> Any:
        r = self.http("get", f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
                      params={"deserialize": "true", "stringify": "false"})
        r.raise_for_status()
        value = r.json()["value"]
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                import ast

                value = ast.literal_eval(value)
        return value

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 30
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        for c in self.procs:
            self._pidfile(c).unlink(missing_ok=True)
