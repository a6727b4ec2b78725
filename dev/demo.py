"""`make demo`: trigger the member pipeline on the running local stack and print a reconciliation report,
then ingest a batch of invoice PDFs (dev/demo_invoices.py) and report what was loaded and quarantined.

Runs inside `dev/stack.sh run` (the stack's environment). Before triggering, it makes a day's worth of
changes at the source (one member deleted, one updated, one new), so the report shows the MERGE's
inserts, updates and deletes; the seeded dirty rows (dev/seed_members.py DIRTY_MEMBERS) show as
quarantined with their reasons. Triggering again is safe: the new run lands a batch of its own
(include/landing/batch_id.py) and the MERGE changes only what changed at the source since the last one.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time

from dev import demo_invoices, pii_scan
from dev.airflow_api import AirflowApi, airflow_cli, trigger
from dev.demo_report import counts_for_run
from dev.seed_members import DIRTY_MEMBERS, connect_root, generate_members, load_members

DAG_ID = "member_pipeline"
MAINTENANCE_DAG_ID = "lakehouse_maintenance"


def change_the_source() -> None:
    """One deleted member, one changed email and one new member, as a day at the source might bring."""
    conn = connect_root(os.environ["MYSQL_DATABASE"])
    cur = conn.cursor()
    dirty = [row["member_id"] for row in DIRTY_MEMBERS]
    keep = ", ".join(["%s"] * len(dirty))
    cur.execute(f"SELECT member_id FROM member WHERE member_id NOT IN ({keep}) ORDER BY member_id LIMIT 2", dirty)
    gone, moved = (row[0] for row in cur.fetchall())
    cur.execute("DELETE FROM member WHERE member_id = %s", (gone,))
    cur.execute("UPDATE member SET email = CONCAT('moved.', email) WHERE member_id = %s", (moved,))
    conn.commit()
    load_members(conn, generate_members(1, seed=int(dt.datetime.now().timestamp())))
    conn.close()
    print(f"==> source changes: member {gone} deleted, {moved} changed email, one new member", flush=True)


def asset_triggered_run(api: AirflowApi, after: str, timeout: float = 120) -> str | None:
    """The run of the maintenance DAG the Asset events of run `after` queued, once it exists."""
    started = api.get(f"dags/{DAG_ID}/dagRuns/{after}").json()["start_date"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = api.get(f"dags/{MAINTENANCE_DAG_ID}/dagRuns?order_by=-run_after&limit=5").json()["dag_runs"]
        for run in runs:
            if run["run_type"] == "asset_triggered" and (run["queued_at"] or "") >= started:
                return run["dag_run_id"]
        time.sleep(3)
    return None


def main() -> int:
    api = AirflowApi()
    print("==> waiting for Airflow to list the DAG", flush=True)
    api.wait_for_dag(DAG_ID)
    # unpausing makes the scheduler run today's interval: let that run finish first, so the source
    # changes below are what this demo's run merges
    airflow_cli("dags", "unpause", DAG_ID)
    # runs after each verified member run, scheduled on the member table's Asset (include/assets.py)
    api.wait_for_dag(MAINTENANCE_DAG_ID)
    airflow_cli("dags", "unpause", MAINTENANCE_DAG_ID)
    print("==> waiting for any scheduled run of the DAGs to finish", flush=True)
    api.wait_until_idle(DAG_ID)
    api.wait_until_idle(MAINTENANCE_DAG_ID)
    change_the_source()
    run_id = "demo__" + dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    print(f"==> airflow dags trigger {DAG_ID} --run-id {run_id}", flush=True)
    trigger(DAG_ID, run_id)

    def show(tasks: dict) -> None:
        print("    " + "  ".join(f"{t}={s or 'none'}" for t, s in tasks.items()), flush=True)

    state = api.wait_for_run(DAG_ID, run_id, progress=show)
    if state != "success":
        print(f"run {run_id} ended {state}: see the UI at {api.base_url} or .local/logs/", file=sys.stderr)
        return 1

    c = counts_for_run(api, DAG_ID, run_id)
    if c.get("no_changes"):
        return report_unchanged_day(api, run_id, c, show)
    print(f"==> {MAINTENANCE_DAG_ID}: started by the Asset delta_member that {run_id} updated", flush=True)
    maintenance = asset_triggered_run(api, after=run_id)
    maintenance_state = api.wait_for_run(MAINTENANCE_DAG_ID, maintenance, progress=show) if maintenance else None

    reasons = "\n".join(f"    {reason:<32}{n:>10}" for reason, n in sorted(c["quarantine_reasons"].items()))
    ok = (c["mysql_rows"] == c["manifest_rows"] == c["parquet_rows"]
          == c["unchanged_rows"] + c["valid_rows"] + c["quarantined_rows"])
    print("==> searching every file of the Delta tables for the source's plaintext emails, phones, addresses",
          flush=True)
    scan = pii_scan.scan(pii_scan.source_values())
    ok = ok and not scan.found
    print(f"""
