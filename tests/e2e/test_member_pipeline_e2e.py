"""The member pipeline driven as a user drives it: `airflow dags trigger` on the running stack, success
observed through the REST API, then every count checked against where the data really is."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from delta.tables import DeltaTable

from dev.airflow_api import AirflowApi, trigger
from dev.demo_report import counts_for_run
from include import layout
from tests.services import require_env, require_port

pytestmark = pytest.mark.e2e

DAG_ID = "member_pipeline"


@pytest.fixture(scope="module")
def api():
    env = require_env("AIRFLOW_API_PORT", "AIRFLOW_ADMIN_USER", "AIRFLOW_ADMIN_PASSWORD")
    require_port("the Airflow api-server", "127.0.0.1", int(env["AIRFLOW_API_PORT"]))
    api = AirflowApi()
    api.wait_for_dag(DAG_ID)
    return api


def run_to_success(api: AirflowApi, run_id: str) -> None:
    trigger(DAG_ID, run_id)
    state = api.wait_for_run(DAG_ID, run_id, timeout=900)
    if state != "success":
        details = []
        for task, task_state in api.task_states(DAG_ID, run_id).items():
            if task_state != "success":
                r = api.get(f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task}/logs/1?full_content=true")
                details.append(f"--- {task}: {task_state}\n{r.text[-3000:]}")
        pytest.fail(f"run {run_id} ended {state}\n" + "\n".join(details))


def delta_state(spark):
    table = spark.read.format("delta").load(layout.delta_table_uri("member"))
    history = DeltaTable.forPath(spark, layout.delta_table_uri("member")).history(1).collect()[0]
    duplicates = table.groupBy("member_id").count().filter("count > 1").count()
    return table.count(), duplicates, history


def test_trigger_twice_same_interval(api, spark):
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")

    run_to_success(api, f"e2e__{stamp}__first")
    first = counts_for_run(api, DAG_ID, f"e2e__{stamp}__first")
    delta_rows, duplicates, _ = delta_state(spark)
    assert first["mysql_rows"] > 0
    assert first["mysql_rows"] == first["manifest_rows"] == first["parquet_rows"]
    assert first["manifest_rows"] == first["valid_rows"] + first["quarantined_rows"]
    assert first["delta_rows"] == delta_rows
    assert duplicates == 0

    run_to_success(api, f"e2e__{stamp}__second")
    second = counts_for_run(api, DAG_ID, f"e2e__{stamp}__second")
    delta_rows_again, duplicates, last_commit = delta_state(spark)
    assert second["batch_id"] == first["batch_id"], "both runs cover the same interval"
    same = ("mysql_rows", "manifest_rows", "parquet_rows", "valid_rows", "quarantined_rows", "delta_rows")
    assert {k: second[k] for k in same} == {k: first[k] for k in same}
    assert (second["inserted_rows"], second["updated_rows"], second["deleted_rows"]) == (0, 0, 0)
    assert delta_rows_again == delta_rows and duplicates == 0
    assert last_commit["operation"] == "MERGE" and last_commit["version"] == second["delta_version"]

    assert_no_secret_in_task_logs(api, f"e2e__{stamp}__second")
    assert_dirty_rows_handled(spark, first)


def assert_dirty_rows_handled(spark, counts: dict) -> None:
    """The dirty rows the stack seeds (dev/seed_members.py DIRTY_MEMBERS): quarantined with their reason,
    or loaded with standardised values that are right or absent."""
    assert counts["quarantine_reasons"] == {
        "invalid_registration_date": 2, "invalid_email": 1, "registration_date_in_future": 1}
    members = spark.read.format("delta").load(layout.delta_table_uri("member"))
    by_name = {r["last_name"]: r for r in members.where("first_name = 'Dirty'").collect()}
    assert set(by_name) == {"punycode", "unicode-domain", "seoul", "kosovo", "city-as-country"}
    assert by_name["punycode"]["email"] == "info@россия.рф"
    assert by_name["unicode-domain"]["email"] == "info@bücher.example"
    assert (by_name["seoul"]["country_code"], by_name["seoul"]["phone_e164"]) == ("KR", "+8223123456")
    assert by_name["kosovo"]["country_code"] == "XK"
    assert by_name["city-as-country"]["country_code"] is None
    quarantine = spark.read.format("delta").load(layout.delta_table_uri("member_quarantine"))
    details = {r["last_name"]: r["quarantine_detail"] for r in
               quarantine.where(f"batch_id = '{counts['batch_id']}'").collect()}
    assert details["zero-date"] == "not a calendar date: 0000-00-00"
    assert details["bad-email"], "invalid_email carries email-validator's reason"


def assert_no_secret_in_task_logs(api: AirflowApi, run_id: str) -> None:
    """The stack's real secrets (random per machine) serve as canaries: none may reach a task log, even
    though every connection comes from an AIRFLOW_CONN_* URI or JSON holding them."""
    secrets = {name: os.environ[name] for name in (
        "MYSQL_EXTRACT_PASSWORD", "MYSQL_ROOT_PASSWORD", "S3_SECRET_ACCESS_KEY", "DATABRICKS_TOKEN")}
    for task in api.task_states(DAG_ID, run_id):
        r = api.get(f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task}")
        for attempt in range(1, r.json()["try_number"] + 1):
            log = api.get(f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task}/logs/{attempt}?full_content=true")
            assert log.status_code == 200 and len(log.text) > 100, f"no log for {task} try {attempt}"
            leaked = [name for name, value in secrets.items() if value in log.text]
            assert not leaked, f"{leaked} appear in the log of {task} try {attempt}"
