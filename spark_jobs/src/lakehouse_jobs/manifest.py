"""The batch manifest: one typed model for `_manifest.json`, written by the extract and read by the Spark
jobs, the DAG's reconciliation and the demo report.

A batch is published by writing its manifest last; consumers read exactly `files[].path` and never list
the prefix (docs/conventions.md). `BatchManifest.from_json` checks everything a consumer relies on and
raises `ManifestError` naming every problem; `JSON_SCHEMA` is the same contract for other tools (a test
keeps the two in step). Pure Python: no pyspark, no boto3.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

MANIFEST_VERSION = 1
MANIFEST_NAME = "_manifest.json"
# batch ids end up in SQL predicates (replaceWhere) and object keys: only harmless characters
BATCH_ID_PATTERN = r"^[A-Za-z0-9_=.:-]+$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
UTC_TIMESTAMP_PATTERN = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?\+00:00$"


class ManifestError(ValueError):
    """A manifest that does not describe a complete, consistent batch."""


@dataclass(frozen=True)
class FileEntry:
    path: str  # s3://bucket/key of a Parquet file
    rows: int
    bytes: int
    sha256: str  # hex digest of the file's bytes


@dataclass(frozen=True)
class Watermark:
    column: str | None = None
    low: str | None = None  # ISO timestamp, exclusive
    high: str | None = None  # ISO timestamp, inclusive


CHANGE_KINDS = ("new", "changed", "duplicate", "unchanged", "deleted")


@dataclass(frozen=True)
class ChangeSet:
    """What a snapshot changes against the member table at ``base_version``, found by the extract
    (include/extract/change_set.py) from the change state the job wrote (lakehouse_jobs.change_state).

    files: the source rows that need work (landed schema): every row whose hash the state lacks, and every
    copy of a member_id the source holds more than once. key_files: Parquet of (member_id as the table
    holds it, change), one row per key of `files` (new, changed, duplicate) and per deleted member.
    counts: source rows by kind (unchanged: rows whose hash the state holds; deleted: table rows).
    """

    base_version: int  # the member table version the state describes
    rules_version: str  # lakehouse_jobs.change_state.state_rules_version of the hashes compared
    state_rows: int  # the table's rows at base_version
    counts: dict[str, int]
    files: list[FileEntry]
    key_files: list[FileEntry]

    @property
    def is_empty(self) -> bool:
        """Nothing new, changed, duplicated or deleted: every source row is in the table as it is."""
        return not any(self.counts.get(k, 0) for k in CHANGE_KINDS if k != "unchanged")


@dataclass(frozen=True)
class BatchManifest:
    table: str
    batch_id: str
    run_id: str
    mode: str  # "snapshot" or "incremental"
    source_query: str
    row_count: int
    schema: list[dict[str, Any]]  # [{"name", "type" (Arrow type name), "nullable"}], in column order
    schema_hash: str  # "sha256:<hex>" of the canonical schema JSON
    files: list[FileEntry]
    # ISO timestamp (UTC, MySQL's clock) at the start of the extract's consistent-snapshot transaction: the
    # batch holds every change committed before it. A snapshot read for an old interval (a backfill, a late
    # re-run) holds the data as of extracted_at, not as of its batch_id; history is dated by extracted_at.
    extracted_at: str
    created_at: str  # ISO timestamp (UTC) when the batch was published
    watermark: Watermark = field(default_factory=Watermark)
    partition_cols: list[str] = field(default_factory=list)
    key_ranges: list[str] = field(default_factory=list)
    # the rows that changed against the job's change state; None when no usable state existed (first load,
    # a state older than the table's last data change): the job then compares the whole snapshot
    change_set: ChangeSet | None = None
    manifest_version: int = MANIFEST_VERSION

    @property
    def column_names(self) -> list[str]:
        return [c["name"] for c in self.schema]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "manifest") -> BatchManifest:
        """Parse and check a manifest; `source` (its path) goes into error messages."""
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ManifestError(f"{source} is not JSON: {e}") from e
        problems = _problems(data)
        if problems:
            raise ManifestError(f"invalid manifest {source}: " + "; ".join(problems))
        change_set = data.get("change_set")
        return cls(
            **{k: v for k, v in data.items() if k not in ("files", "watermark", "change_set")},
            files=[FileEntry(**f) for f in data["files"]],
            watermark=Watermark(**data.get("watermark") or {}),
            change_set=change_set and ChangeSet(
                **{k: v for k, v in change_set.items() if k not in ("files", "key_files")},
                files=[FileEntry(**f) for f in change_set["files"]],
                key_files=[FileEntry(**f) for f in change_set["key_files"]]),
        )


def _whole(value: Any) -> bool:
    """A count in JSON: an int >= 0 and not a bool (in Python, True is an int)."""
    return type(value) is int and value >= 0


def _problems(data: Any) -> list[str]:
    if not isinstance(data, dict):
        return ["not a JSON object"]
    problems = []
    if data.get("manifest_version") != MANIFEST_VERSION:
        problems.append(f"manifest_version {data.get('manifest_version')!r}, expected {MANIFEST_VERSION}")
    known = set(JSON_SCHEMA["properties"])
    if unknown := sorted(set(data) - known):
        problems.append(f"unknown field(s) {unknown}")
    if missing := sorted(set(JSON_SCHEMA["required"]) - set(data)):
        problems.append(f"missing field(s) {missing}")
        return problems
    # the JSON Schema's types: a string field holds a string, a count a whole number (a bool is not one)
    for name, spec in JSON_SCHEMA["properties"].items():
        if name in data and spec.get("type") == "string" and not isinstance(data[name], str):
            problems.append(f"{name} {data[name]!r} is not a string")
    if not _whole(data["row_count"]):
        problems.append(f"row_count {data['row_count']!r} is not a whole number >= 0")
    if problems:
        return problems
    # fullmatch: with re.match a pattern's `$` also matches before a final newline
    if not re.fullmatch(BATCH_ID_PATTERN, data["batch_id"]):
        problems.append(f"batch_id {data['batch_id']!r} has unexpected characters")
    if data["mode"] not in ("snapshot", "incremental"):
        problems.append(f"mode {data['mode']!r} is neither snapshot nor incremental")
    if not re.fullmatch(UTC_TIMESTAMP_PATTERN, data["extracted_at"]):
        problems.append(f"extracted_at {data['extracted_at']!r} is not an ISO timestamp in UTC (+00:00)")
    files = data["files"]
    file_problems = _file_problems(files, "files")
    if file_problems:
        return problems + file_problems
    if not problems and sum(f["rows"] for f in files) != data["row_count"]:
        problems.append(f"row_count {data['row_count']} is not the sum of files[].rows")
    if data.get("change_set") is not None:
        problems += _change_set_problems(data["change_set"], data["row_count"])
    if not isinstance(data["schema"], list) or not all(
        isinstance(c, dict) and {"name", "type", "nullable"} <= set(c) for c in data["schema"]
    ):
        problems.append("schema must be a list of {name, type, nullable}")
    return problems


def _file_problems(files: Any, name: str) -> list[str]:
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        return [f"{name} must be a list of objects"]
    problems = []
    for i, f in enumerate(files):
        if set(f) != {"path", "rows", "bytes", "sha256"}:
            problems.append(f"{name}[{i}] must have exactly path, rows, bytes, sha256")
        elif not isinstance(f["path"], str):
            problems.append(f"{name}[{i}]: path is not a string")
        elif not (_whole(f["rows"]) and _whole(f["bytes"])):
            problems.append(f"{name}[{i}]: rows and bytes must be whole numbers >= 0")
        elif not (isinstance(f["sha256"], str) and re.fullmatch(SHA256_PATTERN, f["sha256"])):
            problems.append(f"{name}[{i}]: sha256 is not a hex digest")
    return problems


def _change_set_problems(cs: Any, row_count: int) -> list[str]:
    """A change set's counts must add up: its files hold the new, changed and duplicated rows, and with the
    unchanged rows they are the whole snapshot."""
    if not isinstance(cs, dict) or set(cs) != set(_CHANGE_SET["required"]):
        return [f"change_set must have exactly {_CHANGE_SET['required']}"]
    problems = _file_problems(cs["files"], "change_set.files") + _file_problems(cs["key_files"], "change_set.key_files")
    counts = cs["counts"]
    if not (isinstance(counts, dict) and set(counts) == set(CHANGE_KINDS) and all(map(_whole, counts.values()))):
        return problems + [f"change_set.counts must give a whole number >= 0 for each of {list(CHANGE_KINDS)}"]
    if not (_whole(cs["base_version"]) and _whole(cs["state_rows"]) and isinstance(cs["rules_version"], str)):
        problems.append("change_set: base_version and state_rows must be whole numbers, rules_version a string")
    if problems:
        return problems
    changed_rows = counts["new"] + counts["changed"] + counts["duplicate"]
    if sum(f["rows"] for f in cs["files"]) != changed_rows:
        problems.append(f"change_set.files hold {sum(f['rows'] for f in cs['files'])} rows, the counts say "
                        f"{changed_rows} new, changed or duplicated")
    if changed_rows + counts["unchanged"] != row_count:
        problems.append(f"change_set: {changed_rows} changed + {counts['unchanged']} unchanged rows != row_count "
                        f"{row_count}")
    return problems


_STRINGS = {"type": "array", "items": {"type": "string"}}
_NULLABLE_STRING = {"type": ["string", "null"]}
_FILES = {"type": "array", "items": {
    "type": "object", "additionalProperties": False, "required": ["path", "rows", "bytes", "sha256"],
    "properties": {
        "path": {"type": "string"}, "rows": {"type": "integer", "minimum": 0},
        "bytes": {"type": "integer", "minimum": 0}, "sha256": {"type": "string", "pattern": SHA256_PATTERN},
    },
}}
_CHANGE_SET = {
    "type": "object", "additionalProperties": False,
    "required": ["base_version", "rules_version", "state_rows", "counts", "files", "key_files"],
    "properties": {
        "base_version": {"type": "integer", "minimum": 0},
        "rules_version": {"type": "string"},
        "state_rows": {"type": "integer", "minimum": 0},
        "counts": {"type": "object", "additionalProperties": False, "required": list(CHANGE_KINDS),
                   "properties": {k: {"type": "integer", "minimum": 0} for k in CHANGE_KINDS}},
        "files": _FILES,
        "key_files": _FILES,
    },
}
JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Batch manifest (_manifest.json)",
    "type": "object",
    "additionalProperties": False,
    "required": ["manifest_version", "table", "batch_id", "run_id", "mode", "source_query", "row_count",
                 "schema", "schema_hash", "files", "extracted_at", "created_at"],
    "properties": {
        "manifest_version": {"const": MANIFEST_VERSION},
        "table": {"type": "string"},
        "batch_id": {"type": "string", "pattern": BATCH_ID_PATTERN},
        "run_id": {"type": "string"},
        "mode": {"enum": ["snapshot", "incremental"]},
        "source_query": {"type": "string"},
        "watermark": {
            "type": "object", "additionalProperties": False,
            "properties": {"column": _NULLABLE_STRING, "low": _NULLABLE_STRING, "high": _NULLABLE_STRING},
        },
        "row_count": {"type": "integer", "minimum": 0},
        "partition_cols": _STRINGS,
        "key_ranges": _STRINGS,
        "schema": {"type": "array", "items": {
            "type": "object", "required": ["name", "type", "nullable"],
            "properties": {"name": {"type": "string"}, "type": {"type": "string"}, "nullable": {"type": "boolean"}},
        }},
        "schema_hash": {"type": "string", "pattern": r"^sha256:[0-9a-f]{64}$"},
        "files": _FILES,
        "extracted_at": {"type": "string", "pattern": UTC_TIMESTAMP_PATTERN},
        "created_at": {"type": "string"},
        "change_set": {"oneOf": [{"type": "null"}, _CHANGE_SET]},
    },
}


# ------------------------------------------------------------------------------- invoice file lists

FILE_LIST_NAME = "_files.json"


@dataclass(frozen=True)
class ListedFile:
    path: str  # s3://bucket/key (or a local path in tests): exactly the file, no glob
    bytes: int
    source_key: str | None = None  # where the file arrived, when it was renamed on the way (a claim)
    arrived_at: str | None = None  # ISO timestamp (UTC) of its arrival there: its place in issue order


@dataclass(frozen=True)
class FileList:
    """The files one invoice_load run reads, written by the claim (include/invoice_landing.py) and read by
    the job's ``--manifest``: the job's inventory comes from here, not from Spark's listing, which hides
    names starting with "_" or "." and never returns a zero-byte file."""

    batch_id: str
    files: list[ListedFile]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "file list") -> FileList:
        """Raises ManifestError naming `source` for anything but {"batch_id": str, "files": [{"path": str,
        "bytes": int >= 0, "source_key": str | null, "arrived_at": ISO timestamp in UTC | null}, ...]} with
        distinct paths."""
        try:
            data = json.loads(text)
            files = [ListedFile(**f) for f in data["files"]]
            batch_id = data["batch_id"]
        except (ValueError, TypeError, KeyError) as e:
            raise ManifestError(f"{source} is not a file list: {type(e).__name__}: {e}") from e
        problems = [f"files[{i}] needs a path and bytes >= 0" for i, f in enumerate(files)
                    if not (isinstance(f.path, str) and f.path and isinstance(f.bytes, int) and f.bytes >= 0)]
        problems += [f"files[{i}]: arrived_at {f.arrived_at!r} is not an ISO timestamp in UTC (+00:00)"
                     for i, f in enumerate(files)
                     if f.arrived_at is not None and not re.match(UTC_TIMESTAMP_PATTERN, str(f.arrived_at))]
        if len({f.path for f in files}) != len(files):
            problems.append("a path is listed twice")
        if problems:
            raise ManifestError(f"invalid file list {source}: " + "; ".join(problems))
        return cls(batch_id=str(batch_id), files=files)
