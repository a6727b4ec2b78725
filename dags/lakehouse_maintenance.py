"""
### Lakehouse maintenance: compact and vacuum the Delta tables, expire landed batches

Runs after each verified update of the member tables or the invoice facts (scheduled on their Assets,
which the member pipeline's `reconcile` and the invoice pipeline's `check_load` update), never beside
another writer of the member tables (the pool of the member tables' writers).

1. **optimize_and_vacuum**: a Databricks run of `table_maintenance` (`spark_jobs`) on the member tables and
   the invoice star schema: `OPTIMIZE` (compaction of the small files each daily MERGE or invoice load
   adds) and `VACUUM` with the 7-day safety retention, never less.
2. **expire_landing_batches**: deletes landed batches extracted more than `LANDING_RETENTION_DAYS` (14) ago,
   manifest last, which the landing bucket's lifecycle rule would also do (`include/landing/retention.py`):
   the snapshots hold plaintext personal data.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from include import settings
from include.assets import FACT_INVOICE, MEMBER, MEMBER_TABLES_POOL
from include.dag_defaults import DAG_ARGS, SAFE_RUN_ID, databricks_run_task, default_args
from include.databricks_runs import table_maintenance_run
from include.databricks_submit import execution_timeout_for

MAINTENANCE_RUN = table_maintenance_run(SAFE_RUN_ID)


@dag(
    schedule=MEMBER | FACT_INVOICE,  # either pipeline's verified update
    **DAG_ARGS,
    max_active_runs=1,
    # the worst case of every task's tries, timeouts and backoff (tests/dags/test_dag_integrity.py)
    dagrun_timeout=dt.timedelta(hours=3) + 3 * execution_timeout_for(MAINTENANCE_RUN),
    default_args=default_args(retry_delay=dt.timedelta(minutes=1)),
    tags=["maintenance", "delta", "retention"],
    doc_md=__doc__,
)
def lakehouse_maintenance():
    optimize_and_vacuum = databricks_run_task("optimize_and_vacuum", MAINTENANCE_RUN, pool=MEMBER_TABLES_POOL)

    # the pool: never beside an erasure rewriting the same batches
    @task(execution_timeout=dt.timedelta(minutes=15), pool=MEMBER_TABLES_POOL)
    def expire_landing_batches() -> dict:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from include.landing.retention import expire_batches

        s3 = S3Hook(aws_conn_id=settings.AWS_CONN_ID).get_conn()
        return expire_batches(s3, settings.LANDING_BUCKET, "member")

    optimize_and_vacuum >> expire_landing_batches()


lakehouse_maintenance()
