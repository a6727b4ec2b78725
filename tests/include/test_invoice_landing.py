"""Claiming incoming invoice files into a batch (include/invoice_landing.py), on MinIO."""

from __future__ import annotations

import pytest

from include.extract.s3_upload import sse_args
from include.invoice_landing import INCOMING_PREFIX, batch_prefix, claim_incoming
from include.landing_retention import BATCH_OBJECT_TAGS

pytestmark = pytest.mark.integration


def keys(s3, bucket: str, prefix: str) -> dict[str, bytes]:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"][len(prefix):]] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def test_claim_moves_every_incoming_file_once_and_keeps_it_out_of_landing_retention(s3, scratch_bucket):
    files = {"a.pdf": b"%PDF-1.4 a", "sub/b.pdf": b"%PDF-1.4 b", "notes.txt": b"not a pdf"}
    for name, body in files.items():
        s3.put_object(Bucket=scratch_bucket, Key=INCOMING_PREFIX + name, Body=body)
    s3.put_object(Bucket=scratch_bucket, Key=INCOMING_PREFIX + "empty-folder/", Body=b"")

    result = claim_incoming(s3, scratch_bucket, "ingest_ts=20261130T100000", sse_args=sse_args("AES256"))

    assert result["files"] == 3 and result["batch_files"] == 3
    assert keys(s3, scratch_bucket, batch_prefix("ingest_ts=20261130T100000")) == files
    assert set(keys(s3, scratch_bucket, INCOMING_PREFIX)) == {"empty-folder/"}
    head = s3.head_object(Bucket=scratch_bucket, Key=batch_prefix("ingest_ts=20261130T100000") + "a.pdf")
    assert head["ServerSideEncryption"] == "AES256"
    tags = s3.get_object_tagging(Bucket=scratch_bucket, Key=batch_prefix("ingest_ts=20261130T100000") + "a.pdf")
    # invoices are financial records: the 14-day expiry of landed batches must not select them
    assert not set(BATCH_OBJECT_TAGS.items()) & {(t["Key"], t["Value"]) for t in tags["TagSet"]}

    # a retry of the same run claims nothing more; a file arriving later goes to the next batch
    again = claim_incoming(s3, scratch_bucket, "ingest_ts=20261130T100000", sse_args=sse_args("AES256"))
    assert again["files"] == 0 and again["batch_files"] == 3
    s3.put_object(Bucket=scratch_bucket, Key=INCOMING_PREFIX + "late.pdf", Body=b"%PDF late")
    later = claim_incoming(s3, scratch_bucket, "ingest_ts=20261130T110000", sse_args=sse_args("AES256"))
    assert later["files"] == 1
    assert keys(s3, scratch_bucket, batch_prefix("ingest_ts=20261130T110000")) == {"late.pdf": b"%PDF late"}


def test_claim_of_a_half_claimed_file_finishes_it(s3, scratch_bucket):
    """A claim killed between the copy and the delete: the retry copies again and deletes the original."""
    batch = batch_prefix("ingest_ts=20261130T120000")
    s3.put_object(Bucket=scratch_bucket, Key=INCOMING_PREFIX + "x.pdf", Body=b"%PDF x")
    s3.put_object(Bucket=scratch_bucket, Key=batch + "x.pdf", Body=b"%PDF x")

    result = claim_incoming(s3, scratch_bucket, "ingest_ts=20261130T120000", sse_args={})

    assert result["batch_files"] == 1
    assert keys(s3, scratch_bucket, INCOMING_PREFIX) == {}
