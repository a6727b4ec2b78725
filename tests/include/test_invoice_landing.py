"""Claiming incoming invoice files into a batch (include/invoice_landing.py), on MinIO."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from include.invoice_landing import (
    INCOMING_PREFIX,
    batch_prefix,
    claim_incoming,
    claimed_name,
    close_batches,
    file_list_key,
    has_incoming_files,
)
from include.landing.retention import BATCH_OBJECT_TAGS
from include.landing.s3_writer import sse_args
from lakehouse_jobs.manifest import FILE_LIST_NAME, FileList


def keys(s3, bucket: str, prefix: str) -> dict[str, bytes]:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"][len(prefix):]] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def file_list(s3, bucket: str, batch_id: str) -> FileList:
    body = s3.get_object(Bucket=bucket, Key=file_list_key(batch_id))["Body"].read()
    return FileList.from_json(body, source=file_list_key(batch_id))


@pytest.mark.unit
@pytest.mark.parametrize(("name", "extension"), [
    ("a.pdf", ".pdf"),
    ("scans/_Chris Wong [2].PDF", ".PDF"),
    (".hidden", ""),
    ("upload.pdf._COPYING_", ""),
    ("発票.pdf", ".pdf"),
    ("no-extension", ""),
])
def test_claimed_name_is_one_spark_reads_literally_and_carries_no_name(name, extension):
    claimed = claimed_name(name, '"etag"')
    assert re.fullmatch(r"[0-9a-f]{16}(\.[A-Za-z0-9]{1,10})?", claimed)
    assert claimed[16:] == extension


@pytest.mark.unit
def test_claimed_name_differs_by_name_and_by_etag():
    assert claimed_name("a.pdf", '"1"') == claimed_name("a.pdf", '"1"')
    assert len({claimed_name("a.pdf", '"1"'), claimed_name("a.pdf", '"2"'), claimed_name("a_pdf", '"1"'),
                claimed_name("x/a.pdf", '"1"')}) == 4


@pytest.mark.unit
def test_a_folder_placeholder_is_not_a_file():
    assert has_incoming_files([{"Key": INCOMING_PREFIX + "a.pdf", "Size": 3}])
    assert not has_incoming_files([{"Key": INCOMING_PREFIX + "folder/", "Size": 0}])


@pytest.mark.integration
def test_claim_moves_every_incoming_file_once_and_keeps_it_out_of_landing_retention(s3, scratch_bucket):
    files = {"a.pdf": b"%PDF-1.4 a", "sub/b.pdf": b"%PDF-1.4 b", "notes.txt": b"not a pdf",
             # names Spark's readers hide, a file they never return, names S3 metadata cannot hold as they are
             "_under.pdf": b"%PDF-1.4 u", ".dot.pdf": b"%PDF-1.4 d", "empty.pdf": b"", "Zoë.pdf": b"%PDF z",
             "new\nline.pdf": b"%PDF n"}
    for name, body in files.items():
        s3.put_object(Bucket=scratch_bucket, Key=INCOMING_PREFIX + name, Body=body, ContentType="application/pdf")
    s3.put_object(Bucket=scratch_bucket, Key=INCOMING_PREFIX + "empty-folder/", Body=b"")
    batch = "ingest_ts=20261130T100000"

    result = claim_incoming(s3, scratch_bucket, batch, sse_args=sse_args("AES256"))

    assert (result["files"], result["batch_files"], result["bytes"]) == (8, 8, sum(map(len, files.values())))
    assert result["open_batches"] == [batch]
    assert result["file_list"] == f"s3://{scratch_bucket}/{file_list_key(batch)}"
    listed = file_list(s3, scratch_bucket, batch)
    assert listed.batch_id == batch
    by_source = {f.source_key[len(INCOMING_PREFIX):]: f for f in listed.files}
    assert set(by_source) == set(files)
    claimed = keys(s3, scratch_bucket, batch_prefix(batch))
    assert set(claimed) == {f.path.rsplit("/", 1)[1] for f in listed.files} | {FILE_LIST_NAME}
    for name, body in files.items():
        entry = by_source[name]
        assert entry.path.startswith(f"s3://{scratch_bucket}/{batch_prefix(batch)}")
        assert (claimed[entry.path.rsplit("/", 1)[1]], entry.bytes) == (body, len(body))
        assert dt.datetime.fromisoformat(entry.arrived_at) <= dt.datetime.now(dt.timezone.utc)
    assert set(keys(s3, scratch_bucket, INCOMING_PREFIX)) == {"empty-folder/"}
    a_key = by_source["a.pdf"].path.split("/", 3)[3]
    head = s3.head_object(Bucket=scratch_bucket, Key=a_key)
    assert (head["ServerSideEncryption"], head["ContentType"]) == ("AES256", "application/pdf")
    tags = s3.get_object_tagging(Bucket=scratch_bucket, Key=a_key)
    # invoices are financial records: the 14-day expiry of landed batches must not select them
    assert not set(BATCH_OBJECT_TAGS.items()) & {(t["Key"], t["Value"]) for t in tags["TagSet"]}

    # a retry of the same run claims nothing more and lists the same files; a file arriving later goes to
    # the next batch, and a new upload under a claimed name is a file of its own
    again = claim_incoming(s3, scratch_bucket, batch, sse_args=sse_args("AES256"))
    assert (again["files"], again["batch_files"]) == (0, 8)
    assert sorted(file_list(s3, scratch_bucket, batch).files, key=str) == sorted(listed.files, key=str)  # metadata
    close_batches(s3, scratch_bucket, again["open_batches"])
    s3.put_object(Bucket=scratch_bucket, Key=INCOMING_PREFIX + "late.pdf", Body=b"%PDF late")
    s3.put_object(Bucket=scratch_bucket, Key=INCOMING_PREFIX + "a.pdf", Body=b"%PDF-1.4 a, corrected")
    later = claim_incoming(s3, scratch_bucket, "ingest_ts=20261130T110000", sse_args=sse_args("AES256"))
    assert (later["files"], later["batch_files"], later["open_batches"]) == (2, 2, ["ingest_ts=20261130T110000"])
    assert sorted(keys(s3, scratch_bucket, batch_prefix("ingest_ts=20261130T110000")).values()) == [
        b"%PDF late", b"%PDF-1.4 a, corrected", file_list(s3, scratch_bucket, "ingest_ts=20261130T110000").to_json()
        .encode()]


@pytest.mark.integration
def test_files_of_a_batch_never_closed_are_listed_again_by_the_next_claim(s3, scratch_bucket):
    """A run that failed for good after its claim (or whose job deferred files) leaves its batch open: the
    next claim lists its files beside its own, and closing both ends that."""
    s3.put_object(Bucket=scratch_bucket, Key=INCOMING_PREFIX + "first.pdf", Body=b"%PDF first")
    failed = claim_incoming(s3, scratch_bucket, "ingest_ts=20261130T130000", sse_args={})
    s3.put_object(Bucket=scratch_bucket, Key=INCOMING_PREFIX + "second.pdf", Body=b"%PDF second")

    next_run = claim_incoming(s3, scratch_bucket, "ingest_ts=20261130T140000", sse_args={})

    assert next_run["open_batches"] == ["ingest_ts=20261130T130000", "ingest_ts=20261130T140000"]
    listed = file_list(s3, scratch_bucket, "ingest_ts=20261130T140000")
    assert sorted(f.source_key for f in listed.files) == [INCOMING_PREFIX + "first.pdf", INCOMING_PREFIX + "second.pdf"]
    assert {f.path for f in file_list(s3, scratch_bucket, failed["batch_id"]).files} < {f.path for f in listed.files}
    close_batches(s3, scratch_bucket, next_run["open_batches"])
    s3.put_object(Bucket=scratch_bucket, Key=INCOMING_PREFIX + "third.pdf", Body=b"%PDF third")
    assert claim_incoming(s3, scratch_bucket, "ingest_ts=20261130T150000", sse_args={})["batch_files"] == 1


@pytest.mark.integration
def test_claim_of_a_half_claimed_file_finishes_it(s3, scratch_bucket):
    """A claim killed between the copy and the delete: the retry copies again (same name and ETag, same
    claimed name), deletes the original and lists the file once."""
    batch = "ingest_ts=20261130T120000"
    s3.put_object(Bucket=scratch_bucket, Key=INCOMING_PREFIX + "x.pdf", Body=b"%PDF x")
    etag = s3.head_object(Bucket=scratch_bucket, Key=INCOMING_PREFIX + "x.pdf")["ETag"]
    s3.copy_object(Bucket=scratch_bucket, Key=batch_prefix(batch) + claimed_name("x.pdf", etag),
                   CopySource={"Bucket": scratch_bucket, "Key": INCOMING_PREFIX + "x.pdf"})

    result = claim_incoming(s3, scratch_bucket, batch, sse_args={})

    assert (result["files"], result["batch_files"]) == (1, 1)
    assert keys(s3, scratch_bucket, INCOMING_PREFIX) == {}
    assert [f.source_key for f in file_list(s3, scratch_bucket, batch).files] == [INCOMING_PREFIX + "x.pdf"]


@pytest.mark.integration
def test_the_claim_logs_no_file_name(s3, scratch_bucket, caplog):
    """File names can name a customer: the claim logs counts and the batch id only."""
    names = ["Mrs Jane Doe, 12 High St.pdf", "Zoë Wong invoice.pdf"]
    for name in names:
        s3.put_object(Bucket=scratch_bucket, Key=INCOMING_PREFIX + name, Body=b"%PDF x")
    with caplog.at_level("DEBUG", logger="include.invoice_landing"):
        result = claim_incoming(s3, scratch_bucket, "ingest_ts=20261130T160000", sse_args={})
    assert result["files"] == 2 and caplog.records
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not [part for name in names for part in ("Jane", "Doe", "High St", "Zoë", "Wong") if part in logged]