Reconciliation for run {run_id} (batch {c['batch_id']})
  MySQL rows (members.member)         {c['mysql_rows']:>10}
  Parquet rows per the batch manifest {c['manifest_rows']:>10}
  Parquet rows read from the files    {c['parquet_rows']:>10}
  Unchanged since the last batch      {c['unchanged_rows']:>10}
  New or changed, valid               {c['valid_rows']:>10}
  Quarantined rows (this batch)       {c['quarantined_rows']:>10}
{reasons}
  {'OK: MySQL = manifest = Parquet = unchanged + valid + quarantined' if ok else 'MISMATCH: see the counts above'}

member (current state; Delta version {c['delta_version']}, checked against its commit by the DAG's reconcile task)
  inserted {c['inserted_rows']}, updated {c['updated_rows']}, deleted {c['deleted_rows']}
  rows now                            {c['delta_rows']:>10}
dim_member (history, SCD type 2; Delta version {c['dim_member_version']})
  versions opened {c['dim_member_versions_opened']}, closed {c['dim_member_versions_closed']}
  rows (all versions)                 {c['dim_member_rows']:>10}
  current versions                    {c['dim_member_current_rows']:>10}
PII: {scan.objects} files of {', '.join(pii_scan.PROTECTED_TABLES)} (every retained version) searched for
  {scan.values_searched} plaintext emails, phones and addresses from MySQL: {
      'none found' if not scan.found else f'FOUND in {sorted(scan.found)}'}

Assets         member_pipeline.reconcile updated delta_member, delta_dim_member, delta_member_quarantine;
               {MAINTENANCE_DAG_ID} (OPTIMIZE, VACUUM 7 days, landing expiry) ran on them: {
                   maintenance_state or 'no run was queued'} (UI: {api.base_url}/assets)
Erasure        airflow dags trigger member_erasure --conf '{{"member_id": "<uuid>"}}' after deleting the member
               at the source (docs/pii.md, "Erasure")

Airflow UI     {api.base_url}  (user {os.environ['AIRFLOW_ADMIN_USER']}, password: AIRFLOW_ADMIN_PASSWORD in .env)
S3 endpoint    {os.environ['S3_ENDPOINT_URL']}  (console http://127.0.0.1:{os.environ['S3_CONSOLE_PORT']})
               keys: S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY in .env
Landing batch  {c['manifest_uri']}
Delta table    {c['delta_uri']}
""")
    print(f"==> {demo_invoices.DAG_ID}: invoice PDFs into the invoice star schema", flush=True)
    invoices_ok, report = demo_invoices.run(api, show)
    print(report)
    print("\nStop the stack with `make down`; data stays in .local/.")
    return 0 if ok and maintenance_state == "success" and invoices_ok else 1


def report_unchanged_day(api, run_id: str, c: dict, show) -> int:
    """A run whose batch changed nothing since the last (a second `make demo`): no Databricks run, no Asset
    update, no maintenance; the invoices still load."""
    ok = c["mysql_rows"] == c["manifest_rows"] == c["parquet_rows"] == c["unchanged_rows"]
    print(f"""
Run {run_id} (batch {c['batch_id']}): nothing changed since the last batch
  MySQL rows (members.member)         {c['mysql_rows']:>10}
  Parquet rows per the batch manifest {c['manifest_rows']:>10}
  Unchanged (in the tables as landed) {c['unchanged_rows']:>10}
  {'OK' if ok else 'MISMATCH'}: member is still Delta version {c['member_version']}'s data; merge_members was
  skipped (no Databricks run) and confirm_unchanged checked the batch (include/reconcile.py)
""")
    print(f"==> {demo_invoices.DAG_ID}: invoice PDFs into the invoice star schema", flush=True)
    invoices_ok, report = demo_invoices.run(api, show)
    print(report)
    return 0 if ok and invoices_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
