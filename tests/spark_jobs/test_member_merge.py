"""Tests of the member_merge job (lakehouse_jobs.member_merge).

unit: the pure functions on small in-memory DataFrames (and plain Python for the lookups).
integration: `main()` end to end on local files: Parquet batch + manifest in, Delta tables + result out.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable
from pyspark.sql import types as T

from include.extract.schema_drift import schema_hash, schema_json
from lakehouse_jobs import member_merge
from lakehouse_jobs.batch import BatchError, read_batch
from lakehouse_jobs.contracts import MEMBER, arrow_schema, spark_schema
from lakehouse_jobs.manifest import BatchManifest

TODAY = date(2026, 11, 26)
# as Spark reads a batch: file sources make every field nullable, so a job must cope with a null key
SOURCE_ROW_SCHEMA = T.StructType([T.StructField(f.name, f.dataType) for f in spark_schema(MEMBER)])
QUARANTINE_ROW_SCHEMA = T.StructType(
    SOURCE_ROW_SCHEMA.fields + [T.StructField("quarantine_reason", T.StringType())]
)
# names that must survive byte for byte: CJK, emoji (with a ZWJ sequence), a decomposed accent (NFD)
UNICODE_NAMES = [("李小龍", "😀🎉"), ("Zoe\u0301", "👩‍👩‍👧 O'Brien"), ("Ñoño", "Grüße")]


def member_id(n: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"member-{n}"))


def member_row(n: int, **changes: object) -> tuple:
    """A valid source row; `changes` override single columns."""
    first, last = UNICODE_NAMES[n % len(UNICODE_NAMES)]
    row = {
        "member_id": member_id(n),
        "first_name": first,
        "last_name": last,
        "email": f"member{n}@example.com",
        "phone_number": "(213)948-8645x530",
        "address": f"{n} Main Street",
        "city": "Springfield",
        "country": "Japan",
        "registration_date": date(2020, 1, 1 + n % 28),
    }
    row.update(changes)
    return tuple(row[c] for c in member_merge.SOURCE_COLUMNS)


@pytest.mark.unit
def test_clean_members_normalises_and_keeps_raw_row(spark):
    upper_id = member_id(1).upper()
    raw = spark.createDataFrame(
        [
            (f"  {upper_id} ", " Zoë ", "O'Brien\t", " John.Doe@Example.COM ", "+1-213-948-8645",
             " 1 Main St ", " Springfield ", " United States ", date(2020, 5, 1)),
            (member_id(2), "李小龍", "😀 Zoe\u0301", None, "(213)948-8645x530", "2 Rue", "Paris",
             "Japan", date(2021, 6, 2)),
            (member_id(3), "", "   ", "a@b.io", "not a number", None, "\n", "Atlantis", None),
        ],
        SOURCE_ROW_SCHEMA,
    )
    expected = spark.createDataFrame(
        [
            (member_id(1), "Zoë", "O'Brien", "john.doe@example.com", "+1-213-948-8645", "+12139488645",
             "1 Main St", "Springfield", "United States", "US", date(2020, 5, 1)),
            (member_id(2), "李小龍", "😀 Zoe\u0301", None, "(213)948-8645x530", "+12139488645", "2 Rue",
             "Paris", "Japan", "JP", date(2021, 6, 2)),
            (member_id(3), None, None, "a@b.io", "not a number", None, None, None, "Atlantis", None, None),
        ],
        T.StructType(
            [T.StructField(c, T.DateType() if c == "registration_date" else T.StringType())
             for c in member_merge.MEMBER_COLUMNS]
        ),
    )

    cleaned = member_merge.clean_members(raw)

    assert_df_equality(cleaned.select(*member_merge.MEMBER_COLUMNS), expected, ignore_row_order=True)
    assert_df_equality(cleaned.select("_raw.*"), raw, ignore_row_order=True)


@pytest.mark.unit
def test_split_gives_each_bad_row_its_first_reason(spark):
    rows_and_reasons = [
        (member_row(1), None),
        (member_row(2, email=None), None),  # email is optional
        (member_row(3, registration_date=TODAY), None),  # boundary: today is not the future
        (member_row(4, registration_date=date(1900, 1, 1)), None),  # boundary: not too old
        (member_row(5), None),  # kept once ...
        (member_row(5), "duplicate_row"),  # ... its exact copy is quarantined
        (member_row(6, member_id=None), "missing_member_id"),
        (member_row(7, member_id="   "), "missing_member_id"),
        (member_row(8, member_id="12345", email="not-an-email"), "invalid_member_id"),
        (member_row(9), "duplicate_member_id"),  # same id, different contents: all copies
        (member_row(9, email="other@example.com"), "duplicate_member_id"),
        (member_row(10, email="no-at-sign.example.com", registration_date=None), "invalid_email"),
        (member_row(11, email="a@b"), "invalid_email"),  # no top-level domain
        (member_row(12, registration_date=None), "missing_registration_date"),
        (member_row(13, registration_date=date(2026, 11, 27)), "registration_date_in_future"),
        (member_row(14, registration_date=date(1899, 12, 31)), "registration_date_too_old"),
    ]
    raw = spark.createDataFrame([row for row, _ in rows_and_reasons], SOURCE_ROW_SCHEMA)

    valid, quarantine = member_merge.split_valid_quarantine(member_merge.clean_members(raw), TODAY)

    expected_quarantine = spark.createDataFrame(
        [row + (reason,) for row, reason in rows_and_reasons if reason], QUARANTINE_ROW_SCHEMA
    )
    assert_df_equality(quarantine, expected_quarantine, ignore_row_order=True)
    expected_valid_ids = spark.createDataFrame([(member_id(n),) for n in (1, 2, 3, 4, 5)], "member_id string")
    assert_df_equality(
        valid.select("member_id"), expected_valid_ids, ignore_row_order=True, ignore_nullable=True
    )
    assert valid.count() + quarantine.count() == raw.count()


@pytest.mark.unit
def test_read_batch_of_an_empty_extract_without_files(spark):
    manifest = BatchManifest(table="member", batch_id="extract_date=2026-11-26", run_id="t", mode="snapshot",
                             source_query="", row_count=0, schema=[], schema_hash="", files=[], created_at="")

    batch = read_batch(spark, manifest, MEMBER)

    assert_df_equality(batch, spark.createDataFrame([], SOURCE_ROW_SCHEMA), ignore_nullable=True)


# --------------------------------------------------------------------------- integration: main()


def write_batch(landing: Path, batch_id: str, rows: list[tuple]) -> tuple[str, dict]:
    """Write rows as a Parquet batch plus its manifest, as the extract does: (manifest path, manifest)."""
    batch_dir = landing / "member" / batch_id
    batch_dir.mkdir(parents=True)
    data_file = batch_dir / "part-00000.parquet"
    schema = arrow_schema(MEMBER)
    records = [dict(zip(member_merge.SOURCE_COLUMNS, row)) for row in rows]
    pq.write_table(pa.Table.from_pylist(records, schema=schema), data_file)
    content = data_file.read_bytes()
    manifest = {
        "manifest_version": 1,
        "table": "member",
        "batch_id": batch_id,
        "run_id": "test",
        "mode": "snapshot",
        "source_query": "SELECT ... FROM member",
        "watermark": {"column": None, "low": None, "high": None},
        "row_count": len(rows),
        "schema": schema_json(schema),
        "schema_hash": schema_hash(schema),
        "files": [{"path": str(data_file), "rows": len(rows), "bytes": len(content),
                   "sha256": hashlib.sha256(content).hexdigest()}],
        "created_at": "2026-11-26T19:00:00+00:00",
    }
    manifest_path = batch_dir / "_manifest.json"
    manifest_path.write_text(json.dumps(manifest))
    return str(manifest_path), manifest


class Lake:
    """The job's output locations under one temporary directory."""

    def __init__(self, root: Path):
        self.landing = root / "landing"
        self.table = str(root / "lakehouse" / "member")
        self.quarantine = str(root / "lakehouse" / "member_quarantine")
        self.results = root / "lakehouse" / "_results"

    def result_path(self, batch_id: str) -> Path:
        return self.results / f"{batch_id}.json"

    def run(self, manifest_path: str, batch_id: str) -> dict:
        return member_merge.main([
            "--manifest", manifest_path,
            "--table-path", self.table,
            "--quarantine-path", self.quarantine,
            "--result-path", str(self.result_path(batch_id)),
        ])


