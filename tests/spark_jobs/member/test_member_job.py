"""Tests of the member_merge job (lakehouse_jobs.member).

unit: the pure functions on small in-memory DataFrames (and plain Python for the lookups).
integration: `main()` end to end on local files: Parquet batch + manifest in, Delta tables + result out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable
from pyspark.sql import types as T

from include.extract.schema_drift import schema_hash, schema_json
from include.reconcile import ReconciliationError, commit_info, reconcile_batch
from lakehouse_jobs import pii
from lakehouse_jobs.batch import BatchError, read_batch
from lakehouse_jobs.change_hash import row_hashes
from lakehouse_jobs.contracts import MEMBER, ROW_HASH_COLUMN, arrow_schema, spark_schema
from lakehouse_jobs.manifest import BatchManifest
from lakehouse_jobs.member import clean, validate
from lakehouse_jobs.member import job as member_merge
from lakehouse_jobs.member import schema as member_schema
from lakehouse_jobs.results import MemberMergeResult

TODAY = date(2026, 11, 26)
# as Spark reads a batch: file sources make every field nullable, so a job must cope with a null key
SOURCE_ROW_SCHEMA = T.StructType([T.StructField(f.name, f.dataType) for f in spark_schema(MEMBER, landed=True)
                                  if f.name != ROW_HASH_COLUMN])
QUARANTINE_ROW_SCHEMA = T.StructType(
    SOURCE_ROW_SCHEMA.fields + [T.StructField("quarantine_reason", T.StringType())]
)
# split_valid_quarantine's quarantined rows
SPLIT_QUARANTINE_SCHEMA = T.StructType(
    QUARANTINE_ROW_SCHEMA.fields + [T.StructField("quarantine_detail", T.StringType())]
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
        "registration_date_raw": None,  # set only when the source date had no calendar equivalent
    }
    row.update(changes)
    return tuple(row[c] for c in member_schema.SOURCE_COLUMNS)


@pytest.mark.unit
def test_clean_members_normalises_and_keeps_raw_row(spark):
    upper_id = member_id(1).upper()
    raw = spark.createDataFrame(
        [
            (f"  {upper_id} ", " Zoë ", "O'Brien\t", " John.Doe@Example.COM ", "+1-213-948-8645",
             " 1 Main St ", " Springfield ", " United States ", date(2020, 5, 1), None),
            (member_id(2), "李小龍", "😀 Zoe\u0301", None, "(213)948-8645x530", "2 Rue", "Paris",
             "Japan", date(2021, 6, 2), None),
            (member_id(3), "", "   ", "info@xn--h1alffa9f.xn--p1ai", "not a number", None, "\n", "Atlantis",
             None, None),
            (member_id(4), "Ji", "Kim", "kim@", "02-312-3456", None, "Seoul", "Republic of Korea", None, None),
            (member_id(5), "Ji", "Kim", "info@bücher.example", "02-312-3456", None, "Seoul", "Korea", None,
             "0000-00-00"),
        ],
        SOURCE_ROW_SCHEMA,
    )
    expected = spark.createDataFrame(
        [
            (member_id(1), "Zoë", "O'Brien", "John.Doe@example.com", "+1-213-948-8645", "+12139488645",
             "1 Main St", "Springfield", "United States", "US", date(2020, 5, 1)),
            (member_id(2), "李小龍", "😀 Zoe\u0301", None, "(213)948-8645x530", "+12139488645", "2 Rue",
             "Paris", "Japan", "JP", date(2021, 6, 2)),
            (member_id(3), None, None, "info@россия.рф", "not a number", None, None, None, "Atlantis", None,
             None),
            # an invalid address is null here; its reason goes on in _email_error
            (member_id(4), "Ji", "Kim", None, "02-312-3456", "+8223123456", None, "Seoul", "Republic of Korea",
             "KR", None),
            # "Korea" is North or South: no code, so no country to read the Seoul number in
            (member_id(5), "Ji", "Kim", "info@bücher.example", "02-312-3456", None, None, "Seoul", "Korea", None,
             None),
        ],
        T.StructType(
            [T.StructField(c, T.DateType() if c == "registration_date" else T.StringType())
             for c in member_schema.MEMBER_COLUMNS]
        ),
    )

    cleaned = clean.clean_members(raw)

    assert_df_equality(cleaned.select(*member_schema.MEMBER_COLUMNS), expected, ignore_row_order=True)
    assert_df_equality(cleaned.select("_raw.*"), raw, ignore_row_order=True)
    assert {r["member_id"]: r["_email_error"] for r in cleaned.collect()} == {
        member_id(1): None, member_id(2): None, member_id(3): None, member_id(5): None,
        member_id(4): "There must be something after the @-sign.",
    }


@pytest.mark.unit
def test_split_gives_each_bad_row_its_first_reason(spark):
    rows_and_reasons = [
        (member_row(1), None),
        (member_row(2, email=None), None),  # email is optional
        (member_row(3, registration_date=TODAY), None),  # boundary: today is not the future
        (member_row(4, registration_date=date(1900, 1, 1)), None),  # boundary: not too old
        (member_row(5, email="Zoë@Bücher.Example"), None),  # kept once ...
        (member_row(5, email="Zoë@Bücher.Example"), "duplicate_row"),  # ... its exact copy is quarantined
        (member_row(6, member_id=None), "missing_member_id"),
        (member_row(7, member_id="   "), "missing_member_id"),
        (member_row(8, member_id="12345", email="not-an-email"), "invalid_member_id"),
        (member_row(9), "duplicate_member_id"),  # same id, different contents: all copies
        (member_row(9, email="other@example.com"), "duplicate_member_id"),
        (member_row(10, email="no-at-sign.example.com", registration_date=None), "invalid_email"),
        (member_row(11, email="a@b"), "invalid_email"),  # no top-level domain
        (member_row(15, email="a..b@example.com"), "invalid_email"),
        (member_row(12, registration_date=None), "missing_registration_date"),
        # MySQL's zero date and its relatives landed as null, with their text kept
        (member_row(17, registration_date=None, registration_date_raw="0000-00-00"), "invalid_registration_date"),
        (member_row(18, registration_date=None, registration_date_raw="2024-02-30"), "invalid_registration_date"),
        (member_row(13, registration_date=date(2026, 11, 27)), "registration_date_in_future"),
        (member_row(14, registration_date=date(1899, 12, 31)), "registration_date_too_old"),
        (member_row(16, email="info@xn--h1alffa9f.xn--p1ai"), None),  # punycode top-level domain
    ]
    # the reason is a stable code; for invalid_email, the detail is email-validator's message
    details = {
        member_id(10): "An email address must have an @-sign.",
        member_id(11): "The part after the @-sign is not valid. It should have a period.",
        member_id(15): "An email address cannot have two periods in a row.",
        member_id(17): "not a calendar date: 0000-00-00",
        member_id(18): "not a calendar date: 2024-02-30",
    }
    raw = spark.createDataFrame([row for row, _ in rows_and_reasons], SOURCE_ROW_SCHEMA)

    valid, quarantine = validate.split_valid_quarantine(clean.clean_members(raw), TODAY)

    expected_quarantine = spark.createDataFrame(
        [row + (reason, details.get(row[0])) for row, reason in rows_and_reasons if reason],
        SPLIT_QUARANTINE_SCHEMA,
    )
    assert_df_equality(quarantine, expected_quarantine, ignore_row_order=True)
    expected_valid = spark.createDataFrame(
        [(member_id(n), f"member{n}@example.com") for n in (1, 3, 4)]
        + [(member_id(2), None), (member_id(5), "Zoë@bücher.example"), (member_id(16), "info@россия.рф")],
        "member_id string, email string",
    )
    assert_df_equality(
        valid.select("member_id", "email"), expected_valid, ignore_row_order=True, ignore_nullable=True
    )
    assert valid.count() + quarantine.count() == raw.count()


@pytest.mark.unit
def test_read_batch_of_an_empty_extract_without_files(spark):
    manifest = BatchManifest(table="member", batch_id="extract_date=2026-11-26", run_id="t", mode="snapshot",
                             source_query="", row_count=0, schema=[], schema_hash="", files=[], created_at="",
                             extracted_at="")

    batch = read_batch(spark, manifest, MEMBER)

    assert_df_equality(batch, spark.createDataFrame([], spark_schema(MEMBER, landed=True)), ignore_nullable=True)


# --------------------------------------------------------------------------- integration: main()


TEST_HASH_KEY = bytes(range(32))


def landed_table(rows: list[tuple]) -> pa.Table:
    """Rows (SOURCE_COLUMNS order) as the extract lands them: with their ``_row_hash``."""
    read_schema = pa.schema([f for f in arrow_schema(MEMBER, landed=True) if f.name != ROW_HASH_COLUMN])
    table = pa.Table.from_pylist([dict(zip(member_schema.SOURCE_COLUMNS, row)) for row in rows], schema=read_schema)
    digests = row_hashes(table, read_schema.names, MEMBER.effective_rules_version, TEST_HASH_KEY)
    return table.append_column(arrow_schema(MEMBER, landed=True).field(ROW_HASH_COLUMN), digests)


def write_batch(landing: Path, batch_id: str, rows: list[tuple],
                extracted_at: str = "2026-11-26T19:00:00+00:00") -> tuple[str, dict]:
    """Write rows as a Parquet batch plus its manifest, as the extract does: (manifest path, manifest)."""
    batch_dir = landing / "member" / batch_id
    batch_dir.mkdir(parents=True)
    data_file = batch_dir / "part-00000.parquet"
    schema = arrow_schema(MEMBER, landed=True)
    pq.write_table(landed_table(rows), data_file)
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
        "created_at": extracted_at,
        "extracted_at": extracted_at,
    }
    manifest_path = batch_dir / "_manifest.json"
    manifest_path.write_text(json.dumps(manifest))
    return str(manifest_path), manifest


class Lake:
    """The job's output locations under one temporary directory."""

    def __init__(self, root: Path):
        self.landing = root / "landing"
        self.root = root / "lakehouse" / "delta"
        self.table = str(self.root / "member")
        self.dim = str(self.root / "dim_member")
        self.quarantine = str(self.root / "member_quarantine")
        self.results = root / "lakehouse" / "_results"

    def result_path(self, batch_id: str) -> Path:
        return self.results / f"{batch_id}.json"

    def run(self, manifest_path: str, batch_id: str, *options: str, spark=None) -> dict:
        return member_merge.main([
            "--manifest", manifest_path,
            "--tables-root", str(self.root),
            "--result-path", str(self.result_path(batch_id)),
            *options,
        ], spark=spark).to_dict()

    def reconcile(self, manifest_path: str, result: dict) -> dict:
        """What the DAG's reconcile task does, on local files: manifest + result + the commits' log entries."""
        def commit(path: str, version: int | None) -> dict | None:
            if version is None:
                return None
            return commit_info((Path(path) / "_delta_log" / f"{version:020d}.json").read_text())

        manifest = BatchManifest.from_json(Path(manifest_path).read_text())
        typed = MemberMergeResult.from_dict(result)
        return reconcile_batch(manifest, typed, commit(self.table, typed.delta_version),
                               commit(self.dim, typed.dim_member_version))


