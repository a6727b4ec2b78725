"""The member pipeline driven as a user drives it: `airflow dags trigger` on the running stack (its test
profile, tests/e2e/conftest.py), success observed through the REST API, then every count checked against where
the data really is. One run and its replay are shared by the module's tests; the erasure test comes last."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import jinja2
import pytest
import requests
from airflow.providers.databricks.hooks.databricks import DatabricksHook
from delta.tables import DeltaTable

from dev import pii_scan
from dev.airflow_api import AirflowApi, airflow_cli
from dev.demo_report import counts_for_run, task_result
from dev.seed_members import DIRTY_MEMBERS
from include import layout
from include.databricks_runs import member_merge_run
from include.landing.manifest_io import publish_manifest, read_manifest
from lakehouse_jobs import pii
from lakehouse_jobs.tables import TABLES
from tests.e2e.conftest import SOURCE_ROWS, run_to_success, trigger

pytestmark = pytest.mark.e2e

DAG_ID = "member_pipeline"


@dataclass(frozen=True)
class DeltaState:
    """The member table after a run: rows, member_ids held more than once, latest version."""

    rows: int
    duplicates: int
    version: int


@dataclass(frozen=True)
class MemberRuns:
    """One run of the DAG and a replay of the same interval; counts are dev/demo_report.counts_for_run's."""

    first_id: str
    replay_id: str
    first: dict
    replay: dict
    after_first: DeltaState
    after_replay: DeltaState


@pytest.fixture(scope="module")
def runs(api, spark) -> MemberRuns:
    """The module's one end-to-end run and its replay, which every test below checks from its own angle (the
    runs take minutes; what each test reads takes seconds)."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    first_id, replay_id = f"e2e__{stamp}__first", f"e2e__{stamp}__replay"
    run_to_success(api, DAG_ID, first_id)
    first, after_first = counts_for_run(api, DAG_ID, first_id), delta_state(spark)
    run_to_success(api, DAG_ID, replay_id)
    return MemberRuns(first_id, replay_id, first, counts_for_run(api, DAG_ID, replay_id), after_first,
                      delta_state(spark))


def delta_state(spark) -> DeltaState:
    table = spark.read.format("delta").load(layout.delta_table_uri("member"))
    version = DeltaTable.forPath(spark, layout.delta_table_uri("member")).history(1).collect()[0]["version"]
    duplicates = table.groupBy("member_id").count().filter("count > 1").count()
    return DeltaState(table.count(), duplicates, version)


def test_the_run_loads_exactly_the_test_source(runs):
    """Every count agrees from MySQL to Delta, and the batch is the test source alone (tests/e2e/conftest.py):
    no member anyone added to the demo's database reaches it."""
    first = runs.first
    assert first["mysql_rows"] == SOURCE_ROWS + len(DIRTY_MEMBERS)
    assert first["mysql_rows"] == first["manifest_rows"] == first["parquet_rows"]
    assert first["manifest_rows"] == first["unchanged_rows"] + first["valid_rows"] + first["quarantined_rows"]
    assert first["delta_rows"] == runs.after_first.rows == first["dim_member_current_rows"]
    assert runs.after_first.duplicates == 0


def test_a_replay_of_the_interval_runs_no_spark_and_commits_nothing(api, runs):
    first, replay = runs.first, runs.replay
    # each manual run lands a batch of its own, so the replay replaces nothing the first run landed
    assert replay["batch_id"] != first["batch_id"] and replay["batch_id"].startswith("ingest_ts=")
    same = ("mysql_rows", "manifest_rows", "parquet_rows")
    assert {k: replay[k] for k in same} == {k: first[k] for k in same}
    # every row is settled (in the table as landed, or quarantined as landed): no Databricks run at all
    assert replay["no_changes"] and replay["unchanged_rows"] == replay["manifest_rows"]
    states = api.task_states(DAG_ID, runs.replay_id)
    assert (states["choose_run"], states["confirm_unchanged"]) == ("success", "success")
    assert (states["merge_members"], states["reconcile"]) == ("skipped", "skipped")
    assert runs.after_replay == DeltaState(runs.after_first.rows, 0, runs.after_first.version)


