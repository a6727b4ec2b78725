"""Two extracts of one batch never interleave (include/landing/lease.py), on the real MariaDB and MinIO."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest

from dev.seed_members import generate_members, load_members, setup_schema
from include.extract import engine
from include.extract.engine import extract_table
from include.landing.lease import LeaseHeld, LeaseLost
from lakehouse_jobs.contracts import MEMBER
from tests.services import mysql_connect

pytestmark = pytest.mark.integration

DB = "extract_lease_test"
PREFIX = "member/b/"
LEASE = PREFIX + "_lease.json"


@pytest.fixture
def connect(mysql_env, mysql_root):
    """Connections (as the extract user) to a scratch member table of 300 rows."""
    cur = mysql_root.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")
    setup_schema(mysql_root, DB, mysql_env["MYSQL_EXTRACT_USER"], mysql_env["MYSQL_EXTRACT_PASSWORD"])
    load_members(mysql_root, generate_members(300, seed=3))
    opened = []

    def open_connection():
        opened.append(mysql_connect(mysql_env, mysql_env["MYSQL_EXTRACT_USER"],
                                    mysql_env["MYSQL_EXTRACT_PASSWORD"], DB))
        return opened[-1]

    yield open_connection
    for conn in opened:
        conn.close()
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")


def extract(conn, s3, bucket, run_id: str, **kwargs):
    return extract_table(conn, s3, contract=MEMBER, bucket=bucket, batch_id="b", run_id=run_id, **kwargs)


def stored(s3, bucket: str) -> dict[str, str]:
    return {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def put_lease(s3, bucket: str, run_id: str, expires_in: dt.timedelta) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    s3.put_object(Bucket=bucket, Key=LEASE, Body=json.dumps(
        {"run_id": run_id, "acquired_at": now.isoformat(), "expires_at": (now + expires_in).isoformat()}).encode())


def test_a_second_extract_of_the_batch_fails_fast_while_the_first_runs(connect, s3, scratch_bucket, monkeypatch):
    real_stream = engine.stream_record_batches
    reading, go_on = threading.Event(), threading.Event()

    def paused_stream(*args, **kwargs):
        reading.set()
        assert go_on.wait(60)
        yield from real_stream(*args, **kwargs)

    monkeypatch.setattr(engine, "stream_record_batches", paused_stream)
    result = {}
    first = threading.Thread(target=lambda: result.update(manifest=extract(connect(), s3, scratch_bucket,
                                                                           "scheduled__2026-11-26")))
    first.start()
    try:
        assert reading.wait(60)
        started = time.monotonic()
        with pytest.raises(LeaseHeld, match="run 'scheduled__2026-11-26' is extracting this batch since .*; "
                                            "its lease expires at .* Try again later"):
            extract(connect(), s3, scratch_bucket, "manual__2026-11-26")
        assert time.monotonic() - started < 5
        assert not any(k.endswith("_manifest.json") for k in stored(s3, scratch_bucket))
        assert s3.head_object(Bucket=scratch_bucket, Key=LEASE)["ServerSideEncryption"] == "AES256"
    finally:
        go_on.set()
        first.join(60)
    assert result["manifest"].run_id == "scheduled__2026-11-26" and result["manifest"].row_count == 300
    assert LEASE not in stored(s3, scratch_bucket)  # released


def test_a_lease_is_taken_over_when_expired_or_left_by_the_same_run(connect, s3, scratch_bucket):
    conn = connect()
    put_lease(s3, scratch_bucket, "crashed-run", -dt.timedelta(seconds=1))
    assert extract(conn, s3, scratch_bucket, "later-run").row_count == 300
    put_lease(s3, scratch_bucket, "later-run", dt.timedelta(minutes=30))  # a killed earlier try of this run
    assert extract(conn, s3, scratch_bucket, "later-run").row_count == 300
    put_lease(s3, scratch_bucket, "other-run", dt.timedelta(minutes=30))
    with pytest.raises(LeaseHeld, match="run 'other-run'"):
        extract(conn, s3, scratch_bucket, "later-run")


def test_an_extract_whose_lease_was_taken_over_publishes_nothing(connect, s3, scratch_bucket, monkeypatch):
    conn = connect()
    extract(conn, s3, scratch_bucket, "first-run")
    before = stored(s3, scratch_bucket)
    real_stream = engine.stream_record_batches

    def stream_then_lose_the_lease(*args, **kwargs):
        yield from real_stream(*args, **kwargs)
        put_lease(s3, scratch_bucket, "usurper", dt.timedelta(minutes=30))  # as a takeover would

    monkeypatch.setattr(engine, "stream_record_batches", stream_then_lose_the_lease)
    with pytest.raises(LeaseLost, match="taken over by another extract"):
        extract(conn, s3, scratch_bucket, "slow-run")
    after = stored(s3, scratch_bucket)
    assert json.loads(s3.get_object(Bucket=scratch_bucket, Key=LEASE)["Body"].read())["run_id"] == "usurper"
    del after[LEASE]
    assert after == before  # the published batch is untouched and the loser's files are gone
