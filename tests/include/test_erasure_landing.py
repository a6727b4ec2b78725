"""Erasure of one member from the landed batches (include/erasure_landing.py), on the real MariaDB and MinIO:
batches written by the real extract, then every object of the bucket checked afterwards."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from dev.seed_members import COLUMNS, generate_members, load_members, setup_schema
from include import erasure_landing
from include.erasure_landing import erase_from_landing, member_in_source
from include.extract import readers
from include.extract.engine import extract_table
from include.landing.lease import LeaseHeld
from include.landing.manifest_io import publish_manifest
from include.landing.retention import BATCH_OBJECT_TAGS
from lakehouse_jobs.contracts import MEMBER, arrow_schema
from lakehouse_jobs.manifest import BatchManifest, ChangeSet, FileEntry
from tests.services import mysql_connect

pytestmark = pytest.mark.integration

DB = "erasure_landing_test"
ERASED = "3f2b8c1e-5a7d-4e9b-8c0f-1d2e3a4b5c6d"
NEAR = ERASED[:-1] + "e"  # one digit off: another member, who stays
B1, B2, B3 = "extract_date=2026-11-24", "extract_date=2026-11-25", "extract_date=2026-11-26"
REQUEST = "gdpr-2026-0042"
STATE_KEY = "member/_state/high_watermark.json"
TAG_SET = [{"Key": k, "Value": v} for k, v in BATCH_OBJECT_TAGS.items()]
COUNT_KEYS = {"batches_scanned", "batches_rewritten", "files_rewritten", "rows_removed"}
NOTHING_TO_DO = {"batches_scanned": 3, "batches_rewritten": 0, "files_rewritten": 0, "rows_removed": 0}
ERASED_ONCE = {"batches_scanned": 3, "batches_rewritten": 2, "files_rewritten": 3, "rows_removed": 3}


def member_row(member_id: str, country: str = "Chile") -> tuple:
    return (member_id, "Erin", "Erased", "erin@example.com", "+56 2 2345 6789", "1 Calle Larga", "Santiago",
            country, dt.date(2025, 3, 1))


def is_erased(keys) -> pa.Array:
    """The test's own matcher, independent of the module's."""
    return pc.equal(pc.utf8_lower(pc.utf8_trim_whitespace(keys)), ERASED)


@dataclass
class Landed:
    bucket: str
    s3: object
    connect: Callable  # () -> a new connection to the source as the extract user

    def extract(self, batch_id: str, **kwargs) -> BatchManifest:
        """The extract of one batch, as the DAG's task runs it."""
        return extract_table(self.connect(), self.s3, contract=MEMBER, bucket=self.bucket, batch_id=batch_id,
                             run_id=f"scheduled__{batch_id[-10:]}", **kwargs)