def delta_version(spark, path: str) -> int:
    return DeltaTable.forPath(spark, path).history(1).first()["version"]


def last_merge_metrics(spark, path: str) -> dict[str, int]:
    last = DeltaTable.forPath(spark, path).history(1).first()
    assert last["operation"] == "MERGE"
    return {k: int(last["operationMetrics"][k]) for k in ("numTargetRowsInserted", "numTargetRowsUpdated")}


BATCH_1 = "extract_date=2026-11-20"
BATCH_2 = "extract_date=2026-11-21"
GOOD_ROWS = [member_row(n) for n in range(20)]
BAD_ROW = member_row(99, email="not-an-email")


@pytest.mark.integration
def test_first_run_then_rerun_of_the_same_batch(spark, tmp_path):
    lake = Lake(tmp_path)
    manifest_path, _ = write_batch(lake.landing, BATCH_1, GOOD_ROWS + [BAD_ROW])

    first = lake.run(manifest_path, BATCH_1)

    members = spark.read.format("delta").load(lake.table)
    # every source row is clean: the table holds it unchanged (names byte for byte) plus derived columns
    expected_members = spark.createDataFrame(
        [row[:5] + ("+12139488645",) + row[5:8] + ("JP", row[8], BATCH_1) for row in GOOD_ROWS],
        T.StructType(member_merge.MEMBER_TABLE_SCHEMA.fields[:-1]),
    )
    assert_df_equality(
        members.drop("_updated_at"), expected_members, ignore_row_order=True, ignore_nullable=True
    )
    assert members.filter("_updated_at IS NULL").count() == 0
    quarantine = spark.read.format("delta").load(lake.quarantine)
    expected_quarantine = spark.createDataFrame(
        [BAD_ROW + ("invalid_email", BATCH_1)],
        T.StructType(QUARANTINE_ROW_SCHEMA.fields + [T.StructField("batch_id", T.StringType())]),
    )
    assert_df_equality(
        quarantine.select(*member_merge.SOURCE_COLUMNS, "quarantine_reason", "batch_id"),
        expected_quarantine,
        ignore_nullable=True,
    )
    expected_result = {"batch_id": BATCH_1, "manifest_rows": 21, "valid_rows": 20, "quarantined_rows": 1,
                       "delta_rows_total": 20, "delta_version": delta_version(spark, lake.table)}
    assert first == expected_result
    assert json.loads(lake.result_path(BATCH_1).read_text()) == expected_result

    second = lake.run(manifest_path, BATCH_1)

    assert last_merge_metrics(spark, lake.table) == {"numTargetRowsInserted": 0, "numTargetRowsUpdated": 0}
    assert {k: v for k, v in second.items() if k != "delta_version"} == {
        k: v for k, v in first.items() if k != "delta_version"
    }
    members = spark.read.format("delta").load(lake.table)
    assert members.select("member_id").distinct().count() == members.count() == 20
    assert spark.read.format("delta").load(lake.quarantine).count() == 1  # replaced, not appended


