"""
### Member pipeline: MySQL → Parquet on S3 → Delta tables `member` and `dim_member` (a Databricks run)

Every day (or when triggered) for the run's interval:

1. **extract_members** streams the MySQL `member` table into Parquet files under
   `s3://<landing>/member/<batch id>/` (`extract_date=YYYY-MM-DD` for a scheduled run, `ingest_ts=...` for
   any other: include/landing/batch_id.py) and publishes the batch by writing its `_manifest.json` last
   (`include/extract/`). The table is a snapshot, so a run for a past interval (a backfill, an old logical
   date) fails at once saying so. On the way it hashes every row and compares it with the
   change state the last job run left: the batch also holds the rows that changed and the deleted ids
   (its change set, include/extract/change_set.py).
2. **wait_for_manifest** waits until that manifest exists: nothing downstream reads an unpublished batch.
3. **choose_run**: a batch that changes nothing (every row unchanged, nothing deleted, the table as the
   state describes it) needs no Databricks run: **confirm_unchanged** checks exactly that and the run's
   merge is skipped, with the reason in choose_run's log. Any other batch goes on to the merge.
4. **merge_members** submits a Databricks run of the jobs wheel's `member_merge` entry point
   (`spark_jobs/`, package `lakehouse_jobs`), which reads exactly the manifest's files, finds the rows
   that changed since the last batch (keyed row hashes), cleans and validates those, quarantines bad ones
   with a reason, encrypts names, email, phone and address, and applies the rest to `dim_member` (SCD
   type 2: a changed member gets a new version) and to `member` (current state; members absent from the
   snapshot are deleted, unless that would delete more than 5% of the table, which fails the run before
   any change). The PII keys reach the cluster from a Databricks secret scope, never through Airflow.
5. **reconcile** checks the manifest, the job's result file and the job's Delta commits (read from the
   Delta log) against each other: landed = unchanged + valid + quarantined, the commits are this job's
   MERGEs, and their inserted / updated / deleted rows match the table's row counts
   (include/reconcile.py). Its success updates the Assets of the three tables, which schedule
   `lakehouse_maintenance`.

Re-running any task of a run is safe: the extract replaces its batch, the job changes only rows whose
values changed (an unchanged replay commits nothing), keeps the quarantine verdicts on rows it does not
evaluate again, records each run in `member_batches`, and refuses a batch older than one already applied
(history only moves forward).
Connections: `mysql_members`, `aws_lakehouse`, `databricks_default` (ids overridable, see include/settings.py).
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

from include import settings
from include.assets import MEMBER_TABLES, MEMBER_TABLES_POOL
from include.dag_defaults import DAG_ARGS, databricks_run_task, default_args
from include.databricks_runs import member_merge_run
from include.databricks_submit import execution_timeout_for

BATCH_ID = "{{ ti.xcom_pull(task_ids='extract_members')['batch_id'] }}"
# run JSON from per-environment settings (pure: no I/O at parse time); token, timeouts, cancel:
# include/databricks_submit.py, include/dag_defaults.py
MERGE_RUN = member_merge_run(BATCH_ID, max_delete_ratio="{{ params.max_delete_ratio }}",
                             max_quarantine_ratio="{{ params.max_quarantine_ratio }}")
MERGE_TRIES = 3


@dag(
    schedule="@daily",
    **DAG_ARGS,
    max_active_runs=1,
    # the worst case of every task's tries, timeouts and backoff along the chain (checked by
    # tests/dags/test_dag_integrity.py): the run's timeout never cuts short a task still within its retries.
    # Under 5.5 hours for the other tasks and the MERGE's waits, plus every try of the MERGE, which grows
    # with DATABRICKS_RUN_TIMEOUT_SECONDS
    dagrun_timeout=dt.timedelta(hours=5, minutes=30) + MERGE_TRIES * execution_timeout_for(MERGE_RUN),
    default_args=default_args(retries=3),
    tags=["member", "mysql", "databricks", "delta"],
    # a deliberate purge at the source: trigger with {"max_delete_ratio": 1} (UI: "Trigger DAG w/ config")
    params={
        "max_delete_ratio": Param(0.05, type="number", minimum=0, maximum=1,
                                  description="fail before any change if the snapshot deletes more of the table"),
        "max_quarantine_ratio": Param(0.05, type="number", minimum=0, maximum=1,
                                      description="fail before the MERGE if more of the batch is quarantined"),
    },
    doc_md=__doc__,
)
def member_pipeline():
    @task(execution_timeout=settings.EXTRACT_TASK_TIMEOUT)
    def extract_members(**context) -> dict:
        from include.extract.run import extract_member_batch
        from include.landing.batch_id import PastIntervalError, interval_end, snapshot_batch_id

        try:  # one batch per day for scheduled runs, one per run otherwise; never one of a past interval
            batch_id = snapshot_batch_id(str(context["dag_run"].run_type), interval_end(context),
                                         dt.datetime.now(dt.timezone.utc))
        except PastIntervalError as e:
            raise AirflowFailException(str(e)) from None  # no retry can make the past interval extractable
        return extract_member_batch(batch_id, context["run_id"])

    wait_for_manifest = S3KeySensor(
        task_id="wait_for_manifest",
        aws_conn_id=settings.AWS_CONN_ID,
        bucket_name=settings.LANDING_BUCKET,
        bucket_key="{{ ti.xcom_pull(task_ids='extract_members')['manifest_key'] }}",
        mode="reschedule",
        poke_interval=15,
        timeout=dt.timedelta(minutes=10).total_seconds(),
        execution_timeout=dt.timedelta(minutes=15),
    )

    merge_members = databricks_run_task(
        "merge_members", MERGE_RUN,
        # a failed job usually fails again the same way (API errors are retried inside the hook): two
        # retries, not three, keep the worst case of a 50-minute run bounded
        retries=MERGE_TRIES - 1,
        # one writer of the member tables at a time: this MERGE, the erasure, the maintenance (include/assets.py)
        pool=MEMBER_TABLES_POOL,
    )

    # the tables' Assets are updated once the batch is verified: downstream DAGs run on checked data
    @task(execution_timeout=dt.timedelta(minutes=5), outlets=MEMBER_TABLES)
    def reconcile(extracted: dict) -> dict:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from include.reconcile import reconcile_member_batch

        s3 = S3Hook(aws_conn_id=settings.AWS_CONN_ID).get_conn()
        return reconcile_member_batch(s3, extracted["batch_id"], landing_bucket=settings.LANDING_BUCKET,
                                      lakehouse_bucket=settings.LAKEHOUSE_BUCKET)

    @task.branch(execution_timeout=dt.timedelta(minutes=1))
    def choose_run(extracted: dict) -> str:
        import logging

        log = logging.getLogger("airflow.task")
        if extracted.get("no_changes"):
            log.info("batch %s changes nothing (%s): the Databricks run is skipped", extracted["batch_id"],
                     extracted["changes"])
            return "confirm_unchanged"
        log.info("batch %s: %s", extracted["batch_id"], extracted.get("changes") or "compare the whole snapshot")
        return "merge_members"

    # no outlets: the tables did not change, so nothing downstream (maintenance) has new data to act on
    @task(execution_timeout=dt.timedelta(minutes=5))
    def confirm_unchanged(extracted: dict) -> dict:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from include.reconcile import confirm_unchanged_batch

        s3 = S3Hook(aws_conn_id=settings.AWS_CONN_ID).get_conn()
        return confirm_unchanged_batch(s3, extracted["batch_id"], landing_bucket=settings.LANDING_BUCKET,
                                       lakehouse_bucket=settings.LAKEHOUSE_BUCKET)

    extracted = extract_members()
    extracted >> wait_for_manifest >> choose_run(extracted) >> [merge_members, confirm_unchanged(extracted)]
    merge_members >> reconcile(extracted)


member_pipeline()