@pytest.fixture
def landed(mysql_env, mysql_root, s3, scratch_bucket):
    """Three batches of a 600-member table, written by the extract:

    B1: the member as stored (lower case), 5 files of up to 150 rows in row groups of 32;
    B2: the member twice, as `' \\tUPPER '` (Chile) and as `UPPER` (Narnia, a file of its own), partitioned by
        country, row groups of 16;
    B3: extracted after the member was deleted at the source, plus the leftover of a killed attempt that
        holds the member (a copy of B1's file), which no manifest lists.
    Every batch holds NEAR, a member whose id differs by one digit. The bucket also has the table's state.
    """
    cur = mysql_root.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")
    setup_schema(mysql_root, DB, mysql_env["MYSQL_EXTRACT_USER"], mysql_env["MYSQL_EXTRACT_PASSWORD"])
    load_members(mysql_root, generate_members(600, seed=11))
    cur.executemany(f"INSERT INTO member ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * 9)})",
                    [member_row(ERASED), member_row(NEAR)])
    mysql_root.commit()
    opened = []

    def connect():
        opened.append(mysql_connect(mysql_env, mysql_env["MYSQL_EXTRACT_USER"], mysql_env["MYSQL_EXTRACT_PASSWORD"],
                                    DB))
        return opened[-1]

    batches = Landed(scratch_bucket, s3, connect)
    batches.extract(B1, rows_per_file=150, row_group_rows=32)

    conn = connect()

    def spelled_differently(query: str, schema: pa.Schema):
        """The source's rows as a sloppy source would have them: the member's id padded and upper case, and
        a second row of the member in another country."""
        for batch in readers.stream_record_batches(conn, query, schema):
            rows = batch.to_pylist()
            for row in rows:
                if row["member_id"] == ERASED:
                    row["member_id"] = f" \t{ERASED.upper()} "
                    rows.append({**row, "member_id": ERASED.upper(), "country": "Narnia"})
                    break
            yield pa.RecordBatch.from_pylist(rows, schema=schema)

    extract_table(conn, s3, contract=MEMBER, bucket=scratch_bucket, batch_id=B2, run_id="scheduled__2026-11-25",
                  reader=spelled_differently, partition_cols=("country",), row_group_rows=16)

    cur.execute(f"DELETE FROM {DB}.member WHERE member_id = %s", (ERASED,))
    mysql_root.commit()
    batches.extract(B3)
    [holder] = [f for f in read_manifest(s3, scratch_bucket, B1).files if file_holds_member(s3, f.path)]
    s3.copy_object(Bucket=scratch_bucket, CopySource={"Bucket": scratch_bucket, "Key": key_of(holder.path)},
                   Key=f"member/{B3}/attempt=20261126T000000Z-dead0000/part-00000.parquet")
    s3.put_object(Bucket=scratch_bucket, Key=STATE_KEY, Body=b'{"high": "2026-11-26T00:00:00"}')
    yield batches
    for c in opened:
        c.close()
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")


def key_of(path: str) -> str:
    return path.split("/", 3)[3]


def read_manifest(s3, bucket: str, batch_id: str) -> BatchManifest:
    key = f"member/{batch_id}/_manifest.json"
    return BatchManifest.from_json(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), source=key)


def body_of(s3, path: str) -> bytes:
    bucket, key = path.removeprefix("s3://").split("/", 1)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def file_holds_member(s3, path: str) -> bool:
    return pc.any(is_erased(pq.read_table(io.BytesIO(body_of(s3, path))).column("member_id"))).as_py()


def etags(s3, bucket: str) -> dict[str, str]:
    return {o["Key"]: o["ETag"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])}


def batch_rows(s3, bucket: str, batch_id: str) -> list[dict]:
    """The batch's rows, file by file in manifest order, each file's rows in their order."""
    return [row for f in read_manifest(s3, bucket, batch_id).files
            for row in pq.read_table(io.BytesIO(body_of(s3, f.path))).to_pylist()]


def erase(s3, bucket: str, request_id: str = REQUEST) -> dict:
    return erase_from_landing(s3, bucket, "member", ERASED, request_id=request_id)


def assert_erased_everywhere(s3, bucket: str) -> None:
    """No object of the bucket holds the member, decoded or raw; every object is a manifest, a file one lists,
    or the table's state (no leftovers, no lease)."""
    keys = set(etags(s3, bucket))
    expected = {STATE_KEY}
    for batch_id in (B1, B2, B3):
        expected.add(f"member/{batch_id}/_manifest.json")
        expected.update(key_of(f.path) for f in read_manifest(s3, bucket, batch_id).files)
    assert keys == expected
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert ERASED.encode() not in body.lower(), key  # e.g. a row group's min/max statistics
        if key.endswith(".parquet"):
            table = pq.read_table(io.BytesIO(body))
            assert not pc.any(is_erased(table.column("member_id"))).as_py(), key