def delta_version(spark, path: str) -> int:
    return DeltaTable.forPath(spark, path).history(1).first()["version"]


def last_merge_metrics(spark, path: str) -> dict[str, int]:
    last = DeltaTable.forPath(spark, path).history(1).first()
    assert last["operation"] == "MERGE"
    keys = ("numTargetRowsInserted", "numTargetRowsUpdated", "numTargetRowsDeleted")
    return {k: int(last["operationMetrics"][k]) for k in keys}


def decrypted(spark, path: str, *columns: str):
    """The Delta table at `path` with each `<column>_enc` decrypted back into `<column>` (the session's keys)."""
    df = pii.with_keys(spark, spark.read.format("delta").load(path), pii.PiiKeys.from_env())
    for c in columns:
        df = df.withColumn(c, pii.decrypt(f"{c}_enc")).drop(f"{c}_enc")
    return pii.drop_keys(df)


DIRECT = member_schema.DIRECT_COLUMNS  # first_name, last_name, email, phone_number, phone_e164, address
BATCH_1 = "extract_date=2026-11-20"
BATCH_2 = "extract_date=2026-11-21"
AT_1 = "2026-11-20T19:00:00+00:00"
AT_2 = "2026-11-21T19:00:00+00:00"
GOOD_ROWS = [member_row(n) for n in range(20)]
BAD_ROW = member_row(99, email="not-an-email")


