"""Test harness for the local Databricks runner: the runner as a subprocess on a free loopback port,
with an Airflow connection pointing at it. Shared by the runner's own tests and the submission tests.

Each runner has a workspace folder of its own, next to its state dir. The fixture jobs of the test
suite (``tests/*/fixtures/*.py``) are deployed into it under JOBS_ROOT at their path in the repository
(``{JOBS_ROOT}/tests/dev/fixtures/ok_job.py``), the way a bundle deploys files: the runner never reads the
checkout. ``Runner.deploy`` puts anything else there (a wheel, ...)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from airflow.providers.databricks.hooks.databricks import DatabricksHook, RunState

from dev.databricks_runner.secrets import SecretStore

REPO = Path(__file__).resolve().parents[2]
# environment variable of the jobs -> key in the secret scope, as dev/stack.sh loads them
PII_SECRETS = {"LAKEHOUSE_PII_HMAC_KEY": "pii_hmac_key", "LAKEHOUSE_PII_ENCRYPTION_KEY": "pii_encryption_key"}
JOBS_ROOT = "/Workspace/Shared/lakehouse-ref/files"  # where the fixture jobs are deployed in the workspace


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (a container's init may never reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def read_pid(path: Path, timeout: float = 30) -> int:
    return int(wait_until(lambda: path.exists() and path.read_text(), timeout, f"pid file {path}"))


class Runner:
    """The runner as a subprocess, plus an Airflow connection pointing at it."""

    def __init__(self, state_dir: Path, log_path: Path, workspace_dir: Path | None = None):
        self.state_dir, self.log_path = state_dir, log_path
        self.workspace_dir = workspace_dir or state_dir.with_name("workspace")
        self.workspace_dir.mkdir(parents=True, exist_ok=True)
        for job in REPO.glob("tests/*/fixtures/*.py"):
            self.deploy(job, f"{JOBS_ROOT}/{job.relative_to(REPO).as_posix()}")
        self.port = free_port()
        self.token = "dapi-test-" + secrets.token_hex(16)
        self.conn_id = f"runner_test_{self.port}"
        # a password without a login: the provider sends it as a bearer token
        connection = {"conn_type": "databricks", "host": "127.0.0.1", "port": self.port, "schema": "http"}
        connection["password"] = self.token
        self.conn_env = {f"AIRFLOW_CONN_{self.conn_id.upper()}": json.dumps(connection)}
        self.env = {**os.environ, "DATABRICKS_TOKEN": self.token, "RUNNER_MAX_CONCURRENT_RUNS": "1"}
        # the secret store (python -m dev.databricks_runner secrets put-secret), named so a RUNNER_SECRETS_FILE
        # of the caller's environment cannot point the runner at another one
        self.secrets_file = state_dir / "secrets.json"
        self.env["RUNNER_SECRETS_FILE"] = str(self.secrets_file)
        self.proc: subprocess.Popen | None = None

    def deploy(self, source: Path, workspace_path: str) -> Path:
        """Copy a file into the runner's workspace at ``workspace_path`` (``/Workspace/...``)."""
        assert workspace_path.startswith("/Workspace/"), workspace_path
        target = self.workspace_dir / workspace_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return target

    def load_pii_secrets(self) -> None:
        """What `dev/stack.sh start` does before it starts the runner: the PII keys of the environment (random
        per test session, tests/conftest.py) into the secret scope the runs reference, so a run built like the
        DAG's ({{secrets/lakehouse/pii_hmac_key}}, include/databricks_runs.py) starts as on a workspace."""
        store = SecretStore(self.secrets_file)
        scope = os.environ.get("DATABRICKS_SECRET_SCOPE") or "lakehouse"
        for name, key in PII_SECRETS.items():
            if os.environ.get(name):
                store.put(scope, key, os.environ[name])

    def start(self) -> Runner:
        self.load_pii_secrets()
        cmd = [sys.executable, "-m", "dev.databricks_runner", "serve", "--host", "127.0.0.1",
               "--port", str(self.port), "--state-dir", str(self.state_dir),
               "--workspace-dir", str(self.workspace_dir)]  # fmt: skip
        with self.log_path.open("a") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)

        def healthy() -> bool:
            assert self.proc.poll() is None, f"runner exited:\n{self.log_tail()}"
            try:
                return requests.get(self.url("/health"), timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(healthy, 30, "the runner's /health")
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def log_tail(self) -> str:
        return self.log_path.read_text()[-3000:]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url(path), headers=self.auth, timeout=5, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(self.url(path), headers=self.auth, timeout=5, **kwargs)

    def hook(self) -> DatabricksHook:
        return DatabricksHook(self.conn_id, retry_limit=3, retry_delay=0.5)

    def wait_terminal(self, run_id: int, timeout: float = 60) -> dict:
        hook = self.hook()

        def terminal():
            run = hook.get_run(run_id)
            return run if RunState(**run["state"]).is_terminal else None

        try:
            return wait_until(terminal, timeout, f"run {run_id} to end", interval=0.3)
        except AssertionError:
            raise AssertionError(f"run {run_id} did not end; runner log:\n{self.log_tail()}") from None


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runner")
    r = Runner(tmp / "state", tmp / "runner.log")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in r.conn_env.items():
            mp.setenv(key, value)
        r.start()
        yield r
        r.stop()


@pytest.fixture
def own_runner(tmp_path, monkeypatch):
    """A runner of the test's own, for tests that kill or restart it."""
    r = Runner(tmp_path / "state", tmp_path / "runner.log")
    for key, value in r.conn_env.items():
        monkeypatch.setenv(key, value)
    yield r
    r.stop()  # SIGTERM: the runner kills the jobs it still runs
