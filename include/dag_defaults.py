"""What every DAG shares, written once: its tasks' default arguments, the Databricks run task, and the run
id made safe for object keys. DAG files hold their schedule, tasks and dependencies, and differ from these
defaults only where they say so.

    @dag(schedule=..., **DAG_ARGS, default_args=default_args(retries=3), ...)
    merge = databricks_run_task("merge_members", MERGE_RUN, pool=MEMBER_TABLES_POOL)
    table_maintenance_run(SAFE_RUN_ID)             # in a templated field: rendered per run
    request_id = safe_run_id(run_id)               # in a task's Python code: the same value
"""

from __future__ import annotations

import datetime as dt

from include import settings
from include.databricks_submit import (
    API_RETRY_DELAY,
    API_RETRY_LIMIT,
    DatabricksSubmitRun,
    execution_timeout_for,
)

# every DAG: one start date, and no runs for the intervals before it was switched on (catchup)
DAG_ARGS = {"start_date": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), "catchup": False}

# tests/dags/test_dag_integrity.py holds every DAG to these: a real owner, at least two retries with
# exponential backoff, an execution_timeout, and a dagrun_timeout that outlasts the worst case of them all
DEFAULT_ARGS = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": dt.timedelta(seconds=20),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=10),
    "execution_timeout": dt.timedelta(minutes=30),
}


def default_args(**overrides) -> dict:
    """DEFAULT_ARGS with a DAG's own `overrides` (keys of BaseOperator's arguments): a new dict each call."""
    return {**DEFAULT_ARGS, **overrides}


def databricks_run_task(task_id: str, run: dict, **overrides) -> DatabricksSubmitRun:
    """The task that submits `run` (a runs/submit JSON of include/databricks_runs.py) and waits for it, with
    the submission settings every DAG uses; `overrides`: any other operator argument (pool, retries, ...).

    Deferrable per DATABRICKS_DEFERRABLE: the triggerer polls the run and no worker slot is held while Spark
    works. API errors (5xx, 429, connection) are retried inside the hook (API_RETRY_LIMIT, API_RETRY_DELAY);
    a failed run by the task's retries. The task's execution_timeout is the run's own timeout_seconds plus a
    margin, so Databricks' TIMEDOUT, with its clear state, normally comes first (include/databricks_submit.py).
    """
    return DatabricksSubmitRun(**{
        "task_id": task_id,
        "json": run,
        "databricks_conn_id": settings.DATABRICKS_CONN_ID,
        "deferrable": settings.DATABRICKS.deferrable,
        "polling_period_seconds": settings.DATABRICKS.poll_seconds,
        "databricks_retry_limit": API_RETRY_LIMIT,
        "databricks_retry_delay": API_RETRY_DELAY,
        "execution_timeout": execution_timeout_for(run),
        **overrides,
    })


# Airflow run ids carry ':' and '+' (manual__2026-11-26T13:00:00+00:00), which Hadoop paths refuse and
# erasure request ids may not hold (include/erasure_landing.REQUEST_ID_PATTERN): each becomes '_'. The
# Jinja form, for templated fields, and the Python form, for task code, must agree: a test renders both.
SAFE_RUN_ID = "{{ run_id | replace(':', '_') | replace('+', '_') }}"


def safe_run_id(run_id: str) -> str:
    """`run_id` with ':' and '+' replaced by '_': usable in object keys and as an erasure request id."""
    return run_id.replace(":", "_").replace("+", "_")