def ts(iso: str) -> datetime:
    """A UTC ISO timestamp as Spark returns TIMESTAMP values to Python (naive, in the session's UTC)."""
    return datetime.fromisoformat(iso).astimezone(timezone.utc).replace(tzinfo=None)


@pytest.mark.integration
def test_first_run_then_rerun_of_the_same_batch(spark, tmp_path):
    lake = Lake(tmp_path)
    manifest_path, _ = write_batch(lake.landing, BATCH_1, GOOD_ROWS + [BAD_ROW], AT_1)

    first = lake.run(manifest_path, BATCH_1)

    # every source row is clean: decrypted, the table holds it unchanged (names byte for byte) plus the
    # derived columns
    members = decrypted(spark, lake.table, *DIRECT)
    expected_members = spark.createDataFrame(
        [row[:5] + ("+12139488645",) + row[5:8] + ("JP", row[8], BATCH_1) for row in GOOD_ROWS],
        "member_id string, first_name string, last_name string, email string, phone_number string, "
        "phone_e164 string, address string, city string, country string, country_code string, "
        "registration_date date, _batch_id string",
    )
    assert_df_equality(members.select(*expected_members.columns), expected_members,
                       ignore_row_order=True, ignore_nullable=True, ignore_metadata=True)
    hmac_key = pii.PiiKeys.from_env().hmac_key
    assert {r["member_id"]: r["email_hash"] for r in members.collect()} == {
        row[0]: hmac.new(hmac_key, row[3].lower().encode(), hashlib.sha256).hexdigest() for row in GOOD_ROWS}
    # SCD2: one current version per member, valid from the batch's extraction time
    dim = spark.read.format("delta").load(lake.dim)
    assert sorted(tuple(r) for r in dim.select("valid_from", "valid_to", "is_current").distinct().collect()) == [
        (ts(AT_1), datetime(9999, 12, 31), True)]
    assert dim.count() == 20 and dim.select("member_sk").distinct().count() == 20
    quarantine = decrypted(spark, lake.quarantine, "first_name", "last_name", "email", "phone_number", "address")
    expected_quarantine = spark.createDataFrame(
        [BAD_ROW + ("invalid_email", BATCH_1)],
        T.StructType(QUARANTINE_ROW_SCHEMA.fields + [T.StructField("batch_id", T.StringType())]),
    )
    assert_df_equality(
        quarantine.select(*member_schema.SOURCE_COLUMNS, "quarantine_reason", "batch_id"),
        expected_quarantine,
        ignore_nullable=True, ignore_metadata=True,
    )
    expected_result = {
        "batch_id": BATCH_1, "manifest_rows": 21, "unchanged_rows": 0, "valid_rows": 20, "quarantined_rows": 1,
        "quarantine_reasons": {"invalid_email": 1}, "deleted_rows": 0,
        "merge_source_rows": 20, "rows_before": 0, "rows_after": 20, "rows_absent_from_snapshot": 0,
        "duplicate_keys": 0, "delta_version": delta_version(spark, lake.table),
        "dim_member_version": delta_version(spark, lake.dim), "commit_tag": first["commit_tag"],
        "dim_member_rows": 20, "dim_member_current_rows": 20, "attributes_changed": 0,
        "change_detection": "full snapshot: the batch has no change set (no change state when it was extracted)"}
    assert first == expected_result
    assert json.loads(lake.result_path(BATCH_1).read_text()) == expected_result
    assert lake.reconcile(manifest_path, first)["inserted_rows"] == 20

    versions = {p: delta_version(spark, p) for p in (lake.table, lake.dim)}
    second = lake.run(manifest_path, BATCH_1)

    # an unchanged replay commits nothing to either table: no data file is rewritten
    assert {p: delta_version(spark, p) for p in versions} == versions
    assert second | {"commit_tag": None} == expected_result | {
        "commit_tag": None, "unchanged_rows": 20, "valid_rows": 0, "merge_source_rows": 0, "rows_before": 20,
        "delta_version": None, "dim_member_version": None}
    assert lake.reconcile(manifest_path, second)["updated_rows"] == 0
    assert spark.read.format("delta").load(lake.quarantine).count() == 1  # replaced, not appended