def assert_manifests_true(s3, bucket: str, group_rows: dict[str, int]) -> None:
    """Every manifest passes its checks and describes its files exactly: bytes, sha256, rows, row_count;
    files keep the landed schema, zstd and the extract's row groups."""
    for batch_id in (B1, B2, B3):
        manifest = read_manifest(s3, bucket, batch_id)
        assert manifest.row_count == sum(f.rows for f in manifest.files)
        for f in manifest.files:
            body = body_of(s3, f.path)
            assert (len(body), hashlib.sha256(body).hexdigest()) == (f.bytes, f.sha256), f.path
            parquet = pq.ParquetFile(io.BytesIO(body))
            meta = parquet.metadata
            assert meta.num_rows == f.rows, f.path
            assert parquet.schema_arrow == arrow_schema(MEMBER, landed=True), f.path
            sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
            assert all(0 < s <= group_rows[batch_id] for s in sizes), (f.path, sizes)
            assert all(meta.row_group(i).column(0).compression == "ZSTD" for i in range(meta.num_row_groups))


GROUP_ROWS = {B1: 32, B2: 16, B3: 128 * 1024}


def test_the_member_is_gone_from_every_batch_and_everything_else_is_as_landed(landed, s3, caplog):
    bucket = landed.bucket
    before_tags = etags(s3, bucket)
    before = {b: batch_rows(s3, bucket, b) for b in (B1, B2, B3)}
    manifests = {b: read_manifest(s3, bucket, b) for b in (B1, B2, B3)}
    holders = {b: [f.path for f in manifests[b].files if file_holds_member(s3, f.path)] for b in (B1, B2, B3)}
    assert [len(holders[b]) for b in (B1, B2, B3)] == [1, 2, 0]  # the test's premise

    caplog.set_level(logging.DEBUG, logger="include")
    result = erase(s3, bucket)

    assert result == ERASED_ONCE
    assert set(result) == COUNT_KEYS and all(type(v) is int for v in result.values())
    assert ERASED not in json.dumps(result).lower()
    assert caplog.records and ERASED not in caplog.text.lower()

    assert_erased_everywhere(s3, bucket)
    assert_manifests_true(s3, bucket, GROUP_ROWS)
    after_tags = etags(s3, bucket)
    for batch_id in (B1, B2, B3):
        manifest = read_manifest(s3, bucket, batch_id)
        kept = [r for r in before[batch_id] if r["member_id"].strip().lower() != ERASED]
        assert batch_rows(s3, bucket, batch_id) == kept  # every other row, in its order
        assert manifest.row_count == len(kept) == manifests[batch_id].row_count - {B1: 1, B2: 2, B3: 0}[batch_id]
        assert NEAR in [r["member_id"] for r in kept]
        # the extract's description of the batch is kept; only its files and counts change
        unchanged = {"files": [], "row_count": 0, "created_at": ""}
        assert dataclasses.replace(manifest, **unchanged) == dataclasses.replace(manifests[batch_id], **unchanged)
        assert len(manifest.files) == len(manifests[batch_id].files)
        for old, new in zip(manifests[batch_id].files, manifest.files):
            if old.path in holders[batch_id]:  # rewritten beside the batch, under the request's folder
                assert key_of(new.path) == (f"member/{batch_id}/erasure={REQUEST}/"
                                            + key_of(old.path).split("/", 3)[3])
                assert key_of(old.path) not in after_tags  # the replaced file is deleted
            else:  # untouched: the same object
                assert new == old and after_tags[key_of(new.path)] == before_tags[key_of(new.path)]
    narnia = [f for f in read_manifest(s3, bucket, B2).files if "/country=Narnia/" in f.path]
    assert [f.rows for f in narnia] == [0]  # a file of only the member: now empty, with the schema

    rewritten = [k for k in after_tags if k not in before_tags or after_tags[k] != before_tags[k]]
    assert sorted(rewritten) == sorted([f"member/{B1}/_manifest.json", f"member/{B2}/_manifest.json"] + [
        key_of(f.path) for b in (B1, B2) for f in read_manifest(s3, bucket, b).files if "/erasure=" in f.path])
    for key in rewritten:
        assert s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] == TAG_SET, key
        assert s3.head_object(Bucket=bucket, Key=key).get("ServerSideEncryption") == "AES256", key
    assert s3.get_object_tagging(Bucket=bucket, Key=STATE_KEY)["TagSet"] == []  # the state is left alone

    # a rerun, with the same request id or another, finds nothing and changes nothing
    assert erase(s3, bucket) == NOTHING_TO_DO
    assert erase(s3, bucket, request_id="gdpr-2026-0043") == NOTHING_TO_DO
    assert etags(s3, bucket) == after_tags