@pytest.mark.integration
def test_changed_row_is_updated_and_older_backfill_is_applied(spark, tmp_path):
    lake = Lake(tmp_path)
    old_rows = [member_row(n) for n in range(3)]
    new_rows = [member_row(0, email="new@example.com"), member_row(1), member_row(3)]
    old_manifest, _ = write_batch(lake.landing, BATCH_1, old_rows)
    new_manifest, _ = write_batch(lake.landing, BATCH_2, new_rows)

    def state() -> dict[str, tuple[str, str]]:
        rows = spark.read.format("delta").load(lake.table).select("member_id", "email", "_batch_id").collect()
        return {r["member_id"]: (r["email"], r["_batch_id"]) for r in rows}

    lake.run(old_manifest, BATCH_1)
    lake.run(new_manifest, BATCH_2)

    assert last_merge_metrics(spark, lake.table) == {"numTargetRowsInserted": 1, "numTargetRowsUpdated": 1}
    assert state() == {
        member_id(0): ("new@example.com", BATCH_2),
        member_id(1): ("member1@example.com", BATCH_1),  # unchanged rows keep the batch that wrote them
        member_id(2): ("member2@example.com", BATCH_1),
        member_id(3): ("member3@example.com", BATCH_2),
    }

    # a backfill of the older interval is merged, not skipped as an already-seen write
    lake.run(old_manifest, BATCH_1)

    assert last_merge_metrics(spark, lake.table) == {"numTargetRowsInserted": 0, "numTargetRowsUpdated": 1}
    assert state()[member_id(0)] == ("member0@example.com", BATCH_1)


