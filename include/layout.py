"""Where each dataset lives in the lakehouse bucket (Delta tables, the jobs' result files). One place, so
the Spark job's parameters, the Assets and the reconciliation can never disagree about a path. Landed
batches in the landing bucket: include/landing/layout.py."""

from __future__ import annotations

from include import settings


def delta_table_uri(table: str) -> str:
    return f"s3://{settings.LAKEHOUSE_BUCKET}/{delta_table_key(table)}"


def delta_table_key(table: str) -> str:
    return f"{DELTA_ROOT_KEY}/{table}"


DELTA_ROOT_KEY = "delta"


def delta_root_uri() -> str:
    """Where every Delta table lives, one folder each (lakehouse_jobs.tables names them)."""
    return f"s3://{settings.LAKEHOUSE_BUCKET}/{DELTA_ROOT_KEY}"


def delta_commit_key(table: str, version: int) -> str:
    """The Delta log file of one commit of a table in the lakehouse bucket."""
    return f"{delta_table_key(table)}/_delta_log/{version:020d}.json"


def result_key(table: str, batch_id: str) -> str:
    """The Spark job's result file (counts after its commit), which the DAG reconciles."""
    return f"_results/{table}/{batch_id}.json"


def result_uri(table: str, batch_id: str) -> str:
    return f"s3://{settings.LAKEHOUSE_BUCKET}/{result_key(table, batch_id)}"


def change_state_key(table: str) -> str:
    """The prefix of a table's change state (lakehouse_jobs.change_state), which the job writes after its
    commits and the next extract compares the source with; ends with "/"."""
    return f"_state/{table}/"


def change_state_uri(table: str) -> str:
    return f"s3://{settings.LAKEHOUSE_BUCKET}/{change_state_key(table)}"
