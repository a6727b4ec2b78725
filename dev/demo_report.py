"""The numbers `make demo` prints for one pipeline run, each read from where the data is: MySQL, the
manifest, the Parquet footers and the Spark job's result file (written after its Delta commit).
(The DAG's own check is include/reconcile.py.)"""

from __future__ import annotations

import json
import os

import MySQLdb
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from dev.bootstrap import s3_client
from include import layout, settings
from include.landing.layout import manifest_uri
from include.landing.manifest_io import read_manifest
from lakehouse_jobs.manifest import BatchManifest


def mysql_row_count() -> int:
    conn = MySQLdb.connect(host=os.environ["MYSQL_HOST"], port=int(os.environ["MYSQL_PORT"]),
                           user=os.environ["MYSQL_EXTRACT_USER"], password=os.environ["MYSQL_EXTRACT_PASSWORD"],
                           database=os.environ["MYSQL_DATABASE"])
    try:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM member")
        return cur.fetchone()[0]
    finally:
        conn.close()


def parquet_row_count(manifest: BatchManifest) -> int:
    """Rows in the batch's files, from their Parquet footers (only the footer is fetched)."""
    fs = pafs.S3FileSystem(access_key=os.environ["S3_ACCESS_KEY_ID"], secret_key=os.environ["S3_SECRET_ACCESS_KEY"],
                           endpoint_override=os.environ["S3_ENDPOINT_URL"],
                           region=os.environ.get("S3_REGION", "us-east-1"))
    return sum(pq.ParquetFile(f.path.removeprefix("s3://"), filesystem=fs).metadata.num_rows
               for f in manifest.files)


def task_result(api, dag_id: str, run_id: str, task_id: str) -> dict:
    """The return value (XCom) of one task of a DAG run, through the REST API."""
    r = api.get(f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value")
    r.raise_for_status()
    value = r.json()["value"]
    return json.loads(value) if isinstance(value, str) else value


def counts_for_run(api, dag_id: str, run_id: str) -> dict:
    """The DAG's own reconciliation (the reconcile task's result, or confirm_unchanged's for a batch that
    changed nothing, with "no_changes") plus MySQL and Parquet counts."""
    batch_id = task_result(api, dag_id, run_id, "extract_members")["batch_id"]
    manifest = read_manifest(s3_client(), settings.LANDING_BUCKET, "member", batch_id)
    unchanged = api.task_states(dag_id, run_id).get("confirm_unchanged") == "success"
    check = "confirm_unchanged" if unchanged else "reconcile"
    return {
        **task_result(api, dag_id, run_id, check),
        "mysql_rows": mysql_row_count(),
        "manifest_rows": manifest.row_count,
        "parquet_rows": parquet_row_count(manifest),
        "manifest_uri": manifest_uri("member", batch_id),
        "delta_uri": layout.delta_table_uri("member"),
    }