def test_a_backfill_fails_saying_the_source_is_a_snapshot_and_replaces_nothing(api, runs):
    """`airflow backfill create` for past days (issue 23 item 3): the member table holds only today's rows, so
    each backfill run fails in extract_members, naming the reason, and no landed object changes."""
    s3 = pii_scan.s3_client()

    def landed() -> dict[str, str]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=os.environ["LANDING_BUCKET"], Prefix="member/")
        return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}

    for old in api.get(f"dags/{DAG_ID}/dagRuns?run_type=backfill&limit=100").json()["dag_runs"]:  # an earlier session's
        requests.delete(f"{api.base_url}/api/v2/dags/{DAG_ID}/dagRuns/{old['dag_run_id']}",
                        headers={"Authorization": f"Bearer {api.token()}"}, timeout=30).raise_for_status()
    before = landed()
    today = dt.datetime.now(dt.timezone.utc).date()
    airflow_cli("backfill", "create", "--dag-id", DAG_ID, "--from-date", str(today - dt.timedelta(days=4)),
                "--to-date", str(today - dt.timedelta(days=3)))
    deadline = time.monotonic() + 300
    while True:
        backfill = api.get(f"dags/{DAG_ID}/dagRuns?run_type=backfill&limit=100").json()["dag_runs"]
        if backfill and all(r["state"] in ("success", "failed") for r in backfill):
            break
        assert time.monotonic() < deadline, f"the backfill's runs did not end in 5 minutes: {backfill}"
        time.sleep(3)
    assert len(backfill) == 2 and {r["state"] for r in backfill} == {"failed"}
    for run in backfill:
        states = api.task_states(DAG_ID, run["dag_run_id"])
        assert states["extract_members"] == "failed" and states["merge_members"] != "success"
        log = api.get(f"dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/extract_members/logs/1"
                      "?full_content=true").text
        assert "but the source is a snapshot" in log
    assert landed() == before


def test_no_secret_leaves_the_cluster(api, runs):
    assert_no_secret_leaves_the_cluster(api, [runs.first_id, runs.replay_id])


def test_dirty_rows_are_quarantined_or_standardised(spark, runs):
    assert_dirty_rows_handled(spark, runs.first)


def test_tables_hold_no_plaintext_pii(runs):
    assert_tables_hold_no_plaintext_pii()


def test_tables_are_the_declared_ones(spark, runs):
    assert_declared_tables(spark)


def assert_dirty_rows_handled(spark, counts: dict) -> None:
    """The dirty rows the stack seeds (dev/seed_members.py DIRTY_MEMBERS): quarantined with their reason,
    or loaded with standardised values that are right or absent (decrypted with the stack's keys)."""
    quarantine = decrypted(spark, "member_quarantine", "last_name")
    reasons = {r["last_name"]: r["quarantine_reason"] for r in quarantine.where(f"batch_id = '{counts['batch_id']}'")
               .collect()}
    assert sorted(reasons.values()) == [
        "invalid_email", "invalid_registration_date", "invalid_registration_date", "registration_date_in_future"]
    members = decrypted(spark, "member", "first_name", "last_name", "email", "phone_e164")
    by_name = {r["last_name"]: r for r in members.where("first_name = 'Dirty'").collect()}
    assert set(by_name) == {"punycode", "unicode-domain", "seoul", "kosovo", "city-as-country"}
    assert by_name["punycode"]["email"] == "info@россия.рф"
    assert by_name["unicode-domain"]["email"] == "info@bücher.example"
    assert (by_name["seoul"]["country_code"], by_name["seoul"]["phone_e164"]) == ("KR", "+8223123456")
    assert by_name["kosovo"]["country_code"] == "XK"
    assert by_name["city-as-country"]["country_code"] is None
    details = {r["last_name"]: r["quarantine_detail"] for r in
               quarantine.where(f"batch_id = '{counts['batch_id']}'").collect()}
    assert details["zero-date"] == "not a calendar date: 0000-00-00"
    assert details["bad-email"], "invalid_email carries email-validator's reason"


def decrypted(spark, table: str, *columns: str):
    df = pii.with_keys(spark, spark.read.format("delta").load(layout.delta_table_uri(table)), pii.PiiKeys.from_env())
    for c in columns:
        df = df.withColumn(c, pii.decrypt(f"{c}_enc"))
    return pii.drop_keys(df)


def assert_tables_hold_no_plaintext_pii() -> None:
    """Every file of member, dim_member and member_quarantine (every retained version, the logs and
    checkpoints) searched for every email, phone and address of the source."""
    values = pii_scan.source_values()
    assert len(values) > 1000, "the scan needs the source's values to search for"
    report = pii_scan.scan(values)
    assert report.objects > 10
    assert not report.found, f"plaintext PII found: {report.found}"


