"""Secrets reach a job as on Databricks: through secret references in its cluster's ``spark_env_vars``.

``"spark_env_vars": {"LAKEHOUSE_PII_HMAC_KEY": "{{secrets/lakehouse/pii_hmac_key}}"}`` gives the driver
the secret's value in its environment, resolved from the runner's secret store when the task starts
(dev/databricks_runner/secrets.py), filled by ``python -m dev.databricks_runner secrets put-secret``.
The job (tests/dev/fixtures/env_job.py) reports only SHA-256s of what it sees; the value itself, a random
canary, must show nowhere else: not in the API's answers, the run page, the runner's state dir, its log,
the driver log, the properties file or any command line.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from airflow.providers.common.compat.sdk import AirflowException
from airflow.providers.databricks.operators.databricks import DatabricksSubmitRunOperator

from dev.databricks_runner.secrets import SecretError, SecretNotFound, SecretStore
from tests.dev.runner_harness import JOBS_ROOT, REPO

ENV_JOB = f"{JOBS_ROOT}/tests/dev/fixtures/env_job.py"
REFERENCE = "{{secrets/lakehouse/pii_hmac_key}}"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def canary() -> str:
    return "canary-" + secrets.token_urlsafe(24)


def put_secret(scope: str, key: str, value: str | bytes, *, secrets_file: Path | None = None,
               state_dir: Path | None = None) -> subprocess.CompletedProcess:  # fmt: skip
    """The CLI as a script runs it: the value on stdin, the store named by RUNNER_SECRETS_FILE or --state-dir."""
    env = {k: v for k, v in os.environ.items() if k != "RUNNER_SECRETS_FILE"}
    if secrets_file is not None:
        env["RUNNER_SECRETS_FILE"] = str(secrets_file)
    cmd = [sys.executable, "-m", "dev.databricks_runner", "secrets", "put-secret", scope, key]
    if state_dir is not None:
        cmd += ["--state-dir", str(state_dir)]
    data = value.encode() if isinstance(value, str) else value
    return subprocess.run(cmd, input=data, capture_output=True, cwd=REPO, env=env, timeout=60, check=False)


def env_task(out: Path, *names: str) -> dict:
    """A spark_python_task of env_job.py reporting on ``names``."""
    return {"spark_python_task": {"python_file": ENV_JOB, "parameters": [str(out), *names]}}


def state_of(run_or_task: dict) -> tuple[str, str | None]:
    return run_or_task["state"]["life_cycle_state"], run_or_task["state"].get("result_state")


# --- through the runner ----------------------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_referenced_secret_reaches_the_job_and_nowhere_else(runner, tmp_path):
    value = canary()
    stored = put_secret("lakehouse", "pii_hmac_key", value, secrets_file=runner.secrets_file)
    assert stored.returncode == 0, stored.stderr
    assert value.encode() not in stored.stdout + stored.stderr

    out = tmp_path / "report.json"
    hook = runner.hook()
    run_id = hook.submit_run({
        "run_name": "secret_env",
        **env_task(out, "LAKEHOUSE_PII_HMAC_KEY"),
        "new_cluster": {"num_workers": 1, "spark_env_vars": {"LAKEHOUSE_PII_HMAC_KEY": REFERENCE}},
    })  # fmt: skip
    run = runner.wait_terminal(run_id, timeout=90)
    assert state_of(run) == ("TERMINATED", "SUCCESS"), run["state"]

    # the job saw the secret's value, and found it neither in its properties file nor in any command line
    report = json.loads(out.read_text())
    assert report["properties_file_seen"] and report["cmdlines_seen"] >= 3  # the job, the JVM, the runner...
    assert report["vars"]["LAKEHOUSE_PII_HMAC_KEY"] == {
        "sha256": sha256(value), "in_properties": False, "in_cmdline": False,
    }  # fmt: skip

    # everything the runner answers about the run
    (task,) = run["tasks"]
    api = "/api/2.2/jobs/runs"
    answers = {
        "runs/get": runner.get(f"{api}/get", params={"run_id": run_id, "include_history": "true"}),
        "runs/get (task run)": runner.get(f"{api}/get", params={"run_id": task["run_id"]}),
        "runs/get-output": runner.get(f"{api}/get-output", params={"run_id": task["run_id"]}),
        "runs/list": runner.get(f"{api}/list", params={"expand_tasks": "true", "limit": 1000}),
        "run page": requests.get(run["run_page_url"], timeout=5),
    }
    assert all(answer.status_code == 200 for answer in answers.values())
    # the reference is echoed as submitted, and the driver log that get-output returns is the job's
    assert REFERENCE in answers["runs/get"].text
    assert f"env_job: LAKEHOUSE_PII_HMAC_KEY sha256={sha256(value)}" in answers["runs/get-output"].json()["logs"]
    assert [what for what, answer in answers.items() if value in answer.text] == []

    # every file the runner wrote (run records, the driver log, ...) but the store itself, and its log
    driver_log = runner.state_dir / "tasks" / str(task["run_id"]) / "driver.log"
    files = [p for p in runner.state_dir.rglob("*") if p.is_file() and p != runner.secrets_file]
    assert driver_log in files and any(p.parent.name == "runs" for p in files)
    assert [path for path in [*files, runner.log_path] if value.encode() in path.read_bytes()] == []
    assert value.encode() in runner.secrets_file.read_bytes()  # the search would have found it


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_plain_spark_env_vars_pass_through_and_local_settings_win(runner, tmp_path):
    out = tmp_path / "report.json"
    plain = "a plain value, with spaces and 'quotes'"
    embedded = f"prefix-{REFERENCE}"  # Databricks resolves only a whole value; this one arrives as written
    spark_env_vars = {
        "PLAIN": plain,
        "NUMBER": 42,  # stringified, as the provider's operator does with every number
        "EMBEDDED": embedded,
        # a common default of cluster specs: a path on a Databricks node; the local interpreter wins
        "PYSPARK_PYTHON": "/databricks/python3/bin/python3",
    }
    run_id = runner.hook().submit_run({
        "run_name": "plain_env",
        "job_clusters": [{"job_cluster_key": "c", "new_cluster": {"num_workers": 1, "spark_env_vars": spark_env_vars}}],
        "tasks": [{"task_key": "t", "job_cluster_key": "c",
                   **env_task(out, "PLAIN", "NUMBER", "EMBEDDED", "PYSPARK_PYTHON", "UNSET_VARIABLE")}],
    })  # fmt: skip
    run = runner.wait_terminal(run_id, timeout=90)
    assert state_of(run) == ("TERMINATED", "SUCCESS"), run["state"]
    seen = {name: v["sha256"] for name, v in json.loads(out.read_text())["vars"].items()}
    assert seen["PLAIN"] == sha256(plain)
    assert seen["NUMBER"] == sha256("42")
    assert seen["EMBEDDED"] == sha256(embedded)
    assert seen["PYSPARK_PYTHON"] not in (None, sha256("/databricks/python3/bin/python3"))
    assert seen["UNSET_VARIABLE"] is None


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_missing_secret_fails_the_cluster_start_and_the_job_never_starts(runner, tmp_path):
    assert put_secret("lakehouse", "present", canary(), secrets_file=runner.secrets_file).returncode == 0
    out = tmp_path / "report.json"
    hook = runner.hook()
    run_id = hook.submit_run({
        "run_name": "missing_secret",
        **env_task(out, "PRESENT", "MISSING"),
        "new_cluster": {"num_workers": 1, "spark_env_vars": {
            "PRESENT": "{{secrets/lakehouse/present}}", "MISSING": "{{secrets/lakehouse/no_such_key}}",
        }},
    })  # fmt: skip
    run = runner.wait_terminal(run_id)
    message = "Secret does not exist with scope: lakehouse and key: no_such_key"
    assert state_of(run) == ("INTERNAL_ERROR", "FAILED")
    assert run["state"]["state_message"].startswith("Task missing_secret failed with message: ")
    assert message in run["state"]["state_message"] and "spark_env_vars.MISSING" in run["state"]["state_message"]
    assert run["status"]["termination_details"] == {
        "code": "CLUSTER_ERROR", "type": "CLIENT_ERROR", "message": run["state"]["state_message"],
    }  # fmt: skip
    (task,) = run["tasks"]
    assert state_of(task) == ("INTERNAL_ERROR", "FAILED") and message in task["state"]["state_message"]
    output = hook.get_run_output(task["run_id"])
    assert message in output["error"] and output["logs"] == ""
    # nothing ran: no report, no driver log, no process
    assert not out.exists()
    assert not (runner.state_dir / "tasks" / str(task["run_id"]) / "driver.log").exists()
    record = json.loads((runner.state_dir / "runs" / f"{run_id}.json").read_text())
    assert record["tasks"][0]["pid"] is None

    # a missing scope, through the operator a DAG uses: its error names the scope and the key
    operator = DatabricksSubmitRunOperator(
        task_id="missing_scope",
        databricks_conn_id=runner.conn_id,
        **env_task(out, "KEY"),
        new_cluster={"num_workers": 1, "spark_env_vars": {"KEY": "{{secrets/no_such_scope/pii_hmac_key}}"}},
        polling_period_seconds=1,
        do_xcom_push=False,
        durable=False,
    )
    with pytest.raises(AirflowException) as err:
        operator.execute({})
    assert "Secret does not exist with scope: no_such_scope and key: pii_hmac_key" in str(err.value)
    assert not out.exists()


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_bad_spark_env_vars_are_refused_with_400(runner, tmp_path):
    def submit(spark_env_vars, *, job_cluster: bool = False) -> requests.Response:
        cluster = {"num_workers": 1, "spark_env_vars": spark_env_vars}
        task = env_task(tmp_path / "never.json", "X")
        if job_cluster:
            body = {"job_clusters": [{"job_cluster_key": "c", "new_cluster": cluster}],
                    "tasks": [{"task_key": "t", "job_cluster_key": "c", **task}]}  # fmt: skip
        else:
            body = {**task, "new_cluster": cluster}
        return runner.post("/api/2.2/jobs/runs/submit", json=body)

    runs_before = len(runner.get("/api/2.2/jobs/runs/list", params={"limit": 1000}).json().get("runs", []))
    not_a_name = "is not an environment variable name"
    refused = [
        ({"1ABC": "x"}, not_a_name),
        ({"A-B": "x"}, not_a_name),
        ({"A B": "x"}, not_a_name),
        ({"A=B": "x"}, not_a_name),
        ({"": "x"}, not_a_name),
        ({"ABC\n": "x"}, not_a_name),
        ({"ÄBC": "x"}, not_a_name),
        (["A=B"], "must be an object"),
        ({"A": None}, "must be a string"),
        ({"A": {"x": "y"}}, "must be a string"),
        ({"A": True}, "must be a string"),
        ({"A": "a\u0000b"}, "NUL"),
        ({"A": "{{secrets/lakehouse}}"}, "is not a secret reference"),
    ]
    for spark_env_vars, reason in refused:
        answer = submit(spark_env_vars)
        assert answer.status_code == 400, (spark_env_vars, answer.text)
        assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE", answer.text
        assert reason in answer.json()["message"], (spark_env_vars, answer.text)
    answer = submit({"BAD-NAME": "x"}, job_cluster=True)  # a job cluster's variables are checked too
    assert answer.status_code == 400 and not_a_name in answer.json()["message"]
    runs_after = len(runner.get("/api/2.2/jobs/runs/list", params={"limit": 1000}).json().get("runs", []))
    assert runs_after == runs_before  # nothing was accepted


# --- the put-secret CLI and the store ------------------------------------------------------------
@pytest.mark.unit
@pytest.mark.timeout(120)
def test_put_secret_stores_the_value_from_stdin_in_a_0600_file(tmp_path):
    state_dir = tmp_path / "state"
    first, second = canary(), canary() + "\nsecond line\n"  # taken as given: newlines included
    done = put_secret("lakehouse", "pii_hmac_key", first, state_dir=state_dir)
    assert done.returncode == 0, done.stderr
    assert first.encode() not in done.stdout + done.stderr
    store = state_dir / "secrets.json"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert json.loads(store.read_text()) == {"lakehouse": {"pii_hmac_key": first}}

    # another key joins it; the same key (secret names are case insensitive) replaces it
    assert put_secret("lakehouse", "pii_encryption_key", second, state_dir=state_dir).returncode == 0
    assert put_secret("lakehouse", "PII_HMAC_KEY", first + "x", state_dir=state_dir).returncode == 0
    assert json.loads(store.read_text()) == {"lakehouse": {"PII_HMAC_KEY": first + "x", "pii_encryption_key": second}}
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert SecretStore(store).get("lakehouse", "pii_hmac_key") == first + "x"

    # refused, and the store left as it was
    before = store.read_bytes()
    for scope, key, value, reason in [
        ("lakehouse", "k", b"", "empty"),
        ("bad scope", "k", b"v", "scope"),
        ("lakehouse", "bad/key", b"v", "key"),
        ("lakehouse", "k", b"\xff\xfe", "UTF-8"),
    ]:
        refused = put_secret(scope, key, value, state_dir=state_dir)
        assert refused.returncode == 2 and reason.encode() in refused.stderr, refused.stderr
    assert store.read_bytes() == before

    # RUNNER_SECRETS_FILE names the store (as for the runner); without it, --state-dir is required
    elsewhere = tmp_path / "elsewhere" / "store.json"
    assert put_secret("s", "k", "v", secrets_file=elsewhere, state_dir=state_dir).returncode == 0
    assert json.loads(elsewhere.read_text()) == {"s": {"k": "v"}}
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o600
    assert put_secret("s", "k", "v").returncode == 2

    # list-secrets names keys, never values
    listed = subprocess.run(
        [sys.executable, "-m", "dev.databricks_runner", "secrets", "list-secrets", "lakehouse", "--state-dir",
         str(state_dir)],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=True,
        env={k: v for k, v in os.environ.items() if k != "RUNNER_SECRETS_FILE"},
    )  # fmt: skip
    assert listed.stdout.split() == ["PII_HMAC_KEY", "pii_encryption_key"] and first not in listed.stdout


@pytest.mark.unit
def test_the_store_resolves_whole_references_only_and_guards_its_file(tmp_path):
    store = SecretStore(tmp_path / "secrets.json")
    # without a reference, the store is not even read
    assert store.resolve({"A": "plain"}) == {"A": "plain"}
    with pytest.raises(SecretNotFound, match="scope: lakehouse and key: k .*spark_env_vars.A"):
        store.resolve({"A": "{{secrets/lakehouse/k}}"})

    store.put("lakehouse", "k", "the-value")
    env = {
        "A": "{{secrets/lakehouse/k}}",
        "B": "{{secrets/lakehouse/K}}",  # secret names are case insensitive
        "C": "x{{secrets/lakehouse/k}}",  # not a whole reference: as written
        "D": "{{secrets/lakehouse/k}}\n",
    }
    assert store.resolve(env) == {**env, "A": "the-value", "B": "the-value"}
    with pytest.raises(SecretNotFound, match="^Secret does not exist with scope: other and key: k"):
        store.resolve({"A": "{{secrets/other/k}}"})

    # a store other users can read is refused, and its message holds no value
    store.path.chmod(0o644)
    with pytest.raises(SecretError, match="chmod 600") as err:
        store.resolve({"A": "{{secrets/lakehouse/k}}"})
    assert "the-value" not in str(err.value)
    store.path.chmod(0o600)
    store.path.write_text('{"lakehouse": {"k": "the-value"')  # broken JSON
    with pytest.raises(SecretError, match="not valid JSON") as err:
        store.get("lakehouse", "k")
    assert "the-value" not in str(err.value)


@pytest.mark.unit
def test_spark_env_vars_join_the_task_environment_but_not_over_local_settings(monkeypatch):
    from types import SimpleNamespace

    from dev.databricks_runner.spark import environment

    monkeypatch.setenv("LANG", "C.UTF-8")
    config = SimpleNamespace(runtime=SimpleNamespace(spark_home="/spark"))
    cluster_env = {"LAKEHOUSE_PII_HMAC_KEY": "k", "LANG": "en_US.UTF-8", "PYSPARK_PYTHON": "/databricks/python3",
                   "SPARK_HOME": "/databricks/spark", "PATH": "/databricks/bin"}  # fmt: skip
    env = environment(config, "/envs/e/bin/python", cluster_env)
    assert env["LAKEHOUSE_PII_HMAC_KEY"] == "k" and env["LANG"] == "en_US.UTF-8"
    assert env["PYSPARK_PYTHON"] == env["PYSPARK_DRIVER_PYTHON"] == "/envs/e/bin/python"
    assert env["SPARK_HOME"] == "/spark" and "/databricks" not in env["PATH"]
    assert "LAKEHOUSE_PII_HMAC_KEY" not in environment(config, "/envs/e/bin/python")  # only when asked for