@pytest.mark.integration
def test_a_re_extraction_of_the_same_interval_opens_a_version(spark, tmp_path):
    # the extract re-run for the same day keeps the batch id and takes a later extracted_at: the source
    # changed meanwhile, so dim_member closes the version that batch id wrote earlier (the daily benchmark
    # met this: a day's first load and its 5% change under one batch id)
    lake = Lake(tmp_path)
    lake.run(write_batch(lake.landing, BATCH_1, GOOD_ROWS, AT_1)[0], BATCH_1)
    later = "2026-11-20T23:00:00+00:00"
    changed = [member_row(0, email="changed@example.com")] + GOOD_ROWS[1:]
    manifest, _ = write_batch(tmp_path / "re-extracted", BATCH_1, changed, later)

    result = lake.run(manifest, BATCH_1)

    assert lake.reconcile(manifest, result)["dim_member_versions_opened"] == 1
    versions = spark.read.format("delta").load(lake.dim).where(f"member_id = '{member_id(0)}'")
    assert sorted((r["valid_from"], r["valid_to"], r["is_current"]) for r in versions.collect()) == [
        (ts(AT_1), ts(later), False), (ts(later), datetime(9999, 12, 31), True)]


@pytest.mark.integration
def test_changes_and_deletions_keep_history_and_older_batches_are_refused(spark, tmp_path):
    lake = Lake(tmp_path)
    old_rows = [member_row(n) for n in range(4)]
    new_rows = [member_row(0, email="new@example.com"), member_row(1), member_row(3, address=" 3 Main Street\t"),
                member_row(4)]
    old_manifest, _ = write_batch(lake.landing, BATCH_1, old_rows, AT_1)
    new_manifest, _ = write_batch(lake.landing, BATCH_2, new_rows, AT_2)

    lake.run(old_manifest, BATCH_1)
    # one member of four disappears: above the default 5% guard, so allowed explicitly here
    result = lake.run(new_manifest, BATCH_2, "--max-delete-ratio", "0.5")

    members = decrypted(spark, lake.table, "email").select("member_id", "email", "_batch_id").collect()
    assert {r["member_id"]: (r["email"], r["_batch_id"]) for r in members} == {
        member_id(0): ("new@example.com", BATCH_2),
        member_id(1): ("member1@example.com", BATCH_1),  # unchanged rows keep the batch that wrote them
        # member 3's source row changed only in whitespace: its new source hash is kept, nothing else
        member_id(3): ("member3@example.com", BATCH_2),
        member_id(4): ("member4@example.com", BATCH_2),
    }  # member 2 is absent from the snapshot: deleted
    history = decrypted(spark, lake.dim, "email").select(
        "member_id", "email", "valid_from", "valid_to", "is_current", "_batch_id").collect()
    end = datetime(9999, 12, 31)
    assert sorted(tuple(r) for r in history) == sorted([
        (member_id(0), "member0@example.com", ts(AT_1), ts(AT_2), False, BATCH_1),  # closed ...
        (member_id(0), "new@example.com", ts(AT_2), end, True, BATCH_2),  # ... and replaced
        (member_id(1), "member1@example.com", ts(AT_1), end, True, BATCH_1),
        (member_id(2), "member2@example.com", ts(AT_1), ts(AT_2), False, BATCH_1),  # deleted at the source
        (member_id(3), "member3@example.com", ts(AT_1), end, True, BATCH_1),  # same attributes: no version
        (member_id(4), "member4@example.com", ts(AT_2), end, True, BATCH_2),
    ])
    assert lake.reconcile(new_manifest, result) | {"delta_version": 0, "dim_member_version": 0} == {
        "batch_id": BATCH_2, "landed_rows": 4, "unchanged_rows": 1, "valid_rows": 3, "quarantined_rows": 0,
        "quarantine_reasons": {}, "inserted_rows": 1, "updated_rows": 2, "deleted_rows": 1, "delta_rows": 4,
        "delta_version": 0, "dim_member_versions_opened": 2, "dim_member_versions_closed": 2,
        "dim_member_version": 0, "dim_member_rows": 6, "dim_member_current_rows": 4,
        "change_detection": "full snapshot: the batch has no change set (no change state when it was extracted)"}

    # replaying the older batch now would write history backwards: refused, nothing changes
    versions = {p: delta_version(spark, p) for p in (lake.table, lake.dim)}
    with pytest.raises(BatchError, match=rf"batch {BATCH_1} was extracted at .* before batch {BATCH_2}"):
        lake.run(old_manifest, BATCH_1, "--max-delete-ratio", "0.5")
    assert {p: delta_version(spark, p) for p in versions} == versions


