"""Incremental extracts by a watermark column, against the real MariaDB and MinIO."""

from __future__ import annotations

import datetime as dt
import io
import json

import pyarrow.parquet as pq
import pytest

from include.extract.engine import extract_table
from include.extract.readers import connectorx_reader
from include.extract.watermark import read_high_watermark
from lakehouse_jobs.contracts import MEMBER, Column, SourceContract
from lakehouse_jobs.manifest import BatchManifest, Watermark
from tests.services import mysql_connect

pytestmark = pytest.mark.integration

DB = "incremental_test"
T0 = dt.datetime(2026, 1, 1)
CONTRACT = SourceContract("member", "member_id", MEMBER.columns + (Column("updated_at", "timestamp"),),
                          watermark_column="updated_at")
OVERLAP = dt.timedelta(minutes=10)


@pytest.fixture
def source(mysql_env, mysql_root):
    cur = mysql_root.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")
    cur.execute(f"CREATE DATABASE {DB}")
    cur.execute(f"CREATE TABLE {DB}.member (member_id VARCHAR(36) PRIMARY KEY, first_name VARCHAR(100), "
                "last_name VARCHAR(100), email VARCHAR(255), phone_number VARCHAR(50), address VARCHAR(255), "
                "city VARCHAR(100), country VARCHAR(100), registration_date DATE, updated_at DATETIME(6) NOT NULL)")
    cur.execute(f"GRANT SELECT ON {DB}.member TO %s@'%%'", (mysql_env["MYSQL_EXTRACT_USER"],))
    for i in range(100):  # one row an hour: only the newest falls inside a 10-minute overlap
        insert(cur, f"m{i:03d}", T0 + dt.timedelta(hours=i))
    reader = mysql_connect(mysql_env, mysql_env["MYSQL_EXTRACT_USER"], mysql_env["MYSQL_EXTRACT_PASSWORD"], DB)
    url = (f"mysql://{mysql_env['MYSQL_EXTRACT_USER']}:{mysql_env['MYSQL_EXTRACT_PASSWORD']}"
           f"@{mysql_env['MYSQL_HOST']}:{mysql_env['MYSQL_PORT']}/{DB}")
    yield reader, connectorx_reader(url), cur
    reader.close()
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")


def insert(cur, member_id: str, updated_at: dt.datetime) -> None:
    cur.execute(f"INSERT INTO {DB}.member (member_id, first_name, updated_at) VALUES (%s, %s, %s) "
                "ON DUPLICATE KEY UPDATE first_name = VALUES(first_name), updated_at = VALUES(updated_at)",
                (member_id, f"name {updated_at:%H}", updated_at))


def ids(s3, manifest) -> set[str]:
    out = set()
    for f in manifest.files:
        bucket, key = f.path.removeprefix("s3://").split("/", 1)
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        out |= set(table.column("member_id").to_pylist())
    return out


def extract(source, s3, bucket, batch: str, **kwargs) -> BatchManifest:
    conn, reader, _ = source
    return extract_table(conn, s3, contract=CONTRACT, bucket=bucket, batch_id=batch, run_id="t",
                         reader=reader, mode="incremental", overlap=OVERLAP, **kwargs)


def test_incremental_runs_late_commits_reruns_and_backfills(source, s3, scratch_bucket):
    cur = source[2]
    last = T0 + dt.timedelta(hours=99)

    first = extract(source, s3, scratch_bucket, "b1")
    assert first.row_count == 100 and first.mode == "incremental"
    assert first.watermark == Watermark(column="updated_at", low=None, high=last.isoformat())
    assert read_high_watermark(s3, scratch_bucket, "member") == last

    # 5 updates and 10 inserts after the first run
    later = last + dt.timedelta(hours=1)
    for i in range(5):
        insert(cur, f"m{i:03d}", later)
    for i in range(10):
        insert(cur, f"n{i:03d}", later + dt.timedelta(minutes=i))
    second = extract(source, s3, scratch_bucket, "b2")
    expected = {f"m{i:03d}" for i in range(5)} | {f"n{i:03d}" for i in range(10)} | {"m099"}  # + overlap
    assert ids(s3, second) == expected
    assert second.watermark.low == (last - OVERLAP).isoformat()
    high2 = later + dt.timedelta(minutes=9)
    assert read_high_watermark(s3, scratch_bucket, "member") == high2

    # a transaction that commits late, stamped 5 minutes before the stored watermark: the overlap catches
    # it; one stamped a day earlier is older than any overlap would reasonably be and is not caught
    insert(cur, "late-5min", high2 - dt.timedelta(minutes=5))
    insert(cur, "late-1day", high2 - dt.timedelta(days=1))
    third = extract(source, s3, scratch_bucket, "b3")
    assert "late-5min" in ids(s3, third) and "late-1day" not in ids(s3, third)

    # re-running b2 after the watermark moved on still covers everything b2 covered
    rerun = extract(source, s3, scratch_bucket, "b2")
    assert rerun.watermark.low == second.watermark.low
    assert ids(s3, rerun) >= expected

    # a backfill of an explicit past range: exactly those rows, and the stored watermark stays put
    backfill = extract(source, s3, scratch_bucket, "backfill-day1", low=T0 - dt.timedelta(seconds=1),
                       high=T0 + dt.timedelta(hours=23))
    assert ids(s3, backfill) == {f"m{i:03d}" for i in range(5, 24)}  # m000-m004 were updated since
    assert read_high_watermark(s3, scratch_bucket, "member") == high2
    stored = json.loads(s3.get_object(Bucket=scratch_bucket, Key="member/backfill-day1/_manifest.json")["Body"].read())
    assert "`updated_at` > '2025-12-31 23:59:59" in stored["source_query"]


def test_snapshot_only_tables_refuse_incremental(source, s3, scratch_bucket):
    with pytest.raises(ValueError, match="no watermark column"):
        extract_table(source[0], s3, contract=MEMBER, bucket=scratch_bucket, batch_id="x", run_id="t",
                      mode="incremental")
