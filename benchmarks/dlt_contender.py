"""The dlt contender of benchmarks.member_daily: one daily load of MySQL `member` into a Delta table.

    .local/bench-venv/bin/python benchmarks/dlt_contender.py --database bench_daily \
        --bucket-url s3://bench-daily-lakehouse/dlt --pipelines-dir /tmp/x --result /tmp/result.json

Runs in its own venv (requirements/bench.lock: dlt, deltalake, connectorx, PyMySQL), never the project's, and
imports nothing from the repository. It is what the dlt documentation shows for a SQL table into a Delta
table on S3: `sql_table(..., backend="connectorx")`, merge on the primary key `member_id` (dlt's `upsert`
strategy: delta-rs MERGE, update every matched row, insert the others), the `filesystem` destination with
`table_format="delta"`, S3 credentials and endpoint from the environment (S3_*), MySQL credentials from
MYSQL_HOST, MYSQL_PORT, MYSQL_EXTRACT_USER and MYSQL_EXTRACT_PASSWORD. Passwords never appear in argv or
output.

`--connectorx-mode stream` (the default) reads through ConnectorX's Arrow stream in `--chunk-size` row
batches, as dlt's docs advise for tables larger than a chunk; `table` is dlt's default, one Arrow table of
the whole result. The harness starts this script as a child process and measures its process tree; the
script writes what only it knows (dlt's own step timings, rows, versions) as JSON to --result.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # before the heavy imports, so that import time is reported apart

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from importlib import metadata  # noqa: E402
from urllib.parse import quote  # noqa: E402


def mysql_url(scheme: str, database: str) -> str:
    auth = f"{quote(os.environ['MYSQL_EXTRACT_USER'], safe='')}:{quote(os.environ['MYSQL_EXTRACT_PASSWORD'], safe='')}"
    return (f"{scheme}://{auth}@{os.environ.get('MYSQL_HOST', '127.0.0.1')}:"
            f"{os.environ.get('MYSQL_PORT', '3306')}/{database}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--table", default="member")
    parser.add_argument("--bucket-url", required=True, help="s3://bucket/prefix: the filesystem destination")
    parser.add_argument("--dataset", default="member_daily", help="dlt dataset: the folder under --bucket-url")
    parser.add_argument("--pipeline-name", default="member_daily_bench")
    parser.add_argument("--pipelines-dir", required=True, help="dlt's local pipeline state (one per target)")
    parser.add_argument("--connectorx-mode", choices=("stream", "table"), default="stream")
    parser.add_argument("--chunk-size", type=int, default=100_000)
    parser.add_argument("--result", required=True)
    args = parser.parse_args(argv)

    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import connectorx  # noqa: F401  (imported here so that import time is counted apart)
    import deltalake  # noqa: F401
    import dlt
    from dlt.sources.credentials import ConnectionStringCredentials
    from dlt.sources.sql_database import sql_table

    imported = time.perf_counter()
    backend_kwargs = {"conn": mysql_url("mysql", args.database)}  # ConnectorX's URL; SQLAlchemy reflects
    if args.connectorx_mode == "stream":
        backend_kwargs |= {"return_type": "arrow_stream", "batch_size": args.chunk_size}
    member = sql_table(
        credentials=ConnectionStringCredentials(mysql_url("mysql+pymysql", args.database)),
        table=args.table,
        backend="connectorx",
        chunk_size=args.chunk_size,
        backend_kwargs=backend_kwargs,
        write_disposition="merge",
        primary_key="member_id",
    )
    destination = dlt.destinations.filesystem(
        bucket_url=args.bucket_url,
        credentials={
            "aws_access_key_id": os.environ["S3_ACCESS_KEY_ID"],
            "aws_secret_access_key": os.environ["S3_SECRET_ACCESS_KEY"],
            "endpoint_url": os.environ["S3_ENDPOINT_URL"],
            "region_name": os.environ.get("S3_REGION", "us-east-1"),
        },
    )
    pipeline = dlt.pipeline(pipeline_name=args.pipeline_name, destination=destination,
                            dataset_name=args.dataset, pipelines_dir=args.pipelines_dir)
    pipeline.run(member, table_format="delta")
    done = time.perf_counter()

    trace = pipeline.last_trace
    steps = {s.step: round((s.finished_at - s.started_at).total_seconds(), 3)
             for s in trace.steps if s.started_at and s.finished_at}
    rows = None
    normalize = pipeline.last_trace.last_normalize_info
    if normalize is not None:
        rows = normalize.row_counts.get(args.table)
    result = {
        "rows": rows,
        "steps_s": steps,
        "import_s": round(imported - STARTED, 3),
        "work_s": round(done - imported, 3),
        "table_uri": f"{args.bucket_url.rstrip('/')}/{args.dataset}/{args.table}",
        "connectorx_mode": args.connectorx_mode,
        "chunk_size": args.chunk_size,
        "versions": {d: metadata.version(d) for d in
                     ("dlt", "deltalake", "connectorx", "pyarrow", "sqlalchemy", "pymysql")},
    }
    with open(args.result, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