@pytest.mark.integration
def test_deletes_are_guarded_and_quarantined_members_are_kept(spark, tmp_path):
    lake = Lake(tmp_path)
    rows = [member_row(n) for n in range(40)]
    first_manifest, _ = write_batch(lake.landing, BATCH_1, rows, AT_1)
    lake.run(first_manifest, BATCH_1)
    before = delta_version(spark, lake.table), delta_version(spark, lake.dim)

    # a partial source (half the members missing) fails before anything changes
    partial_manifest, _ = write_batch(lake.landing, BATCH_2, rows[:20], AT_2)
    with pytest.raises(BatchError, match=r"would delete 20 of 40 members, more than --max-delete-ratio 0.05"):
        lake.run(partial_manifest, BATCH_2)
    assert (delta_version(spark, lake.table), delta_version(spark, lake.dim)) == before

    # one member gone (2.5%: under the guard), one member's row now quarantined: the first is deleted,
    # the second stays as it was, because a quarantined row is present at the source
    batch_3 = "extract_date=2026-11-22"
    changed = rows[:38] + [member_row(39, email="broken-address")]
    manifest_3, _ = write_batch(lake.landing, batch_3, changed, "2026-11-22T19:00:00+00:00")
    result = lake.run(manifest_3, batch_3)

    ids = {r["member_id"] for r in spark.read.format("delta").load(lake.table).select("member_id").collect()}
    assert member_id(38) not in ids and member_id(39) in ids and len(ids) == 39
    current = spark.read.format("delta").load(lake.dim).where("is_current").select("member_id").collect()
    assert {r["member_id"] for r in current} == ids
    assert lake.reconcile(manifest_3, result) | {"delta_version": 0, "dim_member_version": 0} == {
        "batch_id": batch_3, "landed_rows": 39, "unchanged_rows": 38, "valid_rows": 0, "quarantined_rows": 1,
        "quarantine_reasons": {"invalid_email": 1}, "inserted_rows": 0, "updated_rows": 0, "deleted_rows": 1,
        "delta_rows": 39, "delta_version": 0, "dim_member_versions_opened": 0, "dim_member_versions_closed": 1,
        "dim_member_version": 0, "dim_member_rows": 40, "dim_member_current_rows": 39,
        "change_detection": "full snapshot: the batch has no change set (no change state when it was extracted)"}


