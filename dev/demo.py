"""`make demo`: trigger the member pipeline on the running local stack and print a reconciliation report.

Runs inside `dev/stack.sh run` (the stack's environment). Triggering again is safe: the run's interval
maps to the same batch, which is replaced, and the MERGE changes nothing that did not change.
"""

from __future__ import annotations

import datetime as dt
import os
import sys

from dev.airflow_api import AirflowApi, trigger
from dev.demo_report import counts_for_run

DAG_ID = "member_pipeline"


def main() -> int:
    api = AirflowApi()
    print("==> waiting for Airflow to list the DAG", flush=True)
    api.wait_for_dag(DAG_ID)
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
    ok = c["mysql_rows"] == c["manifest_rows"] == c["parquet_rows"] == c["valid_rows"] + c["quarantined_rows"]
    print(f"""
Reconciliation for run {run_id} (batch {c['batch_id']})
  MySQL rows (members.member)         {c['mysql_rows']:>10}
  Parquet rows per the batch manifest {c['manifest_rows']:>10}
  Parquet rows read from the files    {c['parquet_rows']:>10}
  Valid rows                          {c['valid_rows']:>10}
  Quarantined rows (this batch)       {c['quarantined_rows']:>10}
  {'OK: MySQL = manifest = Parquet = valid + quarantined' if ok else 'MISMATCH: see the counts above'}

The MERGE (Delta version {c['delta_version']}, checked against its commit by the DAG's reconcile task)
  inserted {c['inserted_rows']}, updated {c['updated_rows']}, deleted {c['deleted_rows']}
  Delta table rows now                {c['delta_rows']:>10}

Airflow UI     {api.base_url}  (user {os.environ['AIRFLOW_ADMIN_USER']}, password: AIRFLOW_ADMIN_PASSWORD in .env)
S3 endpoint    {os.environ['S3_ENDPOINT_URL']}  (console http://127.0.0.1:{os.environ['S3_CONSOLE_PORT']})
               keys: S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY in .env
Landing batch  {c['manifest_uri']}
Delta table    {c['delta_uri']}
Stop the stack with `make down`; data stays in .local/.""")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
