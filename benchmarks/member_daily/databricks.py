"""The local Databricks runner as the benchmark uses it: runs/submit and runs/get, a task run's folder and
driver log, and the jobs wheel built from this checkout."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness.results import REPO
from benchmarks.harness.stack import env
from benchmarks.member_daily.config import STATE, STEP_LINE


class DatabricksRunner:
    """The local Databricks runner's Jobs API (the stack's: shared with whoever else submits runs)."""

    def __init__(self):
        import requests

        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {env('DATABRICKS_TOKEN')}"
        self.base = f"http://127.0.0.1:{env('DATABRICKS_RUNNER_PORT', '8765')}/api/2.2/jobs"
        self.state_dir = STATE / "databricks_runner"
        self.workspace = STATE / "workspace"
        pid_file = STATE / "run" / "databricks-runner.pid"
        self.pid = int(pid_file.read_text()) if pid_file.exists() else None

    def submit(self, payload: dict) -> int:
        r = self.http.post(f"{self.base}/runs/submit", json=payload, timeout=60)
        r.raise_for_status()
        return r.json()["run_id"]

    def get(self, run_id: int) -> dict:
        r = self.http.get(f"{self.base}/runs/get", params={"run_id": run_id}, timeout=60)
        r.raise_for_status()
        return r.json()

    def wait(self, run_id: int, poll: float = 0.5, timeout: float = 4 * 3600) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.get(run_id)
            if run["state"]["life_cycle_state"] in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR"):
                return run
            time.sleep(poll)
        raise TimeoutError(f"Databricks run {run_id} not finished after {timeout:.0f} s")

    def task_dir(self, task_run_id: int) -> str:
        return str((self.state_dir / "tasks" / str(task_run_id)).resolve())

    def facts(self, run: dict) -> dict:
        """The run's own durations, and the job's step times from its driver log."""
        task = run["tasks"][0]
        steps: dict[str, float] = {}
        log = Path(self.task_dir(task["run_id"])) / "driver.log"
        try:
            for m in STEP_LINE.finditer(log.read_text(errors="replace")):
                steps[m[1]] = round(steps.get(m[1], 0.0) + float(m[2]), 1)
        except OSError:
            pass
        execution = task["execution_duration"] / 1000
        return {"run_id": run["run_id"], "task_run_id": task["run_id"], "state": run["state"].get("result_state"),
                "run_s": run["run_duration"] / 1000, "queue_s": run["queue_duration"] / 1000,
                "setup_s": task["setup_duration"] / 1000, "execution_s": execution, "job_steps_s": steps,
                # spark-submit, the JVM, the SparkSession, imports and shutdown: what the job's steps do not cover
                "start_and_stop_s": round(execution - sum(steps.values()), 1) if steps else None,
                "message": run["state"].get("state_message")}


# a daily run whose batch changed nothing starts no Databricks run (dags/member_pipeline.py, choose_run)
NO_RUN = {"run_id": None, "task_run_id": None, "state": "SKIPPED", "run_s": 0.0, "queue_s": 0.0, "setup_s": 0.0,
          "execution_s": 0.0, "job_steps_s": {}, "start_and_stop_s": None, "message": "no changes: no run"}


def build_jobs_wheel(runner: DatabricksRunner, stamp: str) -> dict:
    """Build the spark_jobs wheel from this checkout and put it in the runner's workspace under a path of the
    benchmark's own (as `dev/stack.sh deploy` does for the stack's), so that the DAG and the job alone run
    the same code, whatever the stack's deployed wheel is meanwhile."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(Path(sys.executable).with_name("uv")), "build", "-q", "--wheel", str(REPO / "spark_jobs"),
                        "-o", tmp], check=True, capture_output=True)
        [wheel] = Path(tmp).glob("*.whl")
        path = f"/Workspace/Shared/lakehouse-ref-bench/{stamp}/{wheel.name}"
        target = runner.workspace / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(wheel, target)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "spark_jobs"], cwd=REPO, capture_output=True,
                           text=True).stdout.strip()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    return {"path": path, "sha256": hashlib.sha256(target.read_bytes()).hexdigest(), "commit": commit,
            "spark_jobs_uncommitted_changes": bool(dirty)}