def test_a_change_set_naming_the_member_goes_whole_with_its_files(landed, s3):
    """B3 was extracted after the member left the source, so its change set names the member only as deleted,
    in its key index (include/extract/change_set.py), which no snapshot file holds."""
    bucket = landed.bucket
    manifest = read_manifest(s3, bucket, B3)
    keys_key = f"member/{B3}/keys-00000.parquet"
    sink = io.BytesIO()
    pq.write_table(pa.table({"member_id": [ERASED], "change": ["deleted"]}), sink)
    s3.put_object(Bucket=bucket, Key=keys_key, Body=sink.getvalue())
    entry = FileEntry(path=f"s3://{bucket}/{keys_key}", rows=1, bytes=len(sink.getvalue()),
                      sha256=hashlib.sha256(sink.getvalue()).hexdigest())
    change_set = ChangeSet(base_version=1, rules_version="r", state_rows=manifest.row_count + 1,
                           counts={"new": 0, "changed": 0, "duplicate": 0, "unchanged": manifest.row_count,
                                   "deleted": 1}, files=[], key_files=[entry])
    publish_manifest(s3, bucket, dataclasses.replace(manifest, change_set=change_set), {})

    erase(s3, bucket)

    assert read_manifest(s3, bucket, B3).change_set is None
    assert_erased_everywhere(s3, bucket)  # the key index is gone with its change set


def test_spark_reads_every_erased_batch(landed, s3, spark):
    """The job's own reader (manifest checks, file sizes, row count) accepts every batch afterwards."""
    from lakehouse_jobs.batch import read_batch
    from lakehouse_jobs.batch import read_manifest as spark_manifest

    erase(s3, landed.bucket)
    for batch_id in (B1, B2, B3):
        manifest = spark_manifest(spark, f"s3://{landed.bucket}/member/{batch_id}/_manifest.json", MEMBER)
        df = read_batch(spark, manifest, MEMBER)
        ids = [r.member_id for r in df.select("member_id").collect()]
        assert len(ids) == manifest.row_count and NEAR in ids
        assert not [i for i in ids if i.strip().lower() == ERASED]


def test_only_files_that_hold_the_member_are_downloaded_whole(landed, s3):
    """The scan reads the key column by ranged GETs; only the three files rewritten are read whole."""
    whole = []

    class Spy:
        def __getattr__(self, name):
            return getattr(s3, name)

        def get_object(self, **kwargs):
            if "Range" not in kwargs and kwargs["Key"].endswith(".parquet"):
                whole.append(kwargs["Key"])
            return s3.get_object(**kwargs)

    holders = {key_of(f.path) for b in (B1, B2) for f in read_manifest(s3, landed.bucket, b).files
               if file_holds_member(s3, f.path)}
    assert erase_from_landing(Spy(), landed.bucket, "member", ERASED, request_id=REQUEST) == ERASED_ONCE
    assert sorted(whole) == sorted(holders)


@pytest.mark.parametrize("bad", [ERASED.upper(), f" {ERASED}", f"{ERASED}\n", ERASED.replace("-", ""),
                                 "not-a-uuid", "", None, 42])
def test_a_bad_member_id_is_refused_before_anything_is_read(bad):
    with pytest.raises(ValueError) as err:
        erase_from_landing(object(), "landing", "member", bad, request_id=REQUEST)  # any S3 call would fail
    assert str(err.value) == "member_id must be a UUID in lower case (8-4-4-4-12 hex digits)"  # not repeated


