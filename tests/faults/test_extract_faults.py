"""Faults between the extract and its services (issue 23 item 1), through Toxiproxy on the real MariaDB and
MinIO: a connection to MySQL cut mid-read, S3 down mid-upload and during the manifest's publish, S3 slow.
After each the extract fails naming the fault, or succeeds, and the invariants of
docs/reliability.md hold: no manifest for an incomplete batch (I1), and the retry of the
same run lands exactly the source's rows, each once (I3).
"""

from __future__ import annotations

import io
import threading
import time

import MySQLdb
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import BotoCoreError, ClientError

from dev.seed_members import generate_members, load_members, setup_schema
from include.extract.engine import extract_table
from include.extract.readers import ReadStalled, SourceError, connectorx_reader
from include.landing.layout import manifest_key
from lakehouse_jobs.contracts import MEMBER, Column, SourceContract
from tests.faults.conftest import s3_through
from tests.services import mysql_connect

pytestmark = pytest.mark.faults

DB = "extract_faults_test"
ROWS = 20_000  # ~4 MB through the wire: a cut at 300 KB falls mid-read
BATCH = "extract_date=2026-12-01"
RUN_ID = "scheduled__faults"  # one run id for a try and its retry, as Airflow's tries of one task


@pytest.fixture(scope="module")
def source(mysql_env, mysql_root):
    cur = mysql_root.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")
    setup_schema(mysql_root, DB, mysql_env["MYSQL_EXTRACT_USER"], mysql_env["MYSQL_EXTRACT_PASSWORD"])
    load_members(mysql_root, generate_members(ROWS, seed=23))
    yield
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")


def reader_url(mysql_env, port: int) -> str:
    # the mysql crate under ConnectorX switches to the server's Unix socket when it is on this machine, which
    # would go round the proxy: keep it on TCP
    return (f"mysql://{mysql_env['MYSQL_EXTRACT_USER']}:{mysql_env['MYSQL_EXTRACT_PASSWORD']}@127.0.0.1:{port}/{DB}"
            "?prefer_socket=false")


def connect(mysql_env, port: int | None = None):
    env = dict(mysql_env, MYSQL_HOST="127.0.0.1", MYSQL_PORT=str(port)) if port else mysql_env
    return mysql_connect(env, mysql_env["MYSQL_EXTRACT_USER"], mysql_env["MYSQL_EXTRACT_PASSWORD"], DB)


def extract(conn, s3, bucket: str, **options):
    return extract_table(conn, s3, contract=MEMBER, bucket=bucket, batch_id=BATCH, run_id=RUN_ID,
                         rows_per_file=5_000, **options)


def assert_nothing_published(s3, bucket: str) -> None:
    """I1: no manifest, so no reader can take the batch; whatever the try wrote is not listed anywhere."""
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert manifest_key("member", BATCH) not in keys, keys


def assert_exact(s3, manifest) -> None:
    """I3: the published files hold every source row once, as the manifest counts them."""
    ids = []
    for f in manifest.files:
        bucket, key = f.path.removeprefix("s3://").split("/", 1)
        ids += pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()),
                             columns=["member_id"]).column(0).to_pylist()
    assert manifest.row_count == len(ids) == len(set(ids)) == ROWS


def test_mysql_connection_cut_mid_read_fails_naming_the_server_and_the_retry_is_exact(
        source, mysql_env, mysql_proxy, s3, scratch_bucket):
    conn = connect(mysql_env)
    cut = mysql_proxy.toxic("limit_data", bytes=300_000)  # the connection is closed after 300 KB
    with pytest.raises(SourceError, match=r"the read from MySQL failed: .*IO error"):
        extract(conn, s3, scratch_bucket, reader=connectorx_reader(reader_url(mysql_env, mysql_proxy.port)))
    assert_nothing_published(s3, scratch_bucket)
    # S3 is healthy here: the failed try removed the files it had written
    assert not s3.list_objects_v2(Bucket=scratch_bucket).get("KeyCount")

    mysql_proxy.remove(cut)
    assert_exact(s3, extract(conn, s3, scratch_bucket,
                             reader=connectorx_reader(reader_url(mysql_env, mysql_proxy.port))))


def test_mysql_connection_cut_mid_read_through_mysqlclient(source, mysql_env, mysql_proxy, s3, scratch_bucket):
    conn = connect(mysql_env, mysql_proxy.port)
    cut = mysql_proxy.toxic("limit_data", bytes=300_000)
    with pytest.raises(MySQLdb.OperationalError, match="(?i)lost connection|server has gone away"):
        extract(conn, s3, scratch_bucket)
    assert_nothing_published(s3, scratch_bucket)

    mysql_proxy.remove(cut)
    assert_exact(s3, extract(connect(mysql_env, mysql_proxy.port), s3, scratch_bucket))


