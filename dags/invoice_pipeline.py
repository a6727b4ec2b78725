"""
### Invoice pipeline: invoice PDFs on S3 → the invoice star schema in Delta (a Databricks run)

Every hour (`INVOICE_SCHEDULE`, include/settings.py), or when triggered:

1. **wait_for_invoices** waits for any file under `s3://<landing>/invoices/incoming/`; with none within the
   hour it is skipped, and the run with it (nothing to load is not a failure).
2. **claim_invoices** moves what has arrived into `s3://<landing>/invoices/batches/<batch_id>/` and writes
   the run's file list: this batch's files and those of any earlier batch not yet loaded to the end (a run
   that failed for good, files the job deferred), so the run reads a fixed set of files, anything arriving
   meanwhile goes to the next run, and nothing claimed is left behind (include/invoice_landing.py).
3. **extract_member_cards** extracts the MySQL `member_card` table (card number → member) with the same
   extract code as `member`: an invoice's "Member No." is a card number.
4. **load_invoices** submits a Databricks run of the jobs wheel's `invoice_load` entry point
   (lakehouse_jobs.invoice.job): it reads the listed files (`binaryFile`), skips files whose content hash is
   already in the ledger, parses the PDFs in parallel, checks the arithmetic, quarantines what is unreadable
   or does not add up (with the reason and the file's path), encrypts bill-to and ship-to names and
   addresses, and MERGEs the rest into `fact_invoice`, `fact_invoice_line` and the dimensions
   (docs/invoice-ingestion.md; the tables: docs/invoice-star-schema.md).
5. **check_load** reads the job's result: every listed file is loaded, quarantined, superseded or was
   loaded before, and nothing else; then the batches it covered are closed. Its success updates the invoice
   tables' Assets.

Re-running any task is safe: claiming is idempotent, the ledger makes each file load once, and a corrected
re-issue of an invoice (same number, new content) replaces its lines.
Connections: `mysql_members`, `aws_lakehouse`, `databricks_default`.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException

from include import layout, settings
from include.assets import INVOICE_TABLES
from include.dag_defaults import DAG_ARGS, databricks_run_task, default_args
from include.databricks_runs import invoice_load_run
from include.databricks_submit import execution_timeout_for
from include.invoice_landing import INCOMING_PREFIX, has_incoming_files
from include.landing.batch_id import interval_end, run_batch_id

CLAIM = "{{ ti.xcom_pull(task_ids='claim_invoices')['batch_id'] }}"
CARDS = "{{ ti.xcom_pull(task_ids='extract_member_cards')['batch_id'] }}"
LOAD_RUN = invoice_load_run(CLAIM, CARDS)
LOAD_TRIES = 3


@dag(
    schedule=settings.INVOICE_SCHEDULE,
    **DAG_ARGS,
    max_active_runs=1,
    # every task's tries, timeouts and backoff along the chain (tests/dags/test_dag_integrity.py); runs of an
    # hour that overrun queue behind it (max_active_runs) and the next claim takes what arrived meanwhile
    dagrun_timeout=dt.timedelta(hours=7) + LOAD_TRIES * execution_timeout_for(LOAD_RUN),
    default_args=default_args(retries=3),
    tags=["invoice", "pdf", "databricks", "delta"],
    doc_md=__doc__,
)
def invoice_pipeline():
    wait_for_invoices = S3KeySensor(
        task_id="wait_for_invoices",
        aws_conn_id=settings.AWS_CONN_ID,
        bucket_name=settings.LANDING_BUCKET,
        bucket_key=f"{INCOMING_PREFIX}*",
        wildcard_match=True,
        metadata_keys=["Key", "Size"],
        check_fn=has_incoming_files,  # a console's "folder" placeholder is not an invoice
        mode="reschedule",
        poke_interval=60,
        timeout=dt.timedelta(minutes=50).total_seconds(),
        execution_timeout=dt.timedelta(minutes=55),
        soft_fail=True,  # no invoice this hour: the run is skipped, not failed (a timeout is not retried)
        retries=2,
    )

    @task(execution_timeout=dt.timedelta(minutes=10))
    def claim_invoices(**context) -> dict:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from include.invoice_landing import claim_incoming, close_batches
        from include.landing.s3_writer import sse_args

        s3 = S3Hook(aws_conn_id=settings.AWS_CONN_ID).get_conn()
        # one batch per DAG run, named by its interval's end (a manual run: when it was triggered)
        claimed = claim_incoming(s3, settings.LANDING_BUCKET, run_batch_id(interval_end(context)),
                                 sse_args=sse_args(settings.S3_SSE, settings.S3_SSE_KMS_KEY_ID))
        if not claimed["batch_files"]:  # another run took what the sensor saw: nothing is open, nothing to load
            close_batches(s3, settings.LANDING_BUCKET, claimed["open_batches"])
            raise AirflowSkipException("no invoice file to load")
        return claimed

    @task(execution_timeout=dt.timedelta(minutes=10))
    def extract_member_cards(**context) -> dict:
        from include.extract.run import extract_batch
        from lakehouse_jobs.contracts import MEMBER_CARD

        return extract_batch(MEMBER_CARD, run_batch_id(interval_end(context)), context["run_id"])

    load_invoices = databricks_run_task("load_invoices", LOAD_RUN, retries=LOAD_TRIES - 1)

    @task(execution_timeout=dt.timedelta(minutes=5), outlets=INVOICE_TABLES)
    def check_load(claimed: dict) -> dict:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from include.invoice_landing import close_batches
        from include.reconcile import check_invoice_load, read_result
        from lakehouse_jobs.results import InvoiceLoadResult

        s3 = S3Hook(aws_conn_id=settings.AWS_CONN_ID).get_conn()
        result = read_result(s3, settings.LAKEHOUSE_BUCKET, layout.result_key("invoice", claimed["batch_id"]),
                             InvoiceLoadResult)
        counts = check_invoice_load(claimed, result)
        if not counts["files_deferred"]:  # deferred files keep their batches open for the next run
            close_batches(s3, settings.LANDING_BUCKET, claimed["open_batches"])
        return counts

    claimed = claim_invoices()
    wait_for_invoices >> claimed >> extract_member_cards() >> load_invoices >> check_load(claimed)


invoice_pipeline()
