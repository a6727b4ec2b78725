"""Where the extract's time goes: each stage of ours and of SqlToS3Operator timed alone, in one process.

    dev/stack.sh run python -m benchmarks.extract_stages --database bench_1000000 --repeats 3

A companion to extract_bench (run that first: it creates the scratch table). It explains the benchmark's
numbers; it is not one of them: stages run in-process, one after another, interleaved across repeats,
and the Parquet stages write to a sink that discards bytes (no S3), so what remains of the full run's
in-process time is the upload. Prints the median and every run of each stage, in seconds.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import warnings

import connectorx as cx
import MySQLdb
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.contenders import mysql_settings, mysql_url
from include.extract.readers import connectorx_reader, stream_record_batches
from include.extract.schema_drift import select_sql
from lakehouse_jobs.contracts import MEMBER, arrow_schema

ROW_GROUP = 128 * 1024  # extract_table's default


class NullSink(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return len(memoryview(data))


def connect(database: str):
    m = mysql_settings(database)
    return MySQLdb.connect(host=m["host"], port=m["port"], user=m["user"], password=m["password"],
                           database=database, charset="utf8mb4")


def stages(database: str) -> dict:
    # what the reader returns: the landed schema but the row hash, which the extract adds (change_set.py)
    landed = arrow_schema(MEMBER, landed=True)
    query, schema, url = select_sql(MEMBER), landed.remove(landed.get_field_index("_row_hash")), mysql_url(database)

    def cx_read():
        for _ in cx.read_sql(url, query, return_type="arrow_stream", batch_size=64 * 1024):
            pass

    def cx_read_parquet():
        writer = pq.ParquetWriter(NullSink(), schema, compression="zstd")
        for batch in connectorx_reader(url)(query, schema):
            writer.write_batch(batch, row_group_size=ROW_GROUP)
        writer.close()

    def mysqlclient_read():
        conn = connect(database)
        for _ in stream_record_batches(conn, query, schema):
            pass
        conn.close()

    table = pa.Table.from_batches(list(connectorx_reader(url)(query, schema)))

    def parquet_only(compression):
        writer = pq.ParquetWriter(NullSink(), schema, compression=compression)
        writer.write_table(table, row_group_size=ROW_GROUP)
        writer.close()

    timings = {}
    for name, stage in [
        ("ours: ConnectorX read", cx_read),
        ("ours: ConnectorX read + Parquet zstd (no upload)", cx_read_parquet),
        ("ours: Parquet zstd encode alone (table in memory)", lambda: parquet_only("zstd")),
        ("ours: Parquet snappy encode alone (table in memory)", lambda: parquet_only("snappy")),
        ("ours (mysqlclient): read into Arrow", mysqlclient_read),
    ]:
        started = time.perf_counter()
        stage()
        timings[name] = time.perf_counter() - started
    table = None  # frees the in-memory table before the operator stages allocate theirs
    timings.update(operator_stages(database))
    return timings


def operator_stages(database: str) -> dict:
    """SqlToS3Operator.execute's steps, with its own code where it has a function for them."""
    from airflow.providers.amazon.aws.transfers.sql_to_s3 import FILE_FORMAT, SqlToS3Operator
    from pandas.io import sql as psql

    conn = connect(database)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns about DB-API connections other than sqlite3
        df = psql.read_sql(select_sql(MEMBER), con=conn)  # what MySqlHook.get_df does
    conn.close()
    read = time.perf_counter()
    SqlToS3Operator._fix_dtypes(df, FILE_FORMAT.PARQUET)
    fixed = time.perf_counter()
    df.to_parquet(io.BytesIO())
    written = time.perf_counter()
    return {"operator: get_df (buffered cursor -> pandas)": read - started,
            "operator: _fix_dtypes (object columns -> str)": fixed - read,
            "operator: to_parquet into BytesIO (snappy)": written - fixed}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", default="bench_1000000")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    runs: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for name, seconds in stages(args.database).items():
            runs.setdefault(name, []).append(seconds)
    for name, values in runs.items():
        print(f"{name:<55} {statistics.median(values):6.2f}   {' '.join(f'{v:.2f}' for v in values)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