@pytest.fixture(scope="module")
def loaded_lake(spark, tmp_path_factory) -> Lake:
    """A lake after one successful run; tests using it must leave the member table unchanged."""
    lake = Lake(tmp_path_factory.mktemp("loaded"))
    manifest_path, _ = write_batch(lake.landing, BATCH_1, GOOD_ROWS)
    lake.run(manifest_path, BATCH_1)
    return lake


def _remove(data_file: Path, manifest: dict) -> None:
    data_file.unlink()


def _truncate(data_file: Path, manifest: dict) -> None:
    data_file.write_bytes(data_file.read_bytes()[: manifest["files"][0]["bytes"] // 2])


def _empty(data_file: Path, manifest: dict) -> None:
    data_file.write_bytes(b"")


def _overstate_rows(data_file: Path, manifest: dict) -> None:
    manifest["row_count"] += 1
    manifest["files"][0]["rows"] += 1
    (data_file.parent / "_manifest.json").write_text(json.dumps(manifest))


@pytest.mark.integration
@pytest.mark.parametrize(
    ("damage", "error"),
    [
        (_remove, r"incomplete: missing file .*part-00000\.parquet"),
        (_truncate, r"incomplete: .*part-00000\.parquet has \d+ bytes, manifest says \d+"),
        (_empty, r"incomplete: .*part-00000\.parquet has 0 bytes"),
        (_overstate_rows, r"read 3 rows, manifest says 4"),
    ],
    ids=["missing-file", "truncated-file", "zero-byte-file", "row-count-mismatch"],
)
def test_damaged_batch_fails_and_changes_nothing(spark, loaded_lake, damage, error):
    batch_id = f"extract_date=2026-11-22-{damage.__name__.strip('_')}"
    rows = [member_row(n) for n in range(100, 103)]
    manifest_path, manifest = write_batch(loaded_lake.landing, batch_id, rows)
    damage(Path(manifest["files"][0]["path"]), manifest)
    versions = delta_version(spark, loaded_lake.table), delta_version(spark, loaded_lake.quarantine)

    with pytest.raises(BatchError, match=error):
        loaded_lake.run(manifest_path, batch_id)

    assert (delta_version(spark, loaded_lake.table), delta_version(spark, loaded_lake.quarantine)) == versions
    assert not loaded_lake.result_path(batch_id).exists()


@pytest.mark.integration
def test_too_many_quarantined_rows_fail_before_the_merge(spark, loaded_lake):
    batch_id = "extract_date=2026-11-23"
    bad_rows = [member_row(200, email="bad"), member_row(201, registration_date=None)]
    good_rows = [member_row(n) for n in range(202, 206)]
    manifest_path, _ = write_batch(loaded_lake.landing, batch_id, good_rows + bad_rows)
    version = delta_version(spark, loaded_lake.table)

    with pytest.raises(BatchError, match=r"2 of 6 rows quarantined, more than .* 0\.05"):
        loaded_lake.run(manifest_path, batch_id)

    assert delta_version(spark, loaded_lake.table) == version
    assert not loaded_lake.result_path(batch_id).exists()
    quarantined = spark.read.format("delta").load(loaded_lake.quarantine).filter(f"batch_id = '{batch_id}'")
    assert sorted(r["quarantine_reason"] for r in quarantined.collect()) == [
        "invalid_email", "missing_registration_date"
    ]