def assert_declared_tables(spark) -> None:
    """The tables the DAG's job created on MinIO are the ones lakehouse_jobs.tables declares."""
    for name, spec in TABLES.items():
        if name == "erasure_requests":  # created by the first erasure (checked there)
            continue
        schema = spark.read.format("delta").load(layout.delta_table_uri(name)).schema
        assert [(f.name, f.nullable) for f in schema.fields] == [(f.name, f.nullable) for f in spec.fields], name


def canaries() -> dict[str, str]:
    """The stack's real secrets (random per machine), which no log, XCom or rendered template may hold."""
    return {name: os.environ[name] for name in (
        "MYSQL_EXTRACT_PASSWORD", "MYSQL_ROOT_PASSWORD", "S3_SECRET_ACCESS_KEY", "DATABRICKS_TOKEN",
        "LAKEHOUSE_PII_HMAC_KEY", "LAKEHOUSE_PII_ENCRYPTION_KEY")}


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    found = [name for name, value in secrets.items() if value in text]
    # the keys also in their decoded forms (hex), as a log line printing the raw bytes would show them
    for name in ("LAKEHOUSE_PII_HMAC_KEY", "LAKEHOUSE_PII_ENCRYPTION_KEY"):
        if base64.b64decode(secrets[name]).hex() in text.lower():
            found.append(f"{name} (hex)")
    return found


def assert_no_secret_leaves_the_cluster(api: AirflowApi, run_ids: list[str]) -> None:
    """No canary in any task log, XCom value or rendered template field of the runs, nor in the driver
    logs of their Databricks runs; those driver logs hold none of the source's emails, phones and
    addresses either."""
    secrets = canaries()
    driver_logs = []
    for run_id in run_ids:
        for task in api.task_states(DAG_ID, run_id):
            ti = api.get(f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task}").json()
            assert not leaks(json.dumps(ti.get("rendered_fields")), secrets), f"rendered fields of {task}"
            xcoms = api.get(f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task}/xcomEntries").json()
            for entry in xcoms.get("xcom_entries", []):
                value = api.get(f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task}/xcomEntries/{entry['key']}")
                assert not leaks(value.text, secrets), f"XCom {entry['key']} of {task}"
                if task == "merge_members" and entry["key"] == "run_id":
                    driver_logs += runner_driver_logs(int(value.json()["value"]))
            for attempt in range(1, ti["try_number"] + 1):
                log = api.get(f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task}/logs/{attempt}?full_content=true")
                assert log.status_code == 200 and len(log.text) > 100, f"no log for {task} try {attempt}"
                assert not leaks(log.text, secrets), f"the log of {task} try {attempt}"
    assert driver_logs, "the merge tasks pushed no Databricks run id"
    assert_driver_logs_clean(driver_logs, secrets)


def runner_driver_logs(databricks_run_id: int) -> list[Path]:
    """The driver logs of one run of the stack's local runner (its state dir, dev/databricks_runner)."""
    run = DatabricksHook(databricks_conn_id="databricks_default").get_run(databricks_run_id)
    tasks = Path(os.environ["LAKEHOUSE_STATE"]) / "databricks_runner" / "tasks"
    return [tasks / str(t["run_id"]) / "driver.log" for t in run["tasks"]]


def assert_driver_logs_clean(paths: list[Path], secrets: dict[str, str]) -> None:
    values = pii_scan.source_values()
    for path in paths:
        text = path.read_bytes()
        assert len(text) > 1000, f"{path} is (nearly) empty"
        assert not leaks(text.decode(errors="replace"), secrets), f"a secret in {path}"
        found = sorted({column for value, column in values.items() if value in text})
        assert not found, f"plaintext {found} in {path}"


def test_a_failing_job_leaks_nothing(runs):
    """The failure path: the DAG's own run JSON for the shared run's snapshot, with a quarantine limit of 0, so
    the job fails after it has read, hashed and encrypted the batch. The error reaches runs/get-output; no key
    or plaintext PII reaches it or the driver log. The snapshot is republished without its change set under
    a batch id of its own: against the change state every dirty row is settled, nothing would be quarantined."""
    s3 = pii_scan.s3_client()
    landed = read_manifest(s3, os.environ["LANDING_BUCKET"], "member", runs.first["batch_id"])
    failing = dataclasses.replace(landed, batch_id=f"{landed.batch_id}.e2e-failing", change_set=None)
    publish_manifest(s3, os.environ["LANDING_BUCKET"], failing, {})
    run = json.loads(jinja2.Environment().from_string(json.dumps(
        member_merge_run(failing.batch_id, max_quarantine_ratio="0"))).render(
        ti={"dag_id": DAG_ID, "task_id": "e2e"}))
    hook = DatabricksHook(databricks_conn_id="databricks_default")
    run_id = hook.submit_run(run)
    deadline = time.monotonic() + 600
    while not (state := hook.get_run_state(run_id)).is_terminal:
        assert time.monotonic() < deadline, "the run did not end in 10 minutes"
        time.sleep(3)
    assert state.result_state == "FAILED"
    task_run = hook.get_run(run_id)["tasks"][0]["run_id"]
    output = hook.get_run_output(task_run)
    assert "quarantined, more than --max-quarantine-ratio 0.0" in output["error"]
    secrets = canaries()
    assert not leaks(json.dumps(output), secrets)
    assert_driver_logs_clean(runner_driver_logs(run_id), secrets)