@pytest.mark.parametrize("bad", ["", "a/b", "x" * 65, "run:1", f"erase-{ERASED}", f"erase-{ERASED.upper()}", None])
def test_a_bad_request_id_is_refused(bad):
    with pytest.raises(ValueError, match="request_id must"):
        erase_from_landing(object(), "landing", "member", ERASED, request_id=bad)


def test_another_table_than_the_contracts_is_refused():
    with pytest.raises(ValueError, match="not the contract's table"):
        erase_from_landing(object(), "landing", "orders", ERASED, request_id=REQUEST)


def test_a_batch_an_extract_holds_is_left_for_the_retry(landed, s3):
    """While an extract holds B1's lease, the erasure does the other batches and raises LeaseHeld naming B1;
    its retry after the extract finishes does B1 and nothing else."""
    bucket = landed.bucket
    lease_key = f"member/{B1}/_lease.json"
    now = dt.datetime.now(dt.timezone.utc)
    s3.put_object(Bucket=bucket, Key=lease_key, Body=json.dumps(
        {"run_id": "scheduled__2026-11-24", "acquired_at": now.isoformat(),
         "expires_at": (now + dt.timedelta(minutes=20)).isoformat()}).encode())
    b1_before = {k: v for k, v in etags(s3, bucket).items() if k.startswith(f"member/{B1}/")}

    with pytest.raises(LeaseHeld, match=rf"the lease of batch\(es\) \['{B1}'\] is held by an extract"):
        erase(s3, bucket)
    assert {k: v for k, v in etags(s3, bucket).items() if k.startswith(f"member/{B1}/")} == b1_before
    assert not any(file_holds_member(s3, f.path) for b in (B2, B3) for f in read_manifest(s3, bucket, b).files)

    s3.delete_object(Bucket=bucket, Key=lease_key)  # the extract finished
    assert erase(s3, bucket) == {"batches_scanned": 3, "batches_rewritten": 1, "files_rewritten": 1,
                                 "rows_removed": 1}
    assert_erased_everywhere(s3, bucket)


def test_an_extract_of_a_batch_being_erased_fails_fast(landed, s3, monkeypatch):
    """The erasure holds the batch's lease while it rewrites: an extract of the batch cannot interleave."""
    real_rewrite = erasure_landing._rewrite
    rewriting, go_on = threading.Event(), threading.Event()

    def paused(*args, **kwargs):
        rewriting.set()
        assert go_on.wait(60)
        return real_rewrite(*args, **kwargs)

    monkeypatch.setattr(erasure_landing, "_rewrite", paused)
    outcome = {}
    eraser = threading.Thread(target=lambda: outcome.update(result=erase(s3, landed.bucket)))
    eraser.start()
    try:
        assert rewriting.wait(60)
        with pytest.raises(LeaseHeld, match=f"run 'erasure__{REQUEST}' is extracting this batch"):
            landed.extract(B1)
    finally:
        go_on.set()
        eraser.join(60)
    assert outcome["result"] == ERASED_ONCE
    assert_erased_everywhere(s3, landed.bucket)


def test_a_failed_rewrite_leaves_the_published_batch_as_it_was(landed, s3, monkeypatch):
    bucket = landed.bucket
    before = etags(s3, bucket)
    real_rewrite = erasure_landing._rewrite
    calls = []

    def second_fails(*args, **kwargs):
        calls.append(args[3])
        if len(calls) == 3:  # B2's second file, after its first was written
            raise ConnectionResetError("S3 went away")
        return real_rewrite(*args, **kwargs)

    monkeypatch.setattr(erasure_landing, "_rewrite", second_fails)
    with pytest.raises(ConnectionResetError):
        erase(s3, bucket)
    after = etags(s3, bucket)
    assert {k: v for k, v in after.items() if k.startswith(f"member/{B2}/")} == {
        k: v for k, v in before.items() if k.startswith(f"member/{B2}/")}  # B2's first new file removed
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")

    monkeypatch.setattr(erasure_landing, "_rewrite", real_rewrite)
    assert erase(s3, bucket) == {"batches_scanned": 3, "batches_rewritten": 1, "files_rewritten": 2,
                                 "rows_removed": 2}
    assert_erased_everywhere(s3, bucket)
    assert_manifests_true(s3, bucket, GROUP_ROWS)


