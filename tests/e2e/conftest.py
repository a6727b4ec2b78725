"""What the end-to-end tests stand on: the stack's test profile and a known starting state.

`make test` runs the suite on the test profile of the local stack (dev/stack.sh, LAKEHOUSE_PROFILE=test): the
same servers as `make demo`, but a MySQL database, buckets and an Airflow of its own (TEST_* in .env). The DAGs
are the same files; only their connection and settings name the test places. So a member a user added to the
demo database, or an invoice they dropped into the demo's landing folder, never reaches a test's batch, and no
test changes the demo's data (tests/conftest.py checks that at the end of the session).

Each session starts from the same state whatever an earlier one left: the test database holds exactly
SOURCE_ROWS generated members plus dev/seed_members.DIRTY_MEMBERS, the test buckets are empty, and no run of an
earlier, interrupted session is still queued or running. Every DAG is unpaused once, as a user does before the
first `airflow dags trigger`; the test profile's Airflow creates no run by itself (no schedule, no Asset
trigger: dev/stack.sh), so each run a test follows is the one it triggered.
"""

from __future__ import annotations

import json
import os

import pytest
import requests

from dev import seed_members
from dev.airflow_api import AirflowApi, airflow_cli
from tests.services import demo_profile_names, empty_bucket, require_env, require_port

# the generated members of the test source: enough for the PII scan to search a few thousand distinct values
SOURCE_ROWS = 1000
DAG_IDS = ("member_pipeline", "member_erasure", "lakehouse_maintenance", "invoice_pipeline")


def require_test_profile() -> None:
    if os.environ.get("LAKEHOUSE_PROFILE") != "test":
        pytest.fail("the end-to-end tests run on the stack's test profile, never on the demo's data: "
                    "`make test PYTEST_ARGS=tests/e2e`, or `LAKEHOUSE_PROFILE=test dev/stack.sh start` and then "
                    "`LAKEHOUSE_PROFILE=test dev/stack.sh run python -m pytest tests/e2e`", pytrace=False)


@pytest.fixture(scope="session")
def api() -> AirflowApi:
    """The test profile's Airflow, through its REST API."""
    require_test_profile()
    env = require_env("AIRFLOW_API_PORT", "AIRFLOW_ADMIN_USER", "AIRFLOW_ADMIN_PASSWORD")
    require_port("the Airflow api-server of the test profile", "127.0.0.1", int(env["AIRFLOW_API_PORT"]))
    api = AirflowApi()
    for dag_id in DAG_IDS:
        api.wait_for_dag(dag_id)
    return api


@pytest.fixture(scope="session", autouse=True)
def fresh_test_data(api, mysql_env, mysql_root, s3_env, s3) -> None:
    """The known starting state of the module docstring; refuses to touch anything the demo profile names."""
    ours = {mysql_env["MYSQL_DATABASE"], s3_env["LANDING_BUCKET"], s3_env["LAKEHOUSE_BUCKET"]}
    demo = demo_profile_names()
    shared = ours & {demo["MYSQL_DATABASE"], demo["LANDING_BUCKET"], demo["LAKEHOUSE_BUCKET"]}
    assert not shared, f"the test profile names the demo's {sorted(shared)}: set TEST_* in .env apart"

    # an interrupted session's run would go on writing into the emptied buckets
    for run in api.get("dags/~/dagRuns?state=queued&state=running&limit=100").json()["dag_runs"]:
        patch(api, f"dags/{run['dag_id']}/dagRuns/{run['dag_run_id']}", {"state": "failed"})
    patch(api, "dags?dag_id_pattern=%25", {"is_paused": False})
    for bucket in (s3_env["LANDING_BUCKET"], s3_env["LAKEHOUSE_BUCKET"]):
        empty_bucket(s3, bucket)  # the bucket itself stays, with its default encryption and lifecycle rule
    mysql_root.cursor().execute(f"DROP DATABASE IF EXISTS `{mysql_env['MYSQL_DATABASE']}`")
    assert seed_members.main(["--rows", str(SOURCE_ROWS), "--dirty"]) == 0


def patch(api: AirflowApi, path: str, body: dict) -> None:
    requests.patch(f"{api.base_url}/api/v2/{path}", json=body, headers={"Authorization": f"Bearer {api.token()}"},
                   timeout=30).raise_for_status()


def trigger(dag_id: str, run_id: str, conf: dict | None = None) -> None:
    """`airflow dags trigger`, as a user starts a run (the session unpaused the DAGs)."""
    airflow_cli("dags", "trigger", dag_id, "--run-id", run_id, *(["--conf", json.dumps(conf)] if conf else []))


def run_to_success(api: AirflowApi, dag_id: str, run_id: str, conf: dict | None = None, timeout: float = 900) -> None:
    """Trigger a run and wait for it; a run that does not succeed fails the test with the logs of its tasks."""
    trigger(dag_id, run_id, conf)
    state = api.wait_for_run(dag_id, run_id, timeout=timeout)
    if state != "success":
        details = []
        for task, task_state in api.task_states(dag_id, run_id).items():
            if task_state != "success":
                r = api.get(f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task}/logs/1?full_content=true")
                details.append(f"--- {task}: {task_state}\n{r.text[-3000:]}")
        pytest.fail(f"{dag_id} run {run_id} ended {state}\n" + "\n".join(details))
