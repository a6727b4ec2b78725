"""The batch manifest model (lakehouse_jobs.manifest): one typed contract for writer and readers."""

from __future__ import annotations

import dataclasses
import json

import jsonschema
import pytest

from lakehouse_jobs.manifest import (
    JSON_SCHEMA,
    BatchManifest,
    FileEntry,
    FileList,
    ListedFile,
    ManifestError,
    Watermark,
)

pytestmark = pytest.mark.unit

GOOD = BatchManifest(
    table="member", batch_id="extract_date=2026-11-26", run_id="manual__1", mode="snapshot",
    source_query="SELECT `member_id` FROM `member`", row_count=3,
    schema=[{"name": "member_id", "type": "string", "nullable": False}],
    schema_hash="sha256:" + "a" * 64, extracted_at="2026-11-26T18:59:58.123456+00:00",
    created_at="2026-11-26T19:00:00+00:00",
    files=[FileEntry("s3://landing/member/extract_date=2026-11-26/part-00000.parquet", 3, 1234, "b" * 64)],
)


def test_round_trip_and_schema_agree():
    text = GOOD.to_json()
    assert BatchManifest.from_json(text) == GOOD
    jsonschema.validate(json.loads(text), JSON_SCHEMA)


def test_json_schema_names_every_field_of_the_model():
    assert set(JSON_SCHEMA["properties"]) == {f.name for f in dataclasses.fields(BatchManifest)}
    assert set(JSON_SCHEMA["properties"]["watermark"]["properties"]) == {f.name for f in dataclasses.fields(Watermark)}
    file_schema = JSON_SCHEMA["properties"]["files"]["items"]
    assert set(file_schema["required"]) == {f.name for f in dataclasses.fields(FileEntry)}


def broken(**changes) -> str:
    data = json.loads(GOOD.to_json())
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data)


@pytest.mark.parametrize(("text", "error"), [
    ("{not json", "is not JSON"),
    (broken(manifest_version=2), "manifest_version 2"),
    (broken(row_count=None), r"missing field\(s\) \['row_count'\]"),
    (broken(extra_field=1), r"unknown field\(s\) \['extra_field'\]"),
    (broken(batch_id="x'; DROP TABLE member; --"), "batch_id .* unexpected characters"),
    (broken(row_count=4), "row_count 4 is not the sum of files"),
    (broken(files=[{"path": "s3://x/y", "rows": 3}]), "must have exactly path, rows, bytes, sha256"),
    (broken(files=[{"path": "s3://x/y", "rows": -3, "bytes": 1, "sha256": "b" * 64}]), "whole numbers >= 0"),
    (broken(mode="full"), "mode 'full'"),
    (broken(extracted_at=None), r"missing field\(s\) \['extracted_at'\]"),
    (broken(extracted_at="2026-11-26T18:59:58"), "extracted_at .* not an ISO timestamp in UTC"),
    (broken(new_columns=[]), r"unknown field\(s\) \['new_columns'\]"),
    # types as the JSON Schema states them (the manifest is read from S3: a trust boundary)
    (broken(batch_id=20261126), "batch_id 20261126 is not a string"),
    (broken(table=1), "table 1 is not a string"),
    (broken(row_count="3"), "row_count '3' is not a whole number"),
    (broken(row_count=True), "row_count True is not a whole number"),
    (broken(files=[{"path": "s3://x/y", "rows": True, "bytes": 1, "sha256": "b" * 64}]), "whole numbers >= 0"),
])
def test_invalid_manifests_are_refused_with_the_reason(text, error):
    with pytest.raises(ManifestError, match=error):
        BatchManifest.from_json(text, source="s3://landing/member/x/_manifest.json")
    # the JSON Schema refuses what the model refuses, but for a sum it cannot express
    if not text.startswith("{not") and "row_count 4" not in error:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(json.loads(text), JSON_SCHEMA)


def test_a_pattern_must_match_the_whole_value():
    # re.match's `$` also matches before a final newline, and so does the JSON Schema's search
    with pytest.raises(ManifestError, match="batch_id .* unexpected characters"):
        BatchManifest.from_json(broken(batch_id="extract_date=2026-11-26\n"))


def test_file_list_round_trips_and_names_every_problem():
    listed = FileList("ingest_ts=20261130T100000", [ListedFile("s3://landing/a.pdf", 10, "invoices/incoming/a.pdf"),
                                                    ListedFile("s3://landing/b.pdf", 0)])
    assert FileList.from_json(listed.to_json()) == listed
    for text, message in [
        ("[]", "not a file list"),
        ('{"batch_id": "b"}', "not a file list: KeyError"),
        ('{"batch_id": "b", "files": [{"path": "x"}]}', "not a file list: TypeError"),
        ('{"batch_id": "b", "files": [{"path": "x", "bytes": -1}]}', r"files\[0\] needs a path and bytes >= 0"),
        ('{"batch_id": "b", "files": [{"path": "", "bytes": 1}]}', r"files\[0\] needs a path"),
        ('{"batch_id": "b", "files": [{"path": "x", "bytes": 1}, {"path": "x", "bytes": 2}]}', "listed twice"),
    ]:
        with pytest.raises(ManifestError, match=message):
            FileList.from_json(text, source="list.json")