def test_killed_after_publishing_the_rerun_deletes_the_replaced_files(landed, s3, monkeypatch):
    bucket = landed.bucket
    [old] = [f for f in read_manifest(s3, bucket, B1).files if file_holds_member(s3, f.path)]

    def killed(*args, **kwargs):
        raise SystemExit("killed")

    monkeypatch.setattr(erasure_landing, "remove_unlisted", killed)
    with pytest.raises(SystemExit):
        erase(s3, bucket)
    # B1 is published without the member; its replaced file is no longer listed but still there
    assert old.path not in [f.path for f in read_manifest(s3, bucket, B1).files]
    assert file_holds_member(s3, old.path)

    monkeypatch.undo()
    assert erase(s3, bucket) == {"batches_scanned": 3, "batches_rewritten": 1, "files_rewritten": 2,
                                 "rows_removed": 2}
    assert_erased_everywhere(s3, bucket)
    assert_manifests_true(s3, bucket, GROUP_ROWS)


def test_a_killed_first_extract_leaves_nothing_of_the_member(landed, s3):
    """A batch that was never published (a first extract killed: an expired lease and its files) is no batch
    anyone reads, but its files hold the member: the erasure takes the lease over and removes them."""
    bucket = landed.bucket
    prefix = "member/extract_date=2026-11-27/"
    [holder] = [f for f in read_manifest(s3, bucket, B1).files if file_holds_member(s3, f.path)]
    s3.copy_object(Bucket=bucket, CopySource={"Bucket": bucket, "Key": key_of(holder.path)},
                   Key=prefix + "attempt=20261127T000000Z-dead0000/part-00000.parquet")
    expired = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
    s3.put_object(Bucket=bucket, Key=prefix + "_lease.json", Body=json.dumps(
        {"run_id": "scheduled__2026-11-27", "acquired_at": (expired - dt.timedelta(minutes=30)).isoformat(),
         "expires_at": expired.isoformat()}).encode())

    assert erase(s3, bucket) == ERASED_ONCE  # the unpublished batch is not counted as scanned
    assert not [k for k in etags(s3, bucket) if k.startswith(prefix)]
    assert_erased_everywhere(s3, bucket)


def test_the_source_check_finds_the_member_in_any_spelling(mysql_env, mysql_root):
    """member_in_source, the erasure DAG's first check, as the extract user."""
    cur = mysql_root.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")
    setup_schema(mysql_root, DB, mysql_env["MYSQL_EXTRACT_USER"], mysql_env["MYSQL_EXTRACT_PASSWORD"])
    cur.executemany(f"INSERT INTO member ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * 9)})",
                    [member_row(ERASED.upper()), member_row(NEAR)])
    mysql_root.commit()
    conn = mysql_connect(mysql_env, mysql_env["MYSQL_EXTRACT_USER"], mysql_env["MYSQL_EXTRACT_PASSWORD"], DB)
    try:
        assert member_in_source(conn, ERASED) is True
        cur.execute("UPDATE member SET member_id = %s WHERE member_id = %s", (f" {ERASED[:-1]}", ERASED))
        assert member_in_source(conn, ERASED) is False  # now another id, one digit short
        assert member_in_source(conn, NEAR) is True
        cur.execute("DELETE FROM member WHERE member_id = %s", (NEAR,))
        mysql_root.commit()
        assert member_in_source(conn, NEAR) is False
        with pytest.raises(ValueError, match="member_id must be a UUID in lower case"):
            member_in_source(conn, NEAR.upper())
    finally:
        conn.close()
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")