@pytest.mark.integration
def test_reconciliation_fails_when_the_result_does_not_match_the_commit(spark, tmp_path):
    lake = Lake(tmp_path)
    manifest_path, _ = write_batch(lake.landing, BATCH_1, GOOD_ROWS, AT_1)
    result = lake.run(manifest_path, BATCH_1)
    # out of band: someone deletes a member, then the result is pointed at that commit
    DeltaTable.forPath(spark, lake.table).delete(f"member_id = '{member_id(0)}'")
    tampered = result | {"delta_version": delta_version(spark, lake.table)}
    with pytest.raises(ReconciliationError, match=r"member version \d+ is a DELETE tagged None, not this job.s MERGE"):
        lake.reconcile(manifest_path, tampered)
    # counts that the commit does not back up
    with pytest.raises(ReconciliationError, match=r"table rows 0 -> 21, but the commit inserted 20"):
        lake.reconcile(manifest_path, result | {"rows_after": 21})
    with pytest.raises(ReconciliationError, match="merged 20 source rows, the job says 19"):
        lake.reconcile(manifest_path, result | {"merge_source_rows": 19})
    with pytest.raises(ReconciliationError, match=r"unchanged 1 \+ valid 20 \+ quarantined 0 != landed 20"):
        lake.reconcile(manifest_path, result | {"unchanged_rows": 1})
    # out of band: a copy of a member appended; the next run must not reconcile
    table = spark.read.format("delta").load(lake.table)
    table.where(f"member_id = '{member_id(1)}'").write.format("delta").mode("append").save(lake.table)
    rerun = lake.run(manifest_path, BATCH_1)
    with pytest.raises(ReconciliationError, match="1 member ids appear more than once"):
        lake.reconcile(manifest_path, rerun)


