"""How the DAGs submit Databricks runs (include/databricks_submit.py, include/databricks_runs.py), driven
through the real provider operator and trigger against the local runner (dev/databricks_runner).

- Whole tasks run under `dag.test()` in a subprocess (tests/include/fixtures/submission_dag.py) with its own
  AIRFLOW_HOME and SQLite metadata DB: deferrable tasks really defer, and dag.test() runs their trigger
  in-process, then resumes them; failed tries are retried as the scheduler would.
- The triggerer's kill path runs the provider's trigger inside Airflow's own `TriggerRunner`.
- API faults: a closed port (runner down) and a stdlib HTTP stub on loopback answering 500 / 429.
Every job is a plain Python file run by spark-submit (tests/include/fixtures/submission_job.py): no Spark
session is started, each run costs ~3 s.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from airflow.providers.common.compat.sdk import AirflowException
from airflow.providers.databricks.hooks.databricks_base import DatabricksApiError
from airflow.providers.databricks.triggers.databricks import DatabricksExecutionTrigger
from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason
from airflow.sdk.exceptions import TaskDeferralTimeout, TaskDeferred

from include.databricks_runs import wheel_run
from include.databricks_submit import DatabricksSubmitRun, idempotency_token
from include.settings import DatabricksSettings
from tests.dev.runner_harness import (  # noqa: F401 (own_runner, runner: fixtures)
    JOBS_ROOT,
    REPO,
    Runner,
    alive,
    free_port,
    own_runner,
    read_pid,
    runner,
    wait_until,
)

FIXTURES = Path(__file__).parent / "fixtures"
JOB_FILE = f"{JOBS_ROOT}/tests/include/fixtures/submission_job.py"
SUMMARY = "SUMMARY "


# --- helpers --------------------------------------------------------------------------------------
def run_json(*parameters, timeout_seconds: int = 0) -> dict:
    """The run JSON the DAGs build (job cluster, tags), with the fixture job as its task: a plain
    spark_python_task without the jobs wheel, so these tests exercise submission, not the jobs."""
    db = DatabricksSettings.from_env({"DATABRICKS_RUN_TIMEOUT_SECONDS": str(timeout_seconds)})
    run = wheel_run("submission_job", "unused", {}, run_name="submission test", db=db)
    task = run["tasks"][0]
    del task["python_wheel_task"], task["libraries"]
    task["spark_python_task"] = {"python_file": JOB_FILE, "parameters": [os.fspath(p) for p in parameters]}
    return run


def runner_records(runner: Runner) -> list[dict]:
    """The runner's run records, oldest first (each holds the idempotency token it was submitted with)."""
    paths = sorted((runner.state_dir / "runs").glob("*.json"), key=lambda p: int(p.stem))
    return [json.loads(p.read_text()) for p in paths]


def run_record(runner: Runner, run_id: int) -> dict:
    return json.loads((runner.state_dir / "runs" / f"{run_id}.json").read_text())


def result(record: dict) -> tuple[str, str | None]:
    return record["state"]["life_cycle_state"], record["state"].get("result_state")


def fake_context(dag_id: str, run_id: str = "manual__1", try_number: int = 1) -> dict:
    """What the operator reads from a task's context outside a task runner: ti ids and XCom."""
    xcom: dict[str, object] = {}
    ti = SimpleNamespace(
        dag_id=dag_id, run_id=run_id, task_id="submit", map_index=-1, try_number=try_number, stats_tags={},
        xcom_push=lambda key, value: xcom.__setitem__(key, value),
        xcom_pull=lambda task_ids=None, key=None: xcom.get(key),
    )
    return {"ti": ti, "xcom": xcom}


