"""The local Databricks runner, driven through the real Airflow databricks provider client.

The runner runs as a subprocess on a free loopback port with a temporary state dir and workspace folder
(tests/dev/runner_harness.py deploys the fixture jobs into it); tests talk to it with ``DatabricksHook``
(and ``DatabricksSubmitRunOperator`` where the operator's own handling matters) over a connection
supplied as ``AIRFLOW_CONN_<ID>`` JSON, exactly as a DAG would. Every task really goes through
spark-submit; only one job starts a SparkSession (a Delta write), the others are plain Python files that
spark-submit runs without Spark (~3 s each instead of ~10 s or more). Libraries and python_wheel_task:
tests/dev/test_runner_environments.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest
import requests
from airflow.providers.common.compat.sdk import AirflowException
from airflow.providers.databricks.hooks.databricks import GET_RUN_ENDPOINT, DatabricksHook, RunState
from airflow.providers.databricks.hooks.databricks_base import DatabricksApiError
from airflow.providers.databricks.operators.databricks import DatabricksSubmitRunOperator
from airflow.providers.databricks.utils.databricks import extract_failed_task_errors, normalise_json_content

from dev.databricks_runner.spark import python_error
from tests.dev.runner_harness import JOBS_ROOT, alive, read_pid, wait_until

WORKLOAD_FAILED = "Workload failed, see run output for details."


def job(name: str) -> str:
    """The workspace path of a fixture job, as a DAG would submit it."""
    return f"{JOBS_ROOT}/tests/dev/fixtures/{name}"


def python_task(name: str, *parameters) -> dict:
    """The ``spark_python_task`` part of a payload for a fixture job."""
    params = [os.fspath(p) if isinstance(p, Path) else p for p in parameters]
    return {"spark_python_task": {"python_file": job(name), "parameters": params}}


def sleeper(pid_file: Path) -> dict:
    return python_task("sleep_job.py", pid_file, "120")


def state_of(run_or_task: dict) -> tuple[str, str | None]:
    return run_or_task["state"]["life_cycle_state"], run_or_task["state"].get("result_state")


# --- connection, auth, API surface ---------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.timeout(30)
def test_health_and_connection_test(runner):
    assert requests.get(runner.url("/health"), timeout=5).status_code == 200  # no token needed
    assert runner.hook().test_connection() == (True, "Connection successfully tested")
    for version in ("2.1", "2.2"):
        versions = runner.get(f"/api/{version}/clusters/spark-versions").json()["versions"]
        assert versions[0]["key"].startswith("local-spark-")


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_missing_token_is_401_and_wrong_token_is_403(runner, monkeypatch):
    url = runner.url("/api/2.2/jobs/runs/list")
    missing = requests.get(url, timeout=5)
    assert missing.status_code == 401 and missing.json()["error_code"] == "UNAUTHENTICATED"
    basic = requests.get(url, auth=("user", runner.token), timeout=5)
    assert basic.status_code == 401
    wrong = requests.get(url, headers={"Authorization": "Bearer not-the-token"}, timeout=5)
    assert wrong.status_code == 403 and wrong.json()["error_code"] == "PERMISSION_DENIED"
    assert runner.get("/api/2.2/jobs/runs/list").status_code == 200

    # the provider with a wrong token gets a clear, non-retried 403
    bad = json.loads(runner.conn_env[f"AIRFLOW_CONN_{runner.conn_id.upper()}"]) | {"password": "wrong"}
    monkeypatch.setenv("AIRFLOW_CONN_RUNNER_BAD_TOKEN", json.dumps(bad))
    with pytest.raises(DatabricksApiError) as err:
        DatabricksHook("runner_bad_token", retry_limit=1).get_run(1)
    assert err.value.http_status_code == 403


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_unknown_run_is_404_resource_does_not_exist(runner):
    hook = runner.hook()
    for call in (hook.get_run, hook.get_run_output, hook.cancel_run):
        with pytest.raises(DatabricksApiError) as err:
            call(987654321)
        assert err.value.http_status_code == 404
        assert "RESOURCE_DOES_NOT_EXIST" in str(err.value)
    unknown = runner.post("/api/2.2/jobs/run-now", json={})
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "ENDPOINT_NOT_FOUND"


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_bad_submissions_are_400_with_a_reason(runner):
    def depends(key: str, on: str) -> dict:
        return {"task_key": key, "depends_on": [{"task_key": on}], **python_task("ok_job.py")}

    def wheel_task(**fields) -> dict:
        return {"python_wheel_task": {"package_name": "pkg", "entry_point": "main", **fields}}

    ok_job = python_task("ok_job.py")
    bad_payloads = {
        "is not a workspace path": {"spark_python_task": {"python_file": "s3://bucket/jobs/x.py"}},
        "points outside": {"spark_python_task": {"python_file": f"{JOBS_ROOT}/../../../../../etc/passwd"}},
        "does not exist": {"spark_python_task": {"python_file": f"{JOBS_ROOT}/spark_jobs/no_such_job.py"}},
        "no Git checkout": {"spark_python_task": {"python_file": "spark_jobs/x.py", "source": "GIT"}},
        "runs only spark_python_task and python_wheel_task": {"notebook_task": {"notebook_path": "/Users/x/nb"}},
        "not both": wheel_task(parameters=["a"], named_parameters={"b": "c"}),
        "needs package_name and entry_point": {"python_wheel_task": {"package_name": "pkg"}},
        "installs only whl": {**ok_job, "libraries": [{"jar": "dbfs:/FileStore/x.jar"}]},
        "without repo": {
            **ok_job,
            "libraries": [{"pypi": {"package": "six", "repo": "https://example.org"}}],
        },
        "library 's3://bucket/x.whl' is not a workspace path": {
            **ok_job,
            "libraries": [{"whl": "s3://bucket/x.whl"}],
        },
        # a local path or a pip option as a "package" would install the checkout itself: not on a cluster
        "is not a PyPI requirement": {**ok_job, "libraries": [{"pypi": {"package": "-e/work/main/spark_jobs"}}]},
        "names a URL": {**ok_job, "libraries": [{"pypi": {"package": "jobs @ file:///work/main/spark_jobs"}}]},
        "not in the run's environments": {**ok_job, "environment_key": "default"},
        "not pip options": {
            **ok_job,
            "environment_key": "default",
            "environments": [{"environment_key": "default", "spec": {"dependencies": ["-r /Workspace/r.txt"]}}],
        },
        "cycle": {"tasks": [depends("a", "b"), depends("b", "a")]},
        "must be a number": {**ok_job, "timeout_seconds": "soon"},
    }
    hook = runner.hook()
    for reason, payload in bad_payloads.items():
        with pytest.raises(DatabricksApiError) as err:
            hook.submit_run(payload)
        assert err.value.http_status_code == 400, reason
        assert "INVALID_PARAMETER_VALUE" in str(err.value) and reason in str(err.value), str(err.value)


# --- running jobs ---------------------------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.timeout(150)
def test_spark_job_writes_a_delta_table_through_the_operator(runner, tmp_path):
    table = tmp_path / "delta_table"
    operator = DatabricksSubmitRunOperator(
        task_id="delta_job",
        databricks_conn_id=runner.conn_id,
        spark_python_task={"python_file": job("delta_job.py"), "parameters": ["--table-path", str(table)]},
        new_cluster={"num_workers": 2, "spark_conf": {"spark.sql.shuffle.partitions": 2}},
        timeout_seconds=0,
        polling_period_seconds=1,
        do_xcom_push=False,
        durable=False,
    )
    operator.execute({})  # raises unless the run ends TERMINATED/SUCCESS

    commit = (table / "_delta_log" / "00000000000000000000.json").read_text().splitlines()
    added = [json.loads(json.loads(line)["add"]["stats"]) for line in commit if '"add"' in line]
    assert sum(stats["numRecords"] for stats in added) == 3
    hook = runner.hook()
    run = hook.get_run(operator.run_id)
    assert state_of(run) == ("TERMINATED", "SUCCESS")
    assert run["run_name"] == "delta_job" and run["job_id"]
    (task,) = run["tasks"]
    assert task["task_key"] == "delta_job" and task["start_time"] > 0 and task["run_id"] != run["run_id"]
    assert task["new_cluster"]["num_workers"] == "2"  # recorded as submitted (the operator stringifies)
    output = hook.get_run_output(task["run_id"])
    assert f"delta_job wrote {table}" in output["logs"] and "error" not in output
    # the settings file that carries the S3 secret key does not outlive the process
    assert not list(runner.state_dir.rglob("spark.properties"))


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_failed_job_reports_the_exception_like_databricks(runner):
    operator = DatabricksSubmitRunOperator(
        task_id="fail_job",
        databricks_conn_id=runner.conn_id,
        **python_task("fail_job.py", "from-operator"),
        polling_period_seconds=1,
        do_xcom_push=False,
        durable=False,
    )
    with pytest.raises(AirflowException) as err:
        operator.execute({})
    assert "ValueError: boom from-operator" in str(err.value)

    hook = runner.hook()
    run = hook.get_run(operator.run_id)
    assert run["state"] == {
        "life_cycle_state": "INTERNAL_ERROR",
        "result_state": "FAILED",
        "state_message": f"Task fail_job failed with message: {WORKLOAD_FAILED}",
        "user_cancelled_or_timedout": False,
    }
    assert run["status"]["termination_details"]["code"] == "RUN_EXECUTION_ERROR"
    (task,) = run["tasks"]
    assert state_of(task) == ("TERMINATED", "FAILED")
    output = hook.get_run_output(task["run_id"])
    assert output["error"] == "ValueError: boom from-operator"
    assert output["error_trace"].startswith("Traceback (most recent call last):")
    assert 'raise ValueError(f"boom {value}")' in output["error_trace"]
    assert output["error_trace"].endswith("ValueError: boom from-operator")
    assert output["metadata"]["run_id"] == task["run_id"]

    # run_page_url serves a page with the state and the driver log
    page = requests.get(hook.get_run_page_url(operator.run_id), timeout=5)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "INTERNAL_ERROR / FAILED" in page.text and "fail_job about to fail" in page.text
    assert "ValueError: boom from-operator" in page.text


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_numeric_strings_json_body_on_get_and_both_api_versions(runner, tmp_path):
    out = tmp_path / "args.json"
    # the operator's normalisation turns every number into a string; a run without a name is "Untitled"
    payload = normalise_json_content({"timeout_seconds": 0, **python_task("ok_job.py", out, 1, 2.5)})
    assert payload["timeout_seconds"] == "0"
    run_id = runner.post("/api/2.1/jobs/runs/submit", json=payload).json()["run_id"]
    run = runner.wait_terminal(run_id)
    assert state_of(run) == ("TERMINATED", "SUCCESS") and run["run_name"] == "Untitled"
    assert json.loads(out.read_text()) == ["1", "2.5"]

    # run_id as a string, in the query string or in a JSON body on GET (the async trigger's way)
    ways = [{"params": {"run_id": str(run_id)}}, {"json": {"run_id": str(run_id)}}]
    ways += [{"json": {"run_id": f"{run_id}.0"}}]
    bodies = [runner.get(f"/api/{v}/jobs/runs/get", **way).json() for v in ("2.1", "2.2") for way in ways]
    assert all(body == bodies[0] for body in bodies) and bodies[0]["run_id"] == run_id
    assert runner.get("/api/2.2/jobs/runs/get", json={"run_id": "x"}).status_code == 400

    async def through_the_async_client():
        async with DatabricksHook(runner.conn_id, retry_limit=3, retry_delay=0.5) as hook:
            return await hook.a_get_run_state(run_id), await hook.a_get_run_output(run["tasks"][0]["run_id"])

    state, output = asyncio.run(through_the_async_client())
    assert state.is_successful and "ok_job wrote 2 argument(s)" in output["logs"]


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_same_idempotency_token_returns_the_same_run(runner, tmp_path):
    hook = runner.hook()
    payload = {"run_name": "idem", **python_task("ok_job.py", tmp_path / "o")}
    first = hook.submit_run({**payload, "idempotency_token": "token-A"})
    again = hook.submit_run({**payload, "idempotency_token": "token-A"})
    other = hook.submit_run({**payload, "idempotency_token": "token-B"})
    assert first == again and other != first
    hook.cancel_run(other)  # still queued behind `first`: cancelled before it costs a Spark start
    assert state_of(runner.wait_terminal(first)) == ("TERMINATED", "SUCCESS")
    assert state_of(runner.wait_terminal(other)) == ("TERMINATED", "CANCELED")
    assert hook.submit_run({**payload, "idempotency_token": "token-A"}) == first  # also once finished


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_timeout_kills_the_job_and_reports_timedout(runner, tmp_path):
    pid_file = tmp_path / "pid"
    hook = runner.hook()
    run_id = hook.submit_run(normalise_json_content({"timeout_seconds": 8, **sleeper(pid_file)}))
    pid = read_pid(pid_file)
    run = runner.wait_terminal(run_id, timeout=40)
    assert state_of(run) == ("TERMINATED", "TIMEDOUT")
    assert run["state"]["user_cancelled_or_timedout"] is True
    assert state_of(run["tasks"][0]) == ("TERMINATED", "TIMEDOUT")
    assert 8_000 <= run["execution_duration"] < 30_000
    wait_until(lambda: not alive(pid), 10, "the job's process to be gone")


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_cancel_kills_the_process_group_and_reports_canceled(runner, tmp_path):
    pid_file = tmp_path / "pid"
    hook = runner.hook()
    run_id = hook.submit_run(sleeper(pid_file))
    pid = read_pid(pid_file)
    hook.cancel_run(run_id)
    run = runner.wait_terminal(run_id, timeout=20)
    assert state_of(run) == ("TERMINATED", "CANCELED")
    assert state_of(run["tasks"][0]) == ("TERMINATED", "CANCELED")
    assert run["status"]["termination_details"]["code"] == "USER_CANCELED"
    wait_until(lambda: not alive(pid), 10, "the job's process to be gone")
    hook.cancel_run(run_id)  # cancelling a finished run is a harmless no-op


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_tasks_with_depends_on(runner, tmp_path):
    def task(key: str, python: dict, depends_on: str | None = None, **extra) -> dict:
        deps = [{"task_key": depends_on}] if depends_on else []
        return {"task_key": key, "depends_on": deps, **python, **extra}

    hook = runner.hook()
    # submitted out of order: the runner must run dependencies first
    run_id = hook.submit_run(
        {
            "run_name": "dag",
            "tasks": [
                task("skipped", python_task("ok_job.py", tmp_path / "skipped"), "fails"),
                task("cleanup", python_task("ok_job.py", tmp_path / "cleanup"), "fails", run_if="ALL_DONE"),
                task("fails", python_task("fail_job.py", "task-b")),
            ],
        }
    )
    run = runner.wait_terminal(run_id, timeout=80)
    tasks = {t["task_key"]: t for t in run["tasks"]}
    assert {key: state_of(t) for key, t in tasks.items()} == {
        "fails": ("TERMINATED", "FAILED"),
        "skipped": ("SKIPPED", "UPSTREAM_FAILED"),
        "cleanup": ("TERMINATED", "SUCCESS"),
    }
    assert tasks["fails"]["end_time"] <= tasks["cleanup"]["start_time"]
    assert not (tmp_path / "skipped").exists() and (tmp_path / "cleanup").exists()
    assert state_of(run) == ("INTERNAL_ERROR", "FAILED")
    assert run["state"]["state_message"] == f"Task fails failed with message: {WORKLOAD_FAILED}"
    # what the provider reports to the Airflow task
    errors = extract_failed_task_errors(hook, run, RunState(**run["state"]))
    failed_run_id = tasks["fails"]["run_id"]
    assert errors == [{"task_key": "fails", "run_id": failed_run_id, "error": "ValueError: boom task-b"}]
    # runs/get of a task run id answers for that task (the workflow trigger asks this)
    assert hook.get_run_state(failed_run_id).result_state == "FAILED"


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_queueing_and_tasks_paginated_by_100(runner, tmp_path):
    pid_file = tmp_path / "pid"
    hook = runner.hook()
    tasks = [{"task_key": "sleep", **sleeper(pid_file)}]
    after_sleep = {"depends_on": [{"task_key": "sleep"}], **python_task("ok_job.py", tmp_path / "unused")}
    tasks += [{"task_key": f"t{i:03}", **after_sleep} for i in range(100)]
    big = hook.submit_run({"run_name": "big", "tasks": tasks})
    small = hook.submit_run({"run_name": "small", **python_task("ok_job.py", tmp_path / "small")})
    read_pid(pid_file)

    # RUNNER_MAX_CONCURRENT_RUNS=1: the second run waits its turn
    queued = hook.get_run(small)
    assert queued["state"]["life_cycle_state"] == "QUEUED" and queued["status"]["state"] == "QUEUED"
    first_page = hook._do_api_call(GET_RUN_ENDPOINT, {"run_id": big})
    assert len(first_page["tasks"]) == 100 and first_page["next_page_token"]
    full = hook.get_run(big)  # the provider follows next_page_token
    assert sorted(t["task_key"] for t in full["tasks"]) == sorted(t["task_key"] for t in tasks)
    assert len({t["run_id"] for t in full["tasks"]}) == 101

    hook.cancel_run(big)
    assert state_of(runner.wait_terminal(big, timeout=20)) == ("TERMINATED", "CANCELED")
    assert {state_of(t) for t in hook.get_run(big)["tasks"]} == {("TERMINATED", "CANCELED")}
    assert state_of(runner.wait_terminal(small)) == ("TERMINATED", "SUCCESS")
    assert json.loads((tmp_path / "small").read_text()) == []


# --- restarts -------------------------------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.timeout(120)
def test_restart_keeps_finished_runs_and_ends_interrupted_ones(own_runner, tmp_path):
    runner = own_runner.start()
    hook = runner.hook()
    done = hook.submit_run({"idempotency_token": "kept", **python_task("ok_job.py", tmp_path / "o")})
    runner.wait_terminal(done)
    pid_file = tmp_path / "pid"
    in_flight = hook.submit_run(sleeper(pid_file))
    pid = read_pid(pid_file)

    runner.stop(signal.SIGTERM)  # a clean stop ends what it was running...
    assert runner.proc.returncode in (0, -signal.SIGTERM)  # (uvicorn re-raises the signal it handled)
    wait_until(lambda: not alive(pid), 10, "the job's process to be gone")  # ...and kills its processes
    runner.start()
    assert state_of(hook.get_run(done)) == ("TERMINATED", "SUCCESS")
    assert "ok_job wrote" in hook.get_run_output(hook.get_run(done)["tasks"][0]["run_id"])["logs"]
    stopped = hook.get_run(in_flight)
    assert state_of(stopped) == ("INTERNAL_ERROR", "FAILED")
    assert "was stopped while this run was in flight" in stopped["state"]["state_message"]
    # idempotency tokens are remembered and ids keep increasing across restarts
    assert hook.submit_run({"idempotency_token": "kept", **python_task("ok_job.py")}) == done
    newer = hook.submit_run(sleeper(pid_file))
    assert newer > max(t["run_id"] for t in stopped["tasks"])
    hook.cancel_run(newer)
    assert state_of(runner.wait_terminal(newer)) == ("TERMINATED", "CANCELED")


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_restart_after_kill_9_reports_the_run_in_flight_as_internal_error(own_runner, tmp_path):
    runner = own_runner.start()
    hook = runner.hook()
    pid_file = tmp_path / "pid"
    run_id = hook.submit_run(sleeper(pid_file))
    pid = read_pid(pid_file)

    runner.stop(signal.SIGKILL)
    assert alive(pid)  # the job outlived the runner (its own session)...
    runner.start()
    wait_until(lambda: not alive(pid), 10, "the orphaned job to be killed")  # ...until the runner came back
    run = hook.get_run(run_id)
    assert state_of(run) == ("INTERNAL_ERROR", "FAILED")
    assert "stopped unexpectedly while this run was in flight" in run["state"]["state_message"]
    assert RunState(**run["state"]).is_terminal  # so an Airflow task polling it ends instead of hanging
    (task,) = run["tasks"]
    assert task["state"]["result_state"] == "FAILED"
    assert "stopped unexpectedly" in hook.get_run_output(task["run_id"])["error"]
    assert not list(runner.state_dir.rglob("spark.properties"))


# --- last: nothing above leaked the token ----------------------------------------------------------
@pytest.mark.integration
@pytest.mark.timeout(30)
def test_token_never_logged(runner):
    logs = [runner.log_path, *runner.state_dir.rglob("driver.log")]
    assert len(logs) > 5
    for path in logs:
        assert runner.token not in path.read_text(errors="replace"), path


@pytest.mark.unit
def test_python_error_keeps_chained_tracebacks():
    log = """\
26/11/26 19:10:53 WARN Something: noise
Traceback (most recent call last):
  File "job.py", line 3, in <module>
KeyError: 'x'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "job.py", line 5, in <module>
RuntimeError: wrapped
26/11/26 19:10:54 INFO ShutdownHookManager: Shutdown hook called
"""
    error, trace = python_error(log)
    assert error == "RuntimeError: wrapped"
    assert trace.startswith("Traceback") and "KeyError: 'x'" in trace
    assert trace.endswith("RuntimeError: wrapped")
    assert python_error("no traceback here") is None
