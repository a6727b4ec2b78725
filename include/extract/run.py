"""The extract as the DAG and the command line run it: connections resolved by Airflow's hooks.

Hooks read connections from AIRFLOW_CONN_* variables (or a secrets backend) with or without a running
Airflow, so `python -m include.extract` behaves exactly like the task.
"""

from __future__ import annotations

import datetime as dt

from include import settings
from include.extract.contract import MEMBER
from include.extract.publish import extract_table
from include.layout import manifest_key


def batch_id_for(day: dt.date) -> str:
    """The Hive-style batch key of one daily extraction interval."""
    return f"extract_date={day:%Y-%m-%d}"


def extract_member_batch(batch_id: str, run_id: str) -> dict:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    conn = MySqlHook(mysql_conn_id=settings.MYSQL_CONN_ID).get_conn()
    try:
        manifest = extract_table(
            conn, S3Hook(aws_conn_id=settings.AWS_CONN_ID).get_conn(), contract=MEMBER,
            bucket=settings.LANDING_BUCKET, batch_id=batch_id, run_id=run_id,
            sse=settings.S3_SSE, sse_kms_key_id=settings.S3_SSE_KMS_KEY_ID,
            rows_per_file=settings.EXTRACT_ROWS_PER_FILE,
        )
    finally:
        conn.close()
    return {
        "batch_id": batch_id,
        "manifest_key": manifest_key(MEMBER.table, batch_id),
        "row_count": manifest["row_count"],
    }