def test_s3_down_mid_upload_fails_and_the_retry_is_exact(source, mysql_env, s3_env, s3_proxy, s3, scratch_bucket):
    through = s3_through(s3_proxy, s3_env)
    uploads = []

    def down_after_the_first_file(params, **kwargs) -> None:
        uploads.append(params["Key"])
        if len(uploads) == 3:  # the lease and the first data file are written: S3 goes before the second
            s3_proxy.enabled(False)

    through.meta.events.register("before-parameter-build.s3.PutObject", down_after_the_first_file)
    with pytest.raises((BotoCoreError, ClientError)):
        extract(connect(mysql_env), through, scratch_bucket)
    assert len(uploads) == 3 and uploads[2].endswith(".parquet")
    assert_nothing_published(s3, scratch_bucket)

    s3_proxy.enabled(True)
    through.meta.events.unregister("before-parameter-build.s3.PutObject", down_after_the_first_file)
    manifest = extract(connect(mysql_env), through, scratch_bucket)
    assert_exact(s3, manifest)
    # the retry removed what the failed try left: only the manifest, its files and nothing else
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=scratch_bucket, Prefix="member/").get("Contents", [])}
    assert keys == {manifest_key("member", BATCH)} | {f.path.split("/", 3)[3] for f in manifest.files}


def test_s3_down_during_the_manifest_publish_leaves_no_batch_and_the_retry_publishes(
        source, mysql_env, s3_env, s3_proxy, s3, scratch_bucket):
    through = s3_through(s3_proxy, s3_env)

    def down_at_the_manifest(params, **kwargs) -> None:
        if params["Key"].endswith("_manifest.json"):
            s3_proxy.enabled(False)

    through.meta.events.register("before-parameter-build.s3.PutObject", down_at_the_manifest)
    with pytest.raises((BotoCoreError, ClientError)):
        extract(connect(mysql_env), through, scratch_bucket)
    assert_nothing_published(s3, scratch_bucket)

    s3_proxy.enabled(True)
    through.meta.events.unregister("before-parameter-build.s3.PutObject", down_at_the_manifest)
    # the lease could not be released while S3 was down: the retry, same run, takes it over
    assert_exact(s3, extract(connect(mysql_env), through, scratch_bucket))


def test_s3_slow_mid_upload_only_takes_longer(source, mysql_env, s3_env, s3_proxy, s3, scratch_bucket):
    s3_proxy.toxic("latency", stream="upstream", latency=300, jitter=100)
    assert_exact(s3, extract(connect(mysql_env), s3_through(s3_proxy, s3_env), scratch_bucket))


STALL_DB = "extract_stall_test"
EVENT = SourceContract("event", "event_id", (Column("event_id", "string", nullable=False, max_length=10),
                                             Column("payload", "string", max_length=4000)))


def test_mysql_stalling_mid_read_fails_naming_the_stall(mysql_env, mysql_root, mysql_proxy, s3, scratch_bucket):
    """The server's rows stop coming without the connection closing (toxiproxy's timeout toxic: data held,
    nothing closed): ConnectorX would never return; the reader's stall limit fails it, naming MySQL, long
    before the task's execution_timeout. The source is a view that sends a row every 50 ms, so the read is
    under way when the stall starts; each row carries 3 KB, so the server's 16 KB network buffer goes out every
    few rows instead of once at the end."""
    cur = mysql_root.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {STALL_DB}")
    cur.execute(f"CREATE DATABASE {STALL_DB}")
    cur.execute(f"CREATE TABLE {STALL_DB}.event_rows (event_id VARCHAR(10) NOT NULL PRIMARY KEY, "
                "payload VARCHAR(4000))")
    cur.executemany(f"INSERT INTO {STALL_DB}.event_rows VALUES (%s, REPEAT('x', 3000))",
                    [(f"e{i:04d}",) for i in range(400)])
    # SLEEP over a column: evaluated for each row (a constant condition would be evaluated once)
    cur.execute(f"CREATE VIEW {STALL_DB}.event AS SELECT event_id, payload FROM {STALL_DB}.event_rows "
                "WHERE SLEEP(0.05 + 0 * LENGTH(event_id)) = 0")
    cur.execute(f"GRANT SELECT ON {STALL_DB}.* TO %s@'%%'", (mysql_env["MYSQL_EXTRACT_USER"],))
    try:
        conn = mysql_connect(mysql_env, mysql_env["MYSQL_EXTRACT_USER"], mysql_env["MYSQL_EXTRACT_PASSWORD"],
                             STALL_DB)
        url = (f"mysql://{mysql_env['MYSQL_EXTRACT_USER']}:{mysql_env['MYSQL_EXTRACT_PASSWORD']}"
               f"@127.0.0.1:{mysql_proxy.port}/{STALL_DB}?prefer_socket=false")
        threading.Timer(2, lambda: mysql_proxy.toxic("timeout", timeout=0)).start()
        started = time.monotonic()
        with pytest.raises(ReadStalled, match="table 'event': no rows from MySQL for 3 s"):
            extract_table(conn, s3, contract=EVENT, bucket=scratch_bucket, batch_id=BATCH, run_id=RUN_ID,
                          reader=connectorx_reader(url, fetch_rows=10, stall_seconds=3))
        assert 3 <= time.monotonic() - started < 15  # the 3 s stall ended the read, not its end
        assert_nothing_published(s3, scratch_bucket)
    finally:
        cur.execute(f"DROP DATABASE IF EXISTS {STALL_DB}")
