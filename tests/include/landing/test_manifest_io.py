"""Reading and publishing a batch's manifest (include/landing/manifest_io.py): nothing invalid is published
or read, on a recording stand-in for the S3 client (no services)."""

from __future__ import annotations

import dataclasses
import io

import pytest

from include.landing.manifest_io import publish_manifest, published_manifest, read_manifest
from lakehouse_jobs.manifest import BatchManifest, FileEntry, ManifestError

pytestmark = pytest.mark.unit

AT = "2026-11-26T00:00:00.000001+00:00"
MANIFEST = BatchManifest(
    table="member", batch_id="extract_date=2026-11-26", run_id="scheduled__2026-11-26", mode="snapshot",
    source_query="SELECT 1", row_count=2, schema=[{"name": "member_id", "type": "string", "nullable": False}],
    schema_hash="sha256:" + "0" * 64, files=[FileEntry("s3://landing/member/x/part-00000.parquet", 2, 10, "a" * 64)],
    extracted_at=AT, created_at=AT)


class FakeS3:
    """The calls manifest_io makes of a boto3 S3 client, on a dict of key -> bytes."""

    class exceptions:
        class NoSuchKey(Exception):
            pass

    def __init__(self):
        self.objects: dict[str, bytes] = {}
        self.puts: list[dict] = []

    def put_object(self, *, Bucket, Key, Body, **kwargs):
        self.puts.append({"Bucket": Bucket, "Key": Key, **kwargs})
        self.objects[Key] = Body

    def get_object(self, *, Bucket, Key):
        if Key not in self.objects:
            raise self.exceptions.NoSuchKey(Key)
        return {"Body": io.BytesIO(self.objects[Key])}


def test_a_published_manifest_reads_back_equal_with_the_put_arguments_given():
    s3 = FakeS3()
    key = publish_manifest(s3, "landing", MANIFEST, {"ServerSideEncryption": "AES256", "Tagging": "a=b"})
    assert key == "member/extract_date=2026-11-26/_manifest.json"
    assert s3.puts == [{"Bucket": "landing", "Key": key, "ContentType": "application/json",
                        "ServerSideEncryption": "AES256", "Tagging": "a=b"}]
    assert read_manifest(s3, "landing", "member", "extract_date=2026-11-26") == MANIFEST


def test_a_manifest_its_readers_would_refuse_is_never_published():
    s3 = FakeS3()
    wrong_count = dataclasses.replace(MANIFEST, row_count=3)
    with pytest.raises(ManifestError, match="row_count 3 is not the sum"):
        publish_manifest(s3, "landing", wrong_count, {})
    assert s3.puts == []


def test_reading_checks_the_manifest_and_tells_no_batch_from_a_broken_one():
    s3 = FakeS3()
    assert published_manifest(s3, "landing", "member", "extract_date=2026-11-26") is None
    with pytest.raises(s3.exceptions.NoSuchKey):
        read_manifest(s3, "landing", "member", "extract_date=2026-11-26")
    s3.objects["member/extract_date=2026-11-26/_manifest.json"] = b'{"manifest_version": 1}'
    with pytest.raises(ManifestError, match="s3://landing/member/extract_date=2026-11-26/_manifest.json"):
        published_manifest(s3, "landing", "member", "extract_date=2026-11-26")
