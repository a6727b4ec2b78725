"""
### Member erasure: remove one member everywhere, history included (GDPR Art. 17)

Trigger with `{"member_id": "<uuid>"}` (UI: "Trigger DAG w/ config"; CLI: `airflow dags trigger
member_erasure --conf '{"member_id": "..."}'`), after the member was deleted at the source.

1. **check_source**: the member must be gone from MySQL `members.member`, or tomorrow's snapshot would
   bring them back; the run fails and says so.
2. **erase_landing**: rewrites every landed batch that holds the member without their rows, keeping each
   manifest's counts, sizes and checksums true (`include/erasure_landing.py`).
3. **wait_for_table_writers**: waits (rescheduled, holding no worker; at most an hour) until the Jobs API
   lists no active run of a job that writes the tables, whoever submitted it (include/table_writers.py):
   the purge below must never run beside a writer.
4. **erase_lakehouse**: a Databricks run of `member_erasure` (`spark_jobs`): deletes the member from
   `member`, every `dim_member` version and `member_quarantine`, then `REORG TABLE … APPLY (PURGE)` and
   `VACUUM … LITE RETAIN 0 HOURS` (only files the log removed: never a running writer's), so no older
   table version can bring the rows back, and records the request by a keyed hash of the id in
   `erasure_requests`. It shares the pool of the member tables' writers, so it never runs beside the
   member MERGE that Airflow starts.
5. **verify**: the job's counts: no row of the member left in any table.

Rerunning a request is harmless: nothing is left to remove. Vacuuming below 7 days ends time travel to
older versions for every reader; that is the price of erasing history (docs/pii.md, "Erasure").
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, PokeReturnValue, dag, task
from airflow.sdk.exceptions import AirflowFailException

from include import settings
from include.assets import MEMBER_TABLES, MEMBER_TABLES_POOL
from include.dag_defaults import DAG_ARGS, SAFE_RUN_ID, databricks_run_task, default_args, safe_run_id
from include.databricks_runs import member_erasure_run
from include.databricks_submit import execution_timeout_for
from lakehouse_jobs.keys import UUID_PATTERN

ERASURE_RUN = member_erasure_run(
    "{{ params.member_id }}", SAFE_RUN_ID,
    "{{ ti.xcom_pull(task_ids='erase_landing') | tojson }}",
)


@dag(
    schedule=None,
    **DAG_ARGS,
    # the worst case of every task's tries, timeouts and backoff (tests/dags/test_dag_integrity.py)
    dagrun_timeout=dt.timedelta(hours=7, minutes=30) + 3 * execution_timeout_for(ERASURE_RUN),
    default_args=default_args(max_retry_delay=dt.timedelta(minutes=5)),
    tags=["member", "gdpr", "erasure", "delta"],
    params={"member_id": Param(type="string", pattern=UUID_PATTERN,
                               description="the member's UUID, lower case, as in members.member")},
    doc_md=__doc__,
)
def member_erasure():
    @task(execution_timeout=dt.timedelta(minutes=5))
    def check_source(params: dict) -> None:
        from airflow.providers.mysql.hooks.mysql import MySqlHook

        from include.erasure_landing import member_in_source

        if member_in_source(MySqlHook(mysql_conn_id=settings.MYSQL_CONN_ID), params["member_id"]):
            # a refusal, not a fault: retrying would only make the requester wait for the same answer
            raise AirflowFailException("the member is still in members.member: delete it at the source first, or "
                                       "the next snapshot brings it back")

    # the pool: never beside the landing expiry of the maintenance DAG; retries outlast an extract's lease
    # of a batch (30 minutes at most), which the erasure waits for (include/erasure_landing.py)
    @task(execution_timeout=dt.timedelta(minutes=30), pool=MEMBER_TABLES_POOL, retries=3,
          retry_delay=dt.timedelta(minutes=5))
    def erase_landing(params: dict, run_id: str) -> dict:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from include.erasure_landing import erase_from_landing

        s3 = S3Hook(aws_conn_id=settings.AWS_CONN_ID).get_conn()
        # counts only: this return value is an XCom, and the member id must not be kept there
        return erase_from_landing(s3, settings.LANDING_BUCKET, "member", params["member_id"],
                                  request_id=safe_run_id(run_id))

    # a run outside Airflow, or a MERGE whose task waits for a retry, is invisible to the pool: ask the Jobs API
    # writers still running after an hour fail the erasure (a sensor's timeout is not retried): trigger it again
    @task.sensor(poke_interval=30, timeout=dt.timedelta(hours=1).total_seconds(), mode="reschedule",
                 execution_timeout=dt.timedelta(hours=1, minutes=5))
    def wait_for_table_writers() -> PokeReturnValue:
        import logging

        from airflow.providers.databricks.hooks.databricks import DatabricksHook

        from include import layout
        from include.table_writers import active_table_writers

        writers = active_table_writers(DatabricksHook(databricks_conn_id=settings.DATABRICKS_CONN_ID),
                                       layout.delta_root_uri())
        if writers:
            logging.getLogger("airflow.task").info("waiting for runs writing the tables: %s", ", ".join(writers))
        return PokeReturnValue(is_done=not writers)

    erase_lakehouse = databricks_run_task("erase_lakehouse", ERASURE_RUN, pool=MEMBER_TABLES_POOL)

    @task(execution_timeout=dt.timedelta(minutes=5), outlets=MEMBER_TABLES)
    def verify(run_id: str) -> dict:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from include import layout
        from include.reconcile import read_result
        from lakehouse_jobs.results import ErasureResult

        s3 = S3Hook(aws_conn_id=settings.AWS_CONN_ID).get_conn()
        key = layout.result_key("member_erasure", safe_run_id(run_id))
        result = read_result(s3, settings.LAKEHOUSE_BUCKET, key, ErasureResult)
        if any(result.rows_left.values()):
            raise RuntimeError(f"rows of the member are left after the erasure: {result.rows_left}")
        return {"rows_removed": result.rows_removed, "rows_left": result.rows_left}

    check_source() >> erase_landing() >> wait_for_table_writers() >> erase_lakehouse >> verify()


member_erasure()