@pytest.fixture
def idle_runner(runner):
    """The module's runner; runs a test leaves active are cancelled (one run slot: they would block)."""
    yield runner
    hook = runner.hook()
    for run in hook._do_api_call(("GET", "2.2/jobs/runs/list"), {"active_only": True}).get("runs", []):
        hook.cancel_run(run["run_id"])


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    """An AIRFLOW_HOME of our own with a migrated SQLite DB: dag.test() never touches the stack's Postgres."""
    home = tmp_path_factory.mktemp("airflow_home")
    (home / "dags").mkdir()
    shutil.copy(FIXTURES / "submission_dag.py", home / "dags")
    subprocess.run([Path(sys.executable).parent / "airflow", "db", "migrate"], env=airflow_env(home),
                   check=True, capture_output=True, timeout=120)
    return home


def airflow_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    return env | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(REPO),
    }


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_leftover_dag_test():
    """A test that fails half-way leaves no dag.test() process behind."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


class DagTest:
    """`python submission_dag.py` (dag.test()) in a subprocess; its output holds the task log."""

    def __init__(self, home: Path, runner: Runner, out: Path, dag_id: str, run: dict, *, deferrable: bool,
                 **options):
        config = {"dag_id": dag_id, "conn_id": runner.conn_id, "json": run, "deferrable": deferrable}
        config |= options
        env = airflow_env(home) | runner.conn_env | {"SUBMISSION_TEST": json.dumps(config)}
        self.out = out
        with out.open("w") as f:
            self.proc = subprocess.Popen([sys.executable, str(home / "dags" / "submission_dag.py")], env=env,
                                         stdout=f, stderr=subprocess.STDOUT)
        STARTED.append(self.proc)

    def wait(self, timeout: float = 120) -> tuple[dict, str]:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"dag.test() did not end:\n{self.out.read_text()[-5000:]}") from None
        output = self.out.read_text()
        lines = [line for line in output.splitlines() if line.startswith(SUMMARY)]
        assert lines, f"dag.test() printed no summary:\n{output[-5000:]}"
        return json.loads(lines[-1][len(SUMMARY) :]), output


def dag_test(home, runner, tmp_path, dag_id, run, **kwargs) -> tuple[dict, str]:
    return DagTest(home, runner, tmp_path / "dag_test.log", dag_id, run, **kwargs).wait()


# --- unit: the pieces ---------------------------------------------------------------------------
@pytest.mark.unit
def test_idempotency_token_names_one_try_of_one_task_instance():
    ids = ("member_pipeline", "scheduled__2026-11-26T00:00:00+00:00", "merge_members", -1, 1)
    token = idempotency_token(*ids)
    assert token == idempotency_token(*ids) and len(token) == 64  # Databricks' limit
    for i, other in enumerate(("other_dag", "manual__x", "other_task", 0, 2)):
        changed = list(ids)
        changed[i] = other
        assert idempotency_token(*changed) != token, f"component {i} does not change the token"


@pytest.mark.unit
def test_deferral_is_bounded_by_execution_timeout():
    operator = DatabricksSubmitRun(task_id="t", json=run_json(), execution_timeout=dt.timedelta(minutes=7))
    trigger = DatabricksExecutionTrigger(run_id=1, databricks_conn_id="unused")
    with pytest.raises(TaskDeferred) as deferred:
        operator.defer(trigger=trigger, method_name="execute_complete")
    assert deferred.value.timeout == dt.timedelta(minutes=7)


# --- whole tasks under dag.test(): both modes ------------------------------------------------------
@pytest.mark.integration
@pytest.mark.timeout(90)
def test_deferrable_success_links_the_run_page(idle_runner, airflow_home, tmp_path):
    runner, out = idle_runner, tmp_path / "out.json"
    run = run_json("ok", out, "x")
    summary, log = dag_test(airflow_home, runner, tmp_path, "submit_ok", run, deferrable=True)

    assert summary["tries"] == {"1": "success"}, log[-5000:]
    assert "Pausing task as DEFERRED" in log and "running trigger in line" in log  # it really deferred
    assert json.loads(out.read_text()) == ["x"]
    run_id = summary["xcom"]["run_id"]
    record, dag_run_id = run_record(runner, run_id), summary["dag_run_id"]
    assert result(record) == ("TERMINATED", "SUCCESS")
    assert record["idempotency_token"] == idempotency_token("submit_ok", dag_run_id, "submit", -1, 1)
    # json is rendered at execution time: the cluster is tagged with the task that paid for it
    tags = record["tasks"][0]["spec"]["new_cluster"]["custom_tags"]
    assert tags["airflow_dag_id"] == "submit_ok" and tags["airflow_task_id"] == "submit"
    # the task's extra link "See Databricks Job Run" is the run page, and the page serves the run
    page_url = runner.url(f"/runs/{run_id}")
    assert summary["extra_links"] == ["See Databricks Job Run"]
    assert summary["xcom"]["run_page_url"] == summary["xcom"]["_link_DatabricksJobRunLink"] == page_url
    assert "TERMINATED / SUCCESS" in requests.get(page_url, timeout=5).text


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_synchronous_failure_carries_the_spark_exception(idle_runner, airflow_home, tmp_path):
    message = "member batch extract_date=2026-11-26 is corrupt"
    summary, log = dag_test(airflow_home, idle_runner, tmp_path, "submit_fail", run_json("fail", message),
                            deferrable=False)

    assert summary["tries"] == {"1": "failed"}, log[-5000:]
    assert "Pausing task as DEFERRED" not in log  # polled from the worker
    # the task's failure message (logged with the traceback) names the job's exception
    failure = [line for line in log.splitlines() if "submit failed with terminal state" in line]
    assert failure and f"RuntimeError: {message}" in failure[0], log[-5000:]
    assert "'result_state': 'FAILED'" in failure[0]
    assert result(run_record(idle_runner, summary["xcom"]["run_id"])) == ("INTERNAL_ERROR", "FAILED")


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_failed_try_is_retried_with_a_new_run(idle_runner, airflow_home, tmp_path):
    runner, marker = idle_runner, tmp_path / "marker"
    before = len(runner_records(runner))
    run = run_json("flaky", marker, "first attempt fails")
    summary, log = dag_test(airflow_home, runner, tmp_path, "submit_retry", run, deferrable=True, retries=1)

    assert summary["tries"]["2"] == "success" and summary["tries"]["1"] != "success", log[-5000:]
    assert "ValueError: first attempt fails" in log  # try 1's failure message
    first, second = runner_records(runner)[before:]
    assert result(first) == ("INTERNAL_ERROR", "FAILED") and result(second) == ("TERMINATED", "SUCCESS")
    assert second["run_id"] == summary["xcom"]["run_id"]
    # one token per try: the retry was not handed the failed run back
    dag_run_id = summary["dag_run_id"]
    assert first["idempotency_token"] == idempotency_token("submit_retry", dag_run_id, "submit", -1, 1)
    assert second["idempotency_token"] == idempotency_token("submit_retry", dag_run_id, "submit", -1, 2)


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_run_timeout_ends_timedout_and_fails_the_task(idle_runner, airflow_home, tmp_path):
    pid_file = tmp_path / "pid"
    run = run_json("sleep", pid_file, "120", timeout_seconds=4)
    summary, log = dag_test(airflow_home, idle_runner, tmp_path, "submit_timeout", run, deferrable=True)

    assert summary["tries"] == {"1": "failed"}, log[-5000:]
    assert "'result_state': 'TIMEDOUT'" in log
    assert result(run_record(idle_runner, summary["xcom"]["run_id"])) == ("TERMINATED", "TIMEDOUT")
    wait_until(lambda: not alive(read_pid(pid_file)), 10, "the job's process to be gone")


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_airflow_timeout_cancels_the_run(idle_runner, airflow_home, tmp_path):
    """Synchronous mode: execution_timeout fires in the worker, on_kill cancels the run."""
    pid_file = tmp_path / "pid"
    run = run_json("sleep", pid_file, "120")
    summary, log = dag_test(airflow_home, idle_runner, tmp_path, "submit_task_timeout", run,
                            deferrable=False, execution_timeout=8)

    assert summary["tries"] == {"1": "failed"}, log[-5000:]
    assert "AirflowTaskTimeout" in log and "was requested to be cancelled" in log
    assert result(run_record(idle_runner, summary["xcom"]["run_id"])) == ("TERMINATED", "CANCELED")
    wait_until(lambda: not alive(read_pid(pid_file)), 10, "the job's process to be gone")


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_deferral_timeout_cancels_the_run(idle_runner, tmp_path):
    """Deferrable mode: the deferral carries execution_timeout; when it expires the run is cancelled."""
    runner = idle_runner
    operator = DatabricksSubmitRun(
        task_id="submit", databricks_conn_id=runner.conn_id, json=run_json("sleep", tmp_path / "pid", "120"),
        deferrable=True, polling_period_seconds=1, execution_timeout=dt.timedelta(minutes=3),
    )
    context = fake_context("deferral_timeout")
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    assert deferred.value.timeout == dt.timedelta(minutes=3)
    run_id = context["xcom"]["run_id"]
    assert deferred.value.trigger.run_id == run_id

    # what the scheduler sends back when the deferral's deadline passes
    timeout = {"error": TriggerFailureReason.TRIGGER_TIMEOUT}
    with pytest.raises(TaskDeferralTimeout):
        operator.resume_execution(next_method=TRIGGER_FAIL_REPR, next_kwargs=timeout, context=context)
    assert result(runner.wait_terminal(run_id, timeout=20)) == ("TERMINATED", "CANCELED")


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_killing_a_synchronous_task_cancels_the_run(idle_runner, airflow_home, tmp_path):
    pid_file = tmp_path / "pid"
    task = DagTest(airflow_home, idle_runner, tmp_path / "dag_test.log", "submit_kill",
                   run_json("sleep", pid_file, "120"), deferrable=False)
    job_pid = read_pid(pid_file, timeout=60)
    task.proc.send_signal(signal.SIGTERM)  # what the supervisor sends a task it kills
    summary, log = task.wait()

    assert "was requested to be cancelled" in log, log[-5000:]
    assert summary["tries"] == {"1": "failed"}
    assert result(run_record(idle_runner, summary["xcom"]["run_id"])) == ("TERMINATED", "CANCELED")
    wait_until(lambda: not alive(job_pid), 10, "the job's process to be gone")


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_killing_a_deferred_task_cancels_the_run(idle_runner, tmp_path):
    """A user marks a deferred task failed: the triggerer cancels its trigger; on_kill cancels the run."""
    from airflow.jobs.triggerer_job_runner import TriggerRunner

    runner = idle_runner
    hook = runner.hook()
    run_id = hook.submit_run(run_json("sleep", tmp_path / "pid", "120"))
    trigger = DatabricksExecutionTrigger(
        run_id=run_id, databricks_conn_id=runner.conn_id, polling_period_seconds=1, retry_limit=3,
        retry_delay=0.5,
    )

    async def run_then_kill():
        triggers = TriggerRunner()
        triggers.triggers[1] = {"name": "databricks", "events": 0, "is_watcher": False}
        task = asyncio.create_task(triggers.run_trigger(1, trigger))
        triggers.triggers[1]["task"] = task
        while hook.get_run_state(run_id).life_cycle_state != "RUNNING":
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # the trigger is polling
        triggers.to_cancel.append(1)  # what the triggerer does when the task is no longer deferred
        await triggers.cancel_triggers()
        with pytest.raises(asyncio.CancelledError):
            await task
        return triggers.events

    assert not asyncio.run(run_then_kill())  # no event: the task was killed, not finished
    assert result(runner.wait_terminal(run_id, timeout=20)) == ("TERMINATED", "CANCELED")


@pytest.mark.integration
@pytest.mark.timeout(150)
def test_runner_restart_during_a_run_fails_the_try_and_the_retry_succeeds(own_runner, airflow_home, tmp_path):
    runner, pid_file = own_runner.start(), tmp_path / "pid"
    task = DagTest(airflow_home, runner, tmp_path / "dag_test.log", "submit_restart",
                   run_json("sleep", pid_file, "4"), deferrable=True, retries=1)
    first_pid = read_pid(pid_file, timeout=60)
    runner.stop(signal.SIGTERM)
    time.sleep(2.5)  # longer than a poll period: the trigger's polls fail to connect, the hook retries them
    runner.start()
    summary, log = task.wait()

    assert summary["tries"]["2"] == "success" and summary["tries"]["1"] != "success", log[-5000:]
    assert "Attempt 1 API Request to Databricks failed" in log  # the hook retried through the restart
    assert "was stopped while this run was in flight" in log  # try 1's failure message
    first, second = runner_records(runner)
    assert result(first) == ("INTERNAL_ERROR", "FAILED") and result(second) == ("TERMINATED", "SUCCESS")
    assert first["idempotency_token"] != second["idempotency_token"]
    assert not alive(first_pid)


# --- the same try twice, and API faults -------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.timeout(60)
def test_same_try_gets_the_same_run_and_a_retry_a_new_one(idle_runner, tmp_path):
    """A try executed twice (e.g. after a scheduler restart) reattaches; the next try does not."""

    def submit(try_number: int) -> int:
        run = run_json("sleep", tmp_path / "pid", "120")
        operator = DatabricksSubmitRun(task_id="submit", databricks_conn_id=idle_runner.conn_id, json=run,
                                       deferrable=True)
        with pytest.raises(TaskDeferred):
            operator.execute(fake_context("same_try", try_number=try_number))
        return operator.run_id

    first = submit(1)
    assert submit(1) == first
    assert submit(2) != first
    assert len({r["run_id"] for r in runner_records(idle_runner)[-2:]}) == 2


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_wrong_token_fails_at_once_with_permission_denied(idle_runner, monkeypatch):
    conn = json.loads(idle_runner.conn_env[f"AIRFLOW_CONN_{idle_runner.conn_id.upper()}"])
    bad = conn | {"password": "wrong"}
    monkeypatch.setenv("AIRFLOW_CONN_RUNNER_WRONG_TOKEN", json.dumps(bad))
    operator = DatabricksSubmitRun(task_id="submit", databricks_conn_id="runner_wrong_token", json=run_json(),
                                   databricks_retry_limit=3, databricks_retry_delay=5)
    started = time.monotonic()
    with pytest.raises(DatabricksApiError) as err:
        operator.execute(fake_context("wrong_token"))
    assert err.value.http_status_code == 403 and "PERMISSION_DENIED" in str(err.value)
    assert time.monotonic() - started < 3  # not retried: a wrong token does not get better


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_runner_down_is_retried_then_fails_clearly(monkeypatch):
    port = free_port()  # nothing listens there
    conn = {"conn_type": "databricks", "host": "127.0.0.1", "port": port, "schema": "http", "password": "t"}
    monkeypatch.setenv("AIRFLOW_CONN_RUNNER_DOWN", json.dumps(conn))
    operator = DatabricksSubmitRun(task_id="submit", databricks_conn_id="runner_down", json=run_json(),
                                   databricks_retry_limit=3, databricks_retry_delay=0.1)
    started = time.monotonic()
    with pytest.raises(AirflowException, match="API requests to Databricks failed 3 times") as err:
        operator.execute(fake_context("runner_down"))
    assert "Connection refused" in str(err.value)
    assert time.monotonic() - started >= 3  # waited 1 s and 2 s between the attempts


class Stub:
    """A Jobs API stand-in on loopback that answers from a script: per endpoint, a list of
    (status, body) answers; the last one repeats. Records every request."""

    def __init__(self, script: dict[str, list[tuple[int, dict]]]):
        self.script, self.requests = script, []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                endpoint = self.path.split("?")[0].split("/api/2.2/")[-1]
                stub.requests.append((endpoint, body))
                answers = stub.script.get(endpoint, [(404, {"error_code": "ENDPOINT_NOT_FOUND"})])
                status, payload = answers.pop(0) if len(answers) > 1 else answers[0]
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.conn = {"conn_type": "databricks", "host": "127.0.0.1", "port": self.server.server_port,
                     "schema": "http", "password": "stub-token"}

    def calls(self, endpoint: str) -> list[dict]:
        return [body for e, body in self.requests if e == endpoint]


@pytest.fixture
def stub(monkeypatch):
    stubs = []

    def make(script):
        stubs.append(Stub(script))
        monkeypatch.setenv("AIRFLOW_CONN_STUB", json.dumps(stubs[-1].conn))
        return stubs[-1]

    yield make
    for s in stubs:
        s.server.shutdown()


SUCCESS = {
    "run_id": 7, "job_id": 8, "run_page_url": "http://stub/runs/7", "tasks": [],
    "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""},
}
BUSY = (429, {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"})
BROKEN = (500, {"error_code": "INTERNAL_ERROR", "message": "backend unavailable"})


@pytest.mark.integration
@pytest.mark.timeout(60)
@pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "synchronous"])
def test_429_is_retried_with_the_same_idempotency_token(stub, deferrable):
    api = stub({"jobs/runs/submit": [BUSY, BUSY, (200, {"run_id": 7})], "jobs/runs/get": [(200, SUCCESS)]})
    operator = DatabricksSubmitRun(task_id="submit", databricks_conn_id="stub", json=run_json(),
                                   deferrable=deferrable, durable=False,
                                   databricks_retry_limit=3, databricks_retry_delay=0.1)
    context = fake_context("busy")
    operator.execute(context)  # the run is already finished: succeeds without deferring

    submits, token = api.calls("jobs/runs/submit"), idempotency_token("busy", "manual__1", "submit", -1, 1)
    assert len(submits) == 3
    # had a rejected submit reached Databricks after all, the retry would get that run, not a second one
    assert {s["idempotency_token"] for s in submits} == {token}
    assert context["xcom"]["run_page_url"] == "http://stub/runs/7"


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_500_is_retried_then_fails_clearly(stub):
    api = stub({"jobs/runs/submit": [BROKEN]})
    operator = DatabricksSubmitRun(task_id="submit", databricks_conn_id="stub", json=run_json(),
                                   databricks_retry_limit=3, databricks_retry_delay=0.1)
    with pytest.raises(AirflowException, match="API requests to Databricks failed 3 times") as err:
        operator.execute(fake_context("broken"))
    assert "500" in str(err.value)
    assert len(api.calls("jobs/runs/submit")) == 3


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_trigger_retries_polls_then_fails_clearly(stub):
    """The deferred side: the trigger's async client retries 429 and 500 the same way."""

    async def first_event():
        trigger = DatabricksExecutionTrigger(run_id=7, databricks_conn_id="stub", polling_period_seconds=0.1,
                                             retry_limit=3, retry_delay=0.1)
        async for event in trigger.run():
            return event.payload

    api = stub({"jobs/runs/get": [BUSY, BUSY, (200, SUCCESS)]})
    event = asyncio.run(first_event())
    assert json.loads(event["run_state"])["result_state"] == "SUCCESS"
    assert len(api.calls("jobs/runs/get")) == 4  # two 429s, then the state, then the run

    api = stub({"jobs/runs/get": [BROKEN]})
    with pytest.raises(AirflowException, match="API requests to Databricks failed 3 times"):
        asyncio.run(first_event())
    assert len(api.calls("jobs/runs/get")) == 3
