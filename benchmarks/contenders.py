"""One Python contender of the extract benchmark, in a process of its own.

    python -m benchmarks.contenders ours|ours-mysqlclient|operator \
        --database bench_1000000 --bucket bench --batch <id> --result /tmp/result.json

The harness (benchmarks/extract_bench.py) starts this module as a child process and measures the child's
whole process tree: wall time, peak RSS, CPU. The child writes what only it knows (rows it moved, time
spent importing vs. working) as JSON to --result. Connections come from the environment the way the
stack sets them (MYSQL_*, S3_*, AIRFLOW_CONN_AWS_LAKEHOUSE); passwords never appear in argv or output.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # before the heavy imports, so import time is measured separately

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from urllib.parse import quote  # noqa: E402

OPERATOR_CONN_ID = "mysql_bench"


def mysql_settings(database: str) -> dict:
    return {
        "host": os.environ.get("MYSQL_HOST", "127.0.0.1"),
        "port": int(os.environ.get("MYSQL_PORT", "3306")),
        "user": os.environ["MYSQL_EXTRACT_USER"],
        "password": os.environ["MYSQL_EXTRACT_PASSWORD"],
        "database": database,
    }


def mysql_url(database: str, query: str = "") -> str:
    """The scratch database as a URL (ConnectorX, Airflow connection); credentials URL-quoted."""
    m = mysql_settings(database)
    auth = f"{quote(m['user'], safe='')}:{quote(m['password'], safe='')}"
    return f"mysql://{auth}@{m['host']}:{m['port']}/{database}{query}"


def s3_client():
    import boto3

    return boto3.client(
        "s3", endpoint_url=os.environ["S3_ENDPOINT_URL"],
        region_name=os.environ.get("S3_REGION", "us-east-1"),
        aws_access_key_id=os.environ["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["S3_SECRET_ACCESS_KEY"],
    )


def run_ours(args, reader_kind: str) -> dict:
    """`extract_table` exactly as the DAG calls it (contract, SSE, file and row-group sizes by default)."""
    import MySQLdb
    import pyarrow  # noqa: F401

    if reader_kind == "connectorx":
        import connectorx  # noqa: F401  (imported lazily by the reader; here so import time is counted apart)
    from include.extract.engine import extract_table
    from include.extract.readers import connectorx_reader
    from lakehouse_jobs.contracts import MEMBER

    imported = time.perf_counter()
    m = mysql_settings(args.database)
    conn = MySQLdb.connect(host=m["host"], port=m["port"], user=m["user"], password=m["password"],
                           database=m["database"], charset="utf8mb4")
    try:
        reader = connectorx_reader(mysql_url(args.database)) if reader_kind == "connectorx" else None
        manifest = extract_table(conn, s3_client(), contract=MEMBER, bucket=args.bucket, batch_id=args.batch,
                                 run_id="bench", reader=reader)
    finally:
        conn.close()
    done = time.perf_counter()
    return {"rows": manifest.row_count, "files": len(manifest.files),
            "import_s": imported - STARTED, "work_s": done - imported}


def run_operator(args) -> dict:
    """Airflow's SqlToS3Operator, file_format="parquet", everything else at its defaults.

    Its MySQL connection is the same kind of URL as AIRFLOW_CONN_MYSQL_MEMBERS (default cursor, utf8mb4),
    pointed at the scratch database; its S3 connection is the pipeline's own aws_lakehouse.
    """
    os.environ[f"AIRFLOW_CONN_{OPERATOR_CONN_ID.upper()}"] = mysql_url(args.database, "?charset=utf8mb4")
    import MySQLdb  # noqa: F401
    import pandas  # noqa: F401  (get_df imports it lazily; here so import time is counted apart)
    import pyarrow  # noqa: F401
    from airflow.providers.amazon.aws.transfers.sql_to_s3 import SqlToS3Operator
    from airflow.providers.mysql.hooks.mysql import MySqlHook  # noqa: F401

    from include import settings
    from include.extract.schema_drift import select_sql
    from lakehouse_jobs.contracts import MEMBER

    imported = time.perf_counter()
    op = SqlToS3Operator(
        task_id="sql_to_s3_bench", query=select_sql(MEMBER), sql_conn_id=OPERATOR_CONN_ID,
        aws_conn_id=settings.AWS_CONN_ID, s3_bucket=args.bucket, s3_key=f"member/{args.batch}/member.parquet",
        file_format="parquet", replace=True,
    )
    op.execute(context={})
    done = time.perf_counter()
    return {"rows": None, "files": 1, "import_s": imported - STARTED, "work_s": done - imported}


def warm() -> dict:
    """Import everything the contenders import once, so the first measured child does not pay a cold cache."""
    import boto3  # noqa: F401
    import connectorx  # noqa: F401
    import MySQLdb  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    from airflow.providers.amazon.aws.transfers.sql_to_s3 import SqlToS3Operator  # noqa: F401

    from include.extract.engine import extract_table  # noqa: F401

    return {"rows": None, "files": 0, "import_s": time.perf_counter() - STARTED, "work_s": 0.0}


RUNNERS = {
    "ours": lambda a: run_ours(a, "connectorx"),
    "ours-mysqlclient": lambda a: run_ours(a, "mysqlclient"),
    "operator": run_operator,
    "warm": lambda a: warm(),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Run one extract benchmark contender (a child of the harness).")
    parser.add_argument("contender", choices=sorted(RUNNERS))
    parser.add_argument("--database", default="")
    parser.add_argument("--bucket", default="")
    parser.add_argument("--batch", default="")
    parser.add_argument("--result", required=True, help="where to write this run's JSON result")
    args = parser.parse_args(argv)
    result = RUNNERS[args.contender](args)
    with open(args.result, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