def landing_files_holding(needles: set[bytes]) -> list[str]:
    s3 = pii_scan.s3_client()
    hits = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=os.environ["LANDING_BUCKET"], Prefix="member/"):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=os.environ["LANDING_BUCKET"], Key=obj["Key"])["Body"].read()
            if any(n in pii_scan.searchable(obj["Key"], body) for n in needles):
                hits.append(obj["Key"])
    return hits


def test_a_deferred_merge_survives_a_scheduler_and_triggerer_restart(api, spark, mysql_root, runs):
    """Issue 23 item 1: five members change at the source; while merge_members is deferred (its Databricks
    run going on), the scheduler and the triggerer are stopped and started again, as an operator restarts
    them. The new triggerer takes the deferral over and the same try finishes: one Databricks run, the five
    changes applied once, no duplicate key (I2), the counts reconciled (I3). After the failing job's test,
    which applies a copy of the shared run's batch: this run's newer batch would make that one refused."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    cur = mysql_root.cursor()
    cur.execute(f"UPDATE `{os.environ['MYSQL_DATABASE']}`.member SET first_name = CONCAT(first_name, 'r') "
                "ORDER BY member_id LIMIT 5")
    before = delta_state(spark)
    run_id = f"e2e__{stamp}__restart"
    trigger(DAG_ID, run_id)
    deadline = time.monotonic() + 600
    while (states := api.task_states(DAG_ID, run_id)).get("merge_members") != "deferred":
        assert time.monotonic() < deadline and api.run_state(DAG_ID, run_id) in ("queued", "running"), states
        time.sleep(0.5)
    subprocess.run([str(Path(__file__).parents[2] / "dev" / "stack.sh"), "restart-airflow", "scheduler", "triggerer"],
                   check=True, capture_output=True, timeout=300)
    assert api.wait_for_run(DAG_ID, run_id, timeout=900) == "success", api.task_states(DAG_ID, run_id)
    merge = api.get(f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/merge_members").json()
    assert merge["try_number"] == 1, "the deferral was taken over, not retried with a second Databricks run"
    counts = task_result(api, DAG_ID, run_id, "reconcile")
    assert counts["change_detection"] == "change set"
    assert counts["valid_rows"] + counts["quarantined_rows"] == 5
    assert delta_state(spark) == DeltaState(before.rows, 0, before.version + 1)


def test_erasure_removes_a_member_everywhere_and_maintenance_runs(api, spark, mysql_root, runs):
    """Last, as it changes the source and the tables the tests above read: after the shared run, a member
    deleted at the source, then erased by the DAG, is in no landing batch, no table version and no table file;
    the maintenance DAG, scheduled on the member tables' Assets, runs beside nothing and
    succeeds."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    dim = decrypted(spark, "dim_member", "email", "phone_number", "address")
    victim = dim.where("is_current AND first_name_enc IS NOT NULL").orderBy("member_id").first()
    member_id = victim["member_id"]
    needles = {member_id.encode(), victim["email_hash"].encode()} | {
        v.encode() for v in (victim["email"], victim["phone_number"], victim["address"]) if v and len(v) >= 6}
    for row in spark.read.format("delta").load(layout.delta_table_uri("dim_member")).where(
            f"member_id = '{member_id}'").collect():
        needles |= {bytes(row[c]) for c in row.asDict() if c.endswith("_enc") and row[c]}
    assert landing_files_holding({member_id.encode()}), "the member must be in a landed batch first"
    members_before = spark.read.format("delta").load(layout.delta_table_uri("member")).count()

    # still at the source: refused, nothing touched
    trigger("member_erasure", f"e2e__{stamp}__refused", {"member_id": member_id})
    assert api.wait_for_run("member_erasure", f"e2e__{stamp}__refused", timeout=600) == "failed"
    check = api.get(f"dags/member_erasure/dagRuns/e2e__{stamp}__refused/taskInstances/check_source").json()
    assert (check["state"], check["try_number"]) == ("failed", 1), "a refusal is final: no retry"
    assert spark.read.format("delta").load(layout.delta_table_uri("member")).count() == members_before

    mysql_root.cursor().execute(f"DELETE FROM {os.environ['MYSQL_DATABASE']}.member WHERE member_id = %s",
                                (member_id,))
    # the seeded source repeats emails, phones and addresses across members: what another member also has
    # stays, rightly, so only the erased member's own values are searched for
    shared = set(pii_scan.source_values())
    others_hashes = {r["email_hash"].encode() for r in dim.where(f"member_id != '{member_id}'")
                     .select("email_hash").where("email_hash IS NOT NULL").collect()}
    needles -= shared | others_hashes
    assert member_id.encode() in needles and len(needles) > 3
    # a member_merge run submitted straight to the Jobs API, as someone outside Airflow would (no pool sees
    # it): the erasure waits until it has ended before it purges anything (issue 23 item 2). It applies a copy
    # of the newest landed snapshot with a quarantine limit of 0, so it reads and writes (quarantine rows) and
    # then fails before its MERGEs: whatever the landing erasure does to the batch meanwhile, it changes no
    # member's row, and the counts below stay the erasure's alone
    s3 = pii_scan.s3_client()
    # the newest batch a run landed: an older one would be refused at once (history only moves forward)
    [newest] = api.get(f"dags/{DAG_ID}/dagRuns?state=success&order_by=-end_date&limit=1").json()["dag_runs"]
    newest_batch = task_result(api, DAG_ID, newest["dag_run_id"], "extract_members")["batch_id"]
    landed = read_manifest(s3, os.environ["LANDING_BUCKET"], "member", newest_batch)
    copy = dataclasses.replace(landed, batch_id=f"{landed.batch_id}.e2e-outside", change_set=None)
    publish_manifest(s3, os.environ["LANDING_BUCKET"], copy, {})
    hook = DatabricksHook(databricks_conn_id="databricks_default")
    outside = hook.submit_run(json.loads(jinja2.Environment().from_string(json.dumps(
        member_merge_run(copy.batch_id, max_quarantine_ratio="0"))).render(
        ti={"dag_id": DAG_ID, "task_id": "outside_airflow"})))
    run_to_success(api, "member_erasure", f"e2e__{stamp}__erase", {"member_id": member_id})
    ended = hook.get_run(outside)
    # a failed run ends INTERNAL_ERROR / FAILED, as on Databricks (the runner's contract: dev/databricks_runner)
    assert (ended["state"]["life_cycle_state"], ended["state"]["result_state"]) == ("INTERNAL_ERROR", "FAILED")

    def task_ms(task: str, field: str) -> float:
        return 1000 * dt.datetime.fromisoformat(api.get(
            f"dags/member_erasure/dagRuns/e2e__{stamp}__erase/taskInstances/{task}").json()[field]).timestamp()

    assert task_ms("erase_landing", "end_date") < ended["end_time"], (
        "the outside run ended before the erasure reached its wait: this run proves nothing")
    assert task_ms("erase_lakehouse", "start_date") >= ended["end_time"]
    waited = api.get(f"dags/member_erasure/dagRuns/e2e__{stamp}__erase/taskInstances/wait_for_table_writers/logs/1"
                     "?full_content=true").text
    assert f"waiting for runs writing the tables: {outside} " in waited

    verified = task_result(api, "member_erasure", f"e2e__{stamp}__erase", "verify")
    assert verified["rows_removed"]["member"] == 1 and verified["rows_left"] == {
        "member": 0, "dim_member": 0, "member_quarantine": 0}
    assert landing_files_holding(needles) == []
    report = pii_scan.scan({n: "trace" for n in needles}, tables=pii_scan.PROTECTED_TABLES)
    assert not report.found, f"traces of the erased member in {sorted(report.found)}"
    assert spark.read.format("delta").load(layout.delta_table_uri("member")).count() == members_before - 1
    # the request log holds a hash, not the id
    assert not pii_scan.scan({member_id.encode(): "member_id"}, tables=("erasure_requests",)).found

    run_to_success(api, "lakehouse_maintenance", f"e2e__{stamp}__maintenance")
    consumers = {d["dag_id"] for a in api.get("assets?limit=100").json()["assets"]
                 if a["name"] == "delta_member" for d in a.get("scheduled_dags", [])}
    assert "lakehouse_maintenance" in consumers
