"""The extract against the real MariaDB and MinIO: exact rows, manifest, atomic publish, safe re-runs,
encryption."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import urllib.parse
from types import SimpleNamespace

import MySQLdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dev.seed_members import COLUMNS, generate_members, load_members, setup_schema
from include.extract import engine
from include.extract.engine import extract_table
from include.extract.readers import connectorx_reader
from include.extract.schema_drift import SchemaDriftError
from include.landing.s3_writer import MiB, S3MultipartWriter
from lakehouse_jobs.contracts import MEMBER
from lakehouse_jobs.manifest import BatchManifest
from tests.services import mysql_connect, require_env

pytestmark = pytest.mark.integration

DB = "extract_test"
BATCH = "extract_date=2026-11-26"

# rows no generator makes: every edge the extract must carry byte for byte
EDGE_ROWS = [
    ("00000000-0000-4000-8000-000000000001", "Zoë 😀", "王小明", "zoe@example.com", None, None,
     "Zürich", "Switzerland", dt.date(2025, 1, 31)),
    ("00000000-0000-4000-8000-000000000002", None, None, None, None, None, None, None, None),
    ("00000000-0000-4000-8000-000000000003", "x" * 100, "y" * 100, ("e" * 243) + "@example.com",
     "9" * 50, "a" * 255, "c" * 100, "d" * 100, dt.date(1970, 1, 1)),
    ("00000000-0000-4000-8000-000000000004", "None", "", "null@example.com", "", "tab\there",
     "new\nline", "back\\slash", dt.date(2026, 11, 26)),
]


@pytest.fixture
def source(mysql_env, mysql_root):
    """A scratch database with the member table: 2,000 generated rows plus the edge rows."""
    cur = mysql_root.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")
    setup_schema(mysql_root, DB, mysql_env["MYSQL_EXTRACT_USER"], mysql_env["MYSQL_EXTRACT_PASSWORD"])
    cur.execute(f"USE {DB}")
    load_members(mysql_root, generate_members(2000, seed=7))
    cur.executemany(f"INSERT INTO member ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * 9)})", EDGE_ROWS)
    mysql_root.commit()
    reader = mysql_connect(mysql_env, mysql_env["MYSQL_EXTRACT_USER"], mysql_env["MYSQL_EXTRACT_PASSWORD"], DB)
    yield reader
    reader.close()
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")


def mysql_rows(conn) -> list[tuple]:
    cur = conn.cursor()
    cur.execute(f"SELECT {', '.join(COLUMNS)} FROM member ORDER BY member_id")
    return list(cur.fetchall())


def read_batch(s3, manifest) -> pa.Table:
    tables = []
    for f in manifest.files:
        bucket, key = f.path.removeprefix("s3://").split("/", 1)
        tables.append(pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())))
    return pa.concat_tables(tables)


def keys(s3, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def key_of(path: str) -> str:
    return path.split("/", 3)[3]


def published(s3, bucket: str) -> dict[str, bytes]:
    """The published batch as stored: its manifest and every file it lists, byte for byte."""
    manifest_key = f"member/{BATCH}/_manifest.json"
    manifest = BatchManifest.from_json(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read()
            for k in [manifest_key] + [key_of(f.path) for f in manifest.files]}


def run(source, s3, bucket, **kwargs) -> BatchManifest:
    return extract_table(source, s3, contract=MEMBER, bucket=bucket, batch_id=BATCH, run_id="test", **kwargs)


@pytest.mark.parametrize("reader", ["connectorx", "mysqlclient"])
def test_parquet_equals_mysql_row_for_row(source, s3, scratch_bucket, mysql_env, reader):
    url = (f"mysql://{mysql_env['MYSQL_EXTRACT_USER']}:{mysql_env['MYSQL_EXTRACT_PASSWORD']}"
           f"@{mysql_env['MYSQL_HOST']}:{mysql_env['MYSQL_PORT']}/{DB}")
    manifest = run(source, s3, scratch_bucket, reader=connectorx_reader(url) if reader == "connectorx" else None)
    table = read_batch(s3, manifest).sort_by("member_id")
    assert table.schema.field("registration_date").type == pa.date32()
    assert table.schema.field("member_id").type == pa.string()
    parquet_rows = [tuple(r.values()) for r in table.select(list(COLUMNS)).to_pylist()]
    assert parquet_rows == mysql_rows(source)
    assert manifest.row_count == len(parquet_rows) == 2000 + len(EDGE_ROWS)
    assert table.column("registration_date_raw").null_count == table.num_rows  # every date is a real one


def test_manifest_describes_files_exactly(source, s3, scratch_bucket):
    manifest = run(source, s3, scratch_bucket, rows_per_file=900, row_group_rows=256)
    assert [f.rows for f in manifest.files] == [900, 900, 204]
    assert [f.path.rsplit("/", 1)[1] for f in manifest.files] == [
        "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    for f in manifest.files:
        key = f.path.split("/", 3)[3]
        body = s3.get_object(Bucket=scratch_bucket, Key=key)["Body"].read()
        assert len(body) == f.bytes
        assert hashlib.sha256(body).hexdigest() == f.sha256
        meta = pq.ParquetFile(io.BytesIO(body)).metadata
        assert meta.num_rows == f.rows
        assert max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) <= 256
    text = s3.get_object(Bucket=scratch_bucket, Key=f"member/{BATCH}/_manifest.json")["Body"].read()
    assert BatchManifest.from_json(text) == manifest
    stored = json.loads(text)
    assert stored["schema"][0] == {"name": "member_id", "type": "string", "nullable": False}
    assert stored["schema"][-2:] == [{"name": "registration_date_raw", "type": "string", "nullable": True},
                                     {"name": "_row_hash", "type": "fixed_size_binary[32]", "nullable": False}]
    assert stored["schema_hash"].startswith("sha256:") and stored["source_query"].startswith("SELECT `member_id`")


def test_rerun_writes_beside_the_batch_then_removes_the_previous_files(source, s3, scratch_bucket):
    first = run(source, s3, scratch_bucket, rows_per_file=500)  # 5 files
    second = run(source, s3, scratch_bucket)  # 1 file, in an attempt folder of its own
    folders = {key_of(f.path).rsplit("/", 1)[0] for f in first.files + second.files}
    assert len(folders) == 2 and all(f.startswith(f"member/{BATCH}/attempt=") for f in folders)
    expected = sorted([key_of(f.path) for f in second.files] + [f"member/{BATCH}/_manifest.json"])
    assert keys(s3, scratch_bucket) == expected  # the 5 previous files and the lease are gone
    assert read_batch(s3, second).num_rows == 2000 + len(EDGE_ROWS)


def test_snapshot_of_a_past_interval_records_when_it_was_read(source, s3, scratch_bucket, mysql_root):
    """A backfill reads the table as it is now: the manifest says when, beside the interval it names."""
    cur = mysql_root.cursor()
    cur.execute(f"INSERT INTO {DB}.member (member_id) VALUES ('00000000-0000-4000-8000-0000000000ff')")
    cur.execute("SELECT UTC_TIMESTAMP(6)")
    (before,) = cur.fetchone()
    manifest = extract_table(source, s3, contract=MEMBER, bucket=scratch_bucket, batch_id="extract_date=2020-01-01",
                             run_id="backfill")
    cur.execute("SELECT UTC_TIMESTAMP(6)")
    (after,) = cur.fetchone()
    extracted_at = dt.datetime.fromisoformat(manifest.extracted_at)
    assert before.replace(tzinfo=dt.timezone.utc) <= extracted_at <= after.replace(tzinfo=dt.timezone.utc)
    assert manifest.batch_id == "extract_date=2020-01-01"
    assert "00000000-0000-4000-8000-0000000000ff" in read_batch(s3, manifest).column("member_id").to_pylist()


def test_every_object_is_encrypted(source, s3, scratch_bucket):
    run(source, s3, scratch_bucket)
    for key in keys(s3, scratch_bucket):
        assert s3.head_object(Bucket=scratch_bucket, Key=key).get("ServerSideEncryption") == "AES256", key


def test_failed_rerun_leaves_the_published_batch_unchanged_and_retry_is_exact(source, s3, scratch_bucket,
                                                                              monkeypatch):
    good = run(source, s3, scratch_bucket, rows_per_file=900)
    before = published(s3, scratch_bucket)
    real_stream = engine.stream_record_batches
    written_before_dying = []

    def dying_stream(*args, **kwargs):
        for i, batch in enumerate(real_stream(*args, **kwargs)):
            if i == 1:
                written_before_dying.extend(k for k in keys(s3, scratch_bucket) if k not in before)
                raise ConnectionResetError("MySQL went away mid-extract")
            yield batch

    monkeypatch.setattr(engine, "stream_record_batches", dying_stream)
    with pytest.raises(ConnectionResetError):
        run(source, s3, scratch_bucket, fetch_rows=500, rows_per_file=300, row_group_rows=100)
    assert any(k.endswith("/part-00000.parquet") for k in written_before_dying), written_before_dying
    assert published(s3, scratch_bucket) == before
    assert keys(s3, scratch_bucket) == sorted(before)  # the failed attempt removed its files and the lease
    assert not s3.list_multipart_uploads(Bucket=scratch_bucket).get("Uploads")

    monkeypatch.setattr(engine, "stream_record_batches", real_stream)
    retry = run(source, s3, scratch_bucket, rows_per_file=900)
    assert [f.sha256 for f in retry.files] == [f.sha256 for f in good.files]
    assert keys(s3, scratch_bucket) == sorted([key_of(f.path) for f in retry.files]
                                              + [f"member/{BATCH}/_manifest.json"])


def test_aborted_multipart_upload_leaves_nothing(s3, scratch_bucket):
    with pytest.raises(RuntimeError):
        with S3MultipartWriter(s3, scratch_bucket, "big.bin", part_size=5 * MiB) as out:
            out.write(b"x" * (6 * MiB))  # one part uploaded
            raise RuntimeError("killed")
    assert keys(s3, scratch_bucket) == []
    assert not s3.list_multipart_uploads(Bucket=scratch_bucket).get("Uploads")


def test_multipart_object_is_complete_and_encrypted(s3, scratch_bucket):
    payload = bytes(range(256)) * (45 * 1024)  # 11.25 MiB: two full parts and a tail
    with S3MultipartWriter(s3, scratch_bucket, "big.bin", part_size=5 * MiB,
                           extra_args={"ServerSideEncryption": "AES256"}) as out:
        out.write(payload)
    assert s3.get_object(Bucket=scratch_bucket, Key="big.bin")["Body"].read() == payload
    assert s3.head_object(Bucket=scratch_bucket, Key="big.bin")["ServerSideEncryption"] == "AES256"
    assert out.sha256.hexdigest() == hashlib.sha256(payload).hexdigest()


def test_schema_drift_fails_before_touching_the_published_batch(source, s3, scratch_bucket, mysql_root):
    run(source, s3, scratch_bucket)
    before = published(s3, scratch_bucket)
    mysql_root.cursor().execute(f"ALTER TABLE {DB}.member MODIFY registration_date VARCHAR(20)")
    with pytest.raises(SchemaDriftError, match="registration_date' changed type: contract date, source MySQL varchar"):
        run(source, s3, scratch_bucket)
    assert published(s3, scratch_bucket) == before
    assert keys(s3, scratch_bucket) == sorted(before)


def test_extract_user_can_only_read(source):
    cur = source.cursor()
    cur.execute("SELECT COUNT(*) FROM member")
    for statement in ("INSERT INTO member (member_id) VALUES ('x')", "DELETE FROM member",
                      "CREATE TABLE t (i INT)", "DROP TABLE member"):
        with pytest.raises(MySQLdb.OperationalError) as err:
            cur.execute(statement)
        assert err.value.args[0] == 1142, statement  # ER_TABLEACCESS_DENIED_ERROR


def test_the_dags_connection_carries_4_byte_utf8(source):
    """The DAG connects through MySqlHook and AIRFLOW_CONN_MYSQL_MEMBERS, not through the test helper."""
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    from include import settings

    conn = MySqlHook(mysql_conn_id=settings.MYSQL_CONN_ID).get_conn()
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT first_name, last_name FROM {DB}.member WHERE member_id = %s", (EDGE_ROWS[0][0],))
        assert cur.fetchone() == ("Zoë 😀", "王小明")
    finally:
        conn.close()


def test_hive_partitions_within_a_batch(source, s3, scratch_bucket):
    manifest = run(source, s3, scratch_bucket, partition_cols=("country",))
    assert manifest.partition_cols == ["country"]
    seen = 0
    for f in manifest.files:
        folder = f.path.split("/")[-2]
        assert folder.startswith("country=")
        values = set(read_batch(s3, SimpleNamespace(files=[f])).column("country").to_pylist())
        assert len(values) == 1
        (value,) = values
        expected = "__HIVE_DEFAULT_PARTITION__" if value is None else urllib.parse.quote(value, safe="")
        assert folder == f"country={expected}"
        seen += f.rows
    assert seen == manifest.row_count == 2000 + len(EDGE_ROWS)
    assert any(f.path.endswith("/country=__HIVE_DEFAULT_PARTITION__/part-00000.parquet")
               for f in manifest.files)


def test_too_many_partitions_fail_and_leave_nothing(s3, scratch_bucket):
    schema = pa.schema([("country", pa.string())])
    batch = pa.record_batch([pa.array([str(i) for i in range(11)])], schema=schema)
    with pytest.raises(ValueError, match="more than 10 partitions"):
        engine.write_parquet_files(iter([batch]), s3, scratch_bucket, "member/x/", schema, extra_args={},
                                    rows_per_file=100, row_group_rows=1, compression="zstd",
                                    partition_cols=("country",), max_partitions=10)
    assert keys(s3, scratch_bucket) == []
    assert not s3.list_multipart_uploads(Bucket=scratch_bucket).get("Uploads")


def test_parallel_key_ranges_cover_the_table_exactly(source, s3, scratch_bucket, mysql_env):
    url = (f"mysql://{mysql_env['MYSQL_EXTRACT_USER']}:{mysql_env['MYSQL_EXTRACT_PASSWORD']}"
           f"@{mysql_env['MYSQL_HOST']}:{mysql_env['MYSQL_PORT']}/{DB}")
    manifest = run(source, s3, scratch_bucket, reader=connectorx_reader(url), key_ranges=4)
    assert [f.path.rsplit("/", 1)[1] for f in manifest.files] == [
        f"part-r{i:03d}-00000.parquet" for i in range(4)]
    assert len(manifest.key_ranges) == 4 and manifest.key_ranges[0].startswith("`member_id` < ")
    ranges = [sorted(read_batch(s3, SimpleNamespace(files=[f])).column("member_id").to_pylist())
              for f in manifest.files]
    assert all(len(r) in (501, 502) for r in ranges), [len(r) for r in ranges]  # equal row counts
    assert all(a[-1] < b[0] for a, b in zip(ranges, ranges[1:])), "ranges overlap"
    table = read_batch(s3, manifest).sort_by("member_id").select(list(COLUMNS))
    assert [tuple(r.values()) for r in table.to_pylist()] == mysql_rows(source)


def test_key_ranges_need_a_reader_with_its_own_connections(source, s3, scratch_bucket):
    with pytest.raises(ValueError, match="need a reader"):
        run(source, s3, scratch_bucket, key_ranges=2)


def test_sse_kms_is_configurable(source, s3, scratch_bucket):
    key_id = require_env("MINIO_KMS_SECRET_KEY")["MINIO_KMS_SECRET_KEY"].split(":", 1)[0]
    run(source, s3, scratch_bucket, sse="aws:kms", sse_kms_key_id=key_id, rows_per_file=1500)
    for key in keys(s3, scratch_bucket):
        head = s3.head_object(Bucket=scratch_bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert head["SSEKMSKeyId"].endswith(key_id), key