@pytest.fixture(scope="module")
def loaded_lake(spark, tmp_path_factory) -> Lake:
    """A lake after one successful run; tests using it must leave the member table unchanged."""
    lake = Lake(tmp_path_factory.mktemp("loaded"))
    manifest_path, _ = write_batch(lake.landing, BATCH_1, GOOD_ROWS, AT_1)
    lake.run(manifest_path, BATCH_1)
    return lake


def _remove(data_file: Path, manifest: dict) -> None:
    data_file.unlink()


def _truncate(data_file: Path, manifest: dict) -> None:
    data_file.write_bytes(data_file.read_bytes()[: manifest["files"][0]["bytes"] // 2])


def _empty(data_file: Path, manifest: dict) -> None:
    data_file.write_bytes(b"")


def _alter_a_byte(data_file: Path, manifest: dict) -> None:
    # the same size, one bit flipped (bit rot, a botched copy): only the digest tells
    data = bytearray(data_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    data_file.write_bytes(bytes(data))


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
        (_alter_a_byte, r"not what was extracted: .*part-00000\.parquet has SHA-256 [0-9a-f]{64}, manifest says"),
        (_overstate_rows, r"read 3 rows, manifest says 4"),
    ],
    ids=["missing-file", "truncated-file", "zero-byte-file", "altered-byte", "row-count-mismatch"],
)
def test_damaged_batch_fails_and_changes_nothing(spark, loaded_lake, damage, error):
    batch_id = f"extract_date=2026-11-22-{damage.__name__.strip('_')}"
    rows = [member_row(n) for n in range(100, 103)]
    manifest_path, manifest = write_batch(loaded_lake.landing, batch_id, rows, AT_2)
    damage(Path(manifest["files"][0]["path"]), manifest)
    versions = [delta_version(spark, p) for p in (loaded_lake.table, loaded_lake.dim, loaded_lake.quarantine)]

    with pytest.raises(BatchError, match=error):
        loaded_lake.run(manifest_path, batch_id)

    assert [delta_version(spark, p) for p in (loaded_lake.table, loaded_lake.dim, loaded_lake.quarantine)] == versions
    assert not loaded_lake.result_path(batch_id).exists()


@pytest.mark.integration
def test_too_many_quarantined_rows_fail_before_the_merge(spark, loaded_lake):
    batch_id = "extract_date=2026-11-23"
    bad_rows = [member_row(200, email="bad"), member_row(201, registration_date=None)]
    manifest_path, _ = write_batch(loaded_lake.landing, batch_id, GOOD_ROWS + bad_rows, AT_2)
    versions = delta_version(spark, loaded_lake.table), delta_version(spark, loaded_lake.dim)

    with pytest.raises(BatchError, match=r"2 of 22 rows quarantined, more than .* 0\.05"):
        loaded_lake.run(manifest_path, batch_id)

    assert (delta_version(spark, loaded_lake.table), delta_version(spark, loaded_lake.dim)) == versions
    assert not loaded_lake.result_path(batch_id).exists()
    quarantined = spark.read.format("delta").load(loaded_lake.quarantine).filter(f"batch_id = '{batch_id}'")
    assert sorted(r["quarantine_reason"] for r in quarantined.collect()) == [
        "invalid_email", "missing_registration_date"
    ]
