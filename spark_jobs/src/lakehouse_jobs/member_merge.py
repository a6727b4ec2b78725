"""Apply one published `member` batch to the Delta tables `member` (current state) and `dim_member` (SCD2).

Entry point `member_merge` of the jobs wheel: a Databricks `python_wheel_task`, run the same way by the
local runner (spark_jobs/README.md).

Steps, each a function below:
1. ``read_manifest`` / ``read_batch``: the batch's ``_manifest.json`` (docs/conventions.md) and exactly the
   files it names, checked against it (sizes, row count).
2. ``check_order``: refuse a batch extracted before the last one applied (history only moves forward).
3. ``plan_changes``: compare a keyed hash of each source row (lakehouse_jobs.pii.row_hash, over the row as
   landed and RULES_VERSION) with the hash the member table kept, per member_id: unchanged rows go no
   further; new, changed and duplicated keys are the candidates; with a snapshot, members absent from it
   are deletions. The per-row Python work (email, phone, country) therefore runs on what changed.
4. ``clean_members`` and ``split_valid_quarantine`` on the candidates: normalise the rows (rules below)
   and give each bad row the first quarantine reason that applies.
5. ``write_quarantine``: replace this batch's rows in the quarantine table, direct identifiers encrypted.
6. Fail (BatchError, tables unchanged) when the quarantined share exceeds ``--max-quarantine-ratio`` or a
   snapshot would delete more than ``--max-delete-ratio`` of the table.
7. ``protect``: email_hash, attribute_hash, and direct identifiers encrypted (lakehouse_jobs.pii).
8. ``merge_dim_member``: SCD type 2. A member whose standardised attributes changed gets its current row
   closed at the batch's extraction time and a new current row; a new member gets its first row; a member
   deleted at the source gets its current row closed. Runs before the member table's MERGE, so that a
   retry after a failure between the two finds the change again (it is detected against the member table).
9. ``merge_members``: the current-state table, upserts and deletions on member_id. Nothing is committed
   when nothing changed, so an unchanged replay writes no file.
10. ``record_batch`` in member_batches, then ``write_result``: counts for the DAG's reconciliation
   (manifest_rows = unchanged_rows + valid_rows + quarantined_rows), written last.

Cleaning rules:
- All strings: leading/trailing whitespace trimmed; blank -> null. Nothing else is changed, so names in
  any script (CJK, emoji, combining accents) keep their exact bytes.
- member_id: lower-cased, because UUID text is case-insensitive and the key must have one spelling.
- email: email-validator's normalised form (standardise.email_to_normalised: domain lower-cased and in
  Unicode, the local part's case kept but for role names like info@), internationalised addresses
  included. Null is allowed (the column is nullable); a non-null address the library rejects
  quarantines the row.
- country_code (new column): ISO 3166-1 alpha-2 code, or XK for Kosovo, resolved exactly
  (standardise.country_to_code), else null; the raw ``country`` is always kept.
- phone_e164 (new column): the phone number in E.164 (standardise.phone_to_e164: read in the member's
  exactly resolved country and as a US number; null when valid in neither or when the two readings
  differ), else null; the raw ``phone_number`` is kept. An unknown country or phone number is not a
  quarantine reason.

Quarantine reasons, in the order checked (a row gets the first that applies):
missing_member_id, invalid_member_id (not a UUID), duplicate_member_id (the id appears with different
contents more than once in the batch: every copy is quarantined), duplicate_row (an extra exact copy of
a row that is kept once), invalid_email, invalid_registration_date (the source held a date with no
calendar equivalent, such as MySQL's 0000-00-00: it landed as null with its text in
registration_date_raw), missing_registration_date, registration_date_in_future (after the run's UTC
date), registration_date_too_old (before 1900-01-01).
Quarantine rows keep the source columns as read (direct identifiers encrypted), plus quarantine_reason
(one of the codes above), quarantine_detail (for invalid_email, email-validator's message with the
address's own parts replaced by placeholders, such as "An email address must have an @-sign."; for
invalid_registration_date, the source text; else null), batch_id, quarantined_at.

Tables (declared in lakehouse_jobs.tables, created on first use) live under ``--tables-root``:
member, dim_member, member_quarantine and member_batches.
"""

from __future__ import annotations

import argparse
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, Observation, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.storagelevel import StorageLevel

from lakehouse_jobs import hadoop_fs, pii, standardise
from lakehouse_jobs.batch import BatchError, read_batch, read_manifest
from lakehouse_jobs.contracts import MEMBER, spark_schema
from lakehouse_jobs.delta import ensure_table, retry_on_conflict, tagged_commit
from lakehouse_jobs.quality import (
    OLDEST_REGISTRATION_DATE,
    UUID_PATTERN,
    first_reason,
    split_by_reason,
    trimmed,
)
from lakehouse_jobs.steps import materialise, timed
from lakehouse_jobs.tables import (
    DIM_MEMBER,
    MEMBER_ATTRIBUTES,
    MEMBER_BATCHES,
    MEMBER_QUARANTINE,
    MEMBER_TABLE,
    OPEN_END,
    TableSpec,
    encrypted_name,
)

log = logging.getLogger(__name__)

# the columns of a landed batch: the contract's, then registration_date_raw (the source text of a date
# with no calendar equivalent, which landed as null; see lakehouse_jobs.contracts.raw_columns)
SOURCE_COLUMNS = spark_schema(MEMBER, landed=True).fieldNames()
# the standardised member columns, in plaintext, as clean_members produces them; protect() turns the direct
# identifiers among them into ciphertext (tables.MEMBER_ATTRIBUTES)
MEMBER_COLUMNS = ["member_id"] + [f.name.removesuffix("_enc") for f in MEMBER_ATTRIBUTES]
DIRECT_COLUMNS = [f.name.removesuffix("_enc") for f in MEMBER_ATTRIBUTES if f.pii == "direct"]
# Part of every row hash: change it when a cleaning or validation rule changes, and the next batch
# reprocesses every row instead of keeping what the old rules made of unchanged source rows.
RULES_VERSION = "member-rules-1"


# -------------------------------------------------------------------------------------------- clean


def clean_members(df: DataFrame) -> DataFrame:
    """Normalised member rows (module docstring): MEMBER_COLUMNS, plus ``_raw``, the source row as read, for
    quarantine, and ``_email_error``, email-validator's reason when the address is invalid (``email`` is
    then null), else null. A ``source_hash`` column of `df` is carried along."""
    carried = [c for c in ("source_hash",) if c in df.columns]
    df = df.select(*SOURCE_COLUMNS, *carried)
    # wrapped here rather than at import: pandas_udf() needs a SparkSession, which workers lack
    country_code_udf = F.pandas_udf(standardise.country_codes, "string")
    phone_e164_udf = F.pandas_udf(standardise.phones_e164, "string")
    email_udf = F.pandas_udf(standardise.emails_normalised, standardise.EMAIL_RESULT_TYPE)
    cleaned = df.select(
        F.struct(*SOURCE_COLUMNS).alias("_raw"),
        *[trimmed(c).alias(c) for c in MEMBER.column_names if c != "registration_date"],
        "registration_date",
        *carried,
    ).withColumn("member_id", F.lower("member_id"))
    # A batch names a few hundred countries: each is resolved once, and the codes reach the rows by a join
    # with that small table, broadcast, instead of a Python call per row.
    lookup = materialise(cleaned.where(F.col("country").isNotNull()).select("country").distinct()
                         .withColumn("country_code", country_code_udf("country")))
    if lookup.count() <= COUNTRY_LOOKUP_BROADCAST_ROWS:
        lookup = F.broadcast(lookup)
    cleaned = (
        cleaned.join(lookup, "country", "left")
        .withColumn("_email", email_udf("email"))
        .withColumn("phone_e164", phone_e164_udf("phone_number", "country_code"))
    )
    return cleaned.select(
        *[F.col("_email.email").alias("email") if c == "email" else c for c in MEMBER_COLUMNS],
        "_raw",
        F.col("_email.error").alias("_email_error"),
        *carried,
    )


# Up to this many member ids (~40 MB as strings) are shipped to every task (broadcast) rather than shuffled.
BROADCAST_KEYS_MAX = 1_000_000
# a garbled source could name millions of "countries"; past this the lookup is joined without broadcasting
COUNTRY_LOOKUP_BROADCAST_ROWS = 100_000


# ----------------------------------------------------------------------------------------- validate


def split_valid_quarantine(df: DataFrame, today: date) -> tuple[DataFrame, DataFrame]:
    """(valid rows: MEMBER_COLUMNS (+ source_hash when `df` has it), quarantined rows: raw SOURCE_COLUMNS +
    quarantine_reason + quarantine_detail).

    `df` is clean_members' output; `today` bounds registration_date. Duplicates are found among the rows of
    `df`, so every row of a member_id must be in it (plan_changes makes every copy a candidate).
    """
    return split_flagged(flag_rows(df, today))


def flag_rows(df: DataFrame, today: date) -> DataFrame:
    """clean_members' rows with ``quarantine_reason``, the first rule each fails (null when valid);
    split_flagged separates them. Two window shuffles: worth materialising before several reads."""
    carried = [c for c in ("source_hash",) if c in df.columns]
    df = df.select(*MEMBER_COLUMNS, "_raw", "_email_error", *carried)
    # copies of one raw row are interchangeable, so which copy gets number 1 does not matter
    copy_number = F.row_number().over(Window.partitionBy("_raw").orderBy("member_id"))
    flagged = df.withColumn("_copy", copy_number).withColumn(
        # distinct contents per member_id: more than one means the batch contradicts itself
        "_versions",
        F.sum((F.col("_copy") == 1).cast("int")).over(Window.partitionBy("member_id")),
    )
    flagged = flagged.withColumn("quarantine_reason", first_reason(
        (F.col("member_id").isNull(), "missing_member_id"),
        (~F.col("member_id").rlike(UUID_PATTERN), "invalid_member_id"),
        (F.col("_versions") > 1, "duplicate_member_id"),
        (F.col("_copy") > 1, "duplicate_row"),
        (F.col("_email_error").isNotNull(), "invalid_email"),
        (F.col("registration_date").isNull() & F.col("_raw.registration_date_raw").isNotNull(),
         "invalid_registration_date"),
        (F.col("registration_date").isNull(), "missing_registration_date"),
        (F.col("registration_date") > F.lit(today), "registration_date_in_future"),
        (F.col("registration_date") < F.lit(OLDEST_REGISTRATION_DATE), "registration_date_too_old"),
    ))
    return flagged.drop("_copy", "_versions")


def split_flagged(flagged: DataFrame) -> tuple[DataFrame, DataFrame]:
    """flag_rows' rows as split_valid_quarantine returns them."""
    carried = [c for c in ("source_hash",) if c in flagged.columns]
    valid, quarantined = split_by_reason(flagged, "quarantine_reason")
    return valid.select(*MEMBER_COLUMNS, *carried), quarantined.select(
        *[F.col(f"_raw.{c}").alias(c) for c in SOURCE_COLUMNS],
        "quarantine_reason",
        # the reason is a stable code to group by; the library's message says what exactly is wrong
        F.when(F.col("quarantine_reason") == "invalid_email", F.col("_email_error"))
        .when(F.col("quarantine_reason") == "invalid_registration_date",
              F.concat(F.lit("not a calendar date: "), F.col("_raw.registration_date_raw")))
        .alias("quarantine_detail"),
    )


# ------------------------------------------------------------------------------------ change detection


def source_key(column: str = "member_id") -> Column:
    """The member_id as the tables spell it (trimmed, lower case), for comparing a raw row with them."""
    return F.lower(trimmed(column))


def hash_source(df: DataFrame) -> DataFrame:
    """`df` (a batch's rows, with pii.with_keys' columns) plus ``source_hash``: the keyed hash of the row
    as landed and RULES_VERSION."""
    return df.withColumn("source_hash", pii.row_hash(*SOURCE_COLUMNS, version=RULES_VERSION))


@dataclass
class ChangePlan:
    """What a batch changes, by member_id, before any per-row work.

    statuses: one row per key (``_key``) of the batch or the table that needs work, with ``_status``: new,
    changed, duplicate (the key is on more than one source row) or deleted (in the table, absent from a
    snapshot), ``_rows`` (source rows with that key) and ``_table_rows``; unchanged keys are only counted.
    batch_keys: every key of the batch (lazy: read again only where needed). counts: source rows per
    status, and for deleted the table rows.
    """

    statuses: DataFrame
    batch_keys: DataFrame
    counts: dict[str, int]
    table_version: int  # the member table's version the comparison read
    table_rows: int  # rows of the member table the comparison saw (all of them for a snapshot)
    table_duplicate_keys: int  # rows beyond the first of a key held more than once (a broken table; must be 0)

    def candidates(self, batch: DataFrame) -> DataFrame:
        """The batch's rows that need cleaning and validation: every row of a new, changed or duplicated
        key, and every row without a usable key (those are quarantined)."""
        keys = self.statuses.where(F.col("_status").isin("new", "changed", "duplicate")).select("_key")
        if self.counts.get("unchanged", 0) == 0:  # a first load: no comparison can spare a row
            return batch
        small = sum(self.counts.get(s, 0) for s in ("new", "changed", "duplicate")) <= BROADCAST_KEYS_MAX
        # a daily change is a few percent of the table: shipping its keys to every task beats a shuffle
        keys = F.broadcast(keys) if small else keys
        keyed = batch.withColumn("_key", source_key())
        return keyed.join(keys, keyed["_key"].eqNullSafe(keys["_key"]), "left_semi").drop("_key")

    def deleted_keys(self) -> DataFrame:
        return self.statuses.where(F.col("_status") == "deleted").select(F.col("_key").alias("member_id"))


STATUSES = ("new", "changed", "unchanged", "duplicate", "deleted")


def plan_changes(batch_hashes: DataFrame, table: DataFrame, table_version: int, snapshot: bool) -> ChangePlan:
    """Compare the batch (``member_id`` as landed, ``source_hash``) with the member table (``member_id``,
    ``source_hash``): see ChangePlan. With `snapshot`, a table key absent from the batch is a deletion;
    an incremental batch deletes nothing.

    One pass: both sides are aggregated per key (the join reuses that partitioning, so each side is
    shuffled once), the counts are observed on the way (Spark's Observation), and only the keys that need
    work are kept, on disk: at 5% changed, a twentieth of the table.
    """
    per_key = batch_hashes.groupBy(source_key().alias("_key")).agg(
        F.count(F.lit(1)).alias("_rows"), F.min("source_hash").alias("_hash"))
    current = table.groupBy(F.col("member_id").alias("_key")).agg(
        F.count(F.lit(1)).alias("_table_rows"), F.min("source_hash").alias("_table_hash"))
    joined = per_key.join(current, "_key", "full_outer" if snapshot else "left")
    statuses = joined.select(
        "_key",
        F.coalesce("_rows", F.lit(0)).alias("_rows"),
        F.coalesce("_table_rows", F.lit(0)).alias("_table_rows"),
        F.when(F.col("_rows").isNull(), "deleted")
        .when(F.col("_key").isNull(), "new")  # rows without a key: quarantined as missing_member_id
        .when(F.col("_rows") > 1, "duplicate")
        .when(F.col("_table_hash").isNull(), "new")
        .when(F.col("_hash") == F.col("_table_hash"), "unchanged")
        .otherwise("changed").alias("_status"),
    )
    observation = Observation(f"plan_changes_{uuid.uuid4().hex}")  # unique: jobs may share a session
    statuses = statuses.observe(
        observation,
        *[F.sum(F.when(F.col("_status") == s, F.col("_table_rows" if s == "deleted" else "_rows"))
                .otherwise(0)).alias(s) for s in STATUSES],
        F.sum("_table_rows").alias("_table_rows"),
        F.sum(F.greatest(F.col("_table_rows") - 1, F.lit(0))).alias("_table_duplicate_keys"),
    )
    statuses = materialise(statuses.where(F.col("_status") != "unchanged"))
    observed = {k: int(v or 0) for k, v in observation.get.items()}
    counts = {s: observed[s] for s in STATUSES if observed[s]}
    return ChangePlan(statuses, batch_hashes.select(source_key().alias("_key")), counts, table_version,
                      observed["_table_rows"], observed["_table_duplicate_keys"])


# ------------------------------------------------------------------------------------------ protect


def protect(df: DataFrame) -> DataFrame:
    """Valid standardised rows (MEMBER_COLUMNS + source_hash, with pii.with_keys' columns) as the analytics
    tables store them: member_id, email_hash, tables.MEMBER_ATTRIBUTES (direct identifiers encrypted),
    attribute_hash, source_hash."""
    return df.select(
        "member_id",
        # the join key: case-insensitive, as mailbox providers treat local parts in practice
        pii.keyed_hash(F.lower("email")).alias("email_hash"),
        *[pii.encrypt(c).alias(encrypted_name(c)) if c in DIRECT_COLUMNS else F.col(c) for c in MEMBER_COLUMNS[1:]],
        pii.row_hash(*MEMBER_COLUMNS[1:], version=RULES_VERSION).alias("attribute_hash"),
        "source_hash",
    )


def protect_quarantine(df: DataFrame) -> DataFrame:
    """split_valid_quarantine's quarantined rows (with pii.with_keys' columns) as member_quarantine stores
    them: the source's direct identifiers encrypted."""
    direct = {c.name for c in MEMBER.columns if c.pii == "direct"}
    return df.select(
        *[pii.encrypt(c).alias(encrypted_name(c)) if c in direct else F.col(c) for c in SOURCE_COLUMNS],
        "quarantine_reason", "quarantine_detail",
    )


# -------------------------------------------------------------------------------------------- write


def write_quarantine(spark: SparkSession, rows: DataFrame, path: str, batch_id: str) -> None:
    """Replace this batch's rows in member_quarantine with `rows` (protect_quarantine's output; an empty
    DataFrame clears them)."""
    rows = rows.select(
        *[c for c in MEMBER_QUARANTINE.column_names if c not in ("batch_id", "quarantined_at")],
        F.lit(batch_id).alias("batch_id"),
        F.current_timestamp().alias("quarantined_at"),
    )

    def replace_batch() -> None:
        ensure_table(spark, MEMBER_QUARANTINE, path)
        # safe: BatchManifest checked batch_id against BATCH_ID_PATTERN
        rows.write.format("delta").mode("overwrite").option("replaceWhere", f"batch_id = '{batch_id}'").save(path)

    retry_on_conflict(replace_batch, f"quarantine write {path}")


def check_order(spark: SparkSession, batches_path: str, batch_id: str, extracted_at: datetime) -> None:
    """Raise BatchError when a batch extracted after this one has already been applied: its history would
    be written out of order (a replay of the same batch, or of one extracted at the same time, passes)."""
    ensure_table(spark, MEMBER_BATCHES, batches_path)
    newer = (
        spark.read.format("delta").load(batches_path)
        .where((F.col("extracted_at") > F.lit(extracted_at)) & (F.col("batch_id") != batch_id))
        .orderBy(F.col("extracted_at").desc()).select("batch_id", "extracted_at").first()
    )
    if newer is not None:
        raise BatchError(
            f"batch {batch_id} was extracted at {extracted_at.isoformat()}, before batch {newer['batch_id']} "
            f"(extracted at {newer['extracted_at'].isoformat()}) which is already applied: dim_member's history "
            "only moves forward. Extract again (a new snapshot is newer than both), or rebuild dim_member. "
            "The tables were not changed."
        )


def merge_dim_member(spark: SparkSession, changes: DataFrame, deleted: DataFrame, path: str, batch_id: str,
                     extracted_at: datetime, commit_tag: str) -> int | None:
    """SCD type 2 MERGE into dim_member (module docstring, step 8); the version it committed, or None
    when no member's attributes changed (nothing is committed).

    changes: protect()'s rows of new and changed members. deleted: ``member_id`` of members deleted at
    the source. Versions are compared on attribute_hash, never on ciphertext.
    """
    ensure_table(spark, DIM_MEMBER, path)
    attributes = [c for c in DIM_MEMBER.column_names if c in changes.columns]
    changes_are_small = changes.count() + deleted.count() <= BROADCAST_KEYS_MAX
    at = F.lit(extracted_at).cast("timestamp")
    values = {c: f"s.{c}" for c in attributes} | {
        "valid_from": at, "valid_to": F.lit(OPEN_END).cast("timestamp"), "is_current": F.lit(True),
        "_batch_id": F.lit(batch_id), "_updated_at": F.current_timestamp(),
    }

    def merge() -> int | None:
        # decided against the table as it is now, on every attempt: after a conflict, a concurrent run of
        # the same batch may have applied these changes already, and they must not be applied twice
        current = (
            spark.read.format("delta").load(path).where("is_current")
            .select("member_id", F.col("attribute_hash").alias("_current_hash"))
        )
        # only the current versions of the members this batch touches: a daily change is a few percent of
        # the table, so its ids go to every task (broadcast) instead of shuffling the whole table to meet them
        touched = changes.select("member_id").unionByName(deleted.select("member_id"))
        current = current.join(F.broadcast(touched) if changes_are_small else touched, "member_id", "left_semi")
        changed = (
            changes.join(current, "member_id", "left")
            .where(F.col("_current_hash").isNull() | (F.col("_current_hash") != F.col("attribute_hash")))
        )
        # an SCD2 MERGE of two rows per changed member: one closes the current version, one inserts the new
        # one (Delta Lake docs, "slowly changing data (SCD) Type 2 operation into Delta tables"). The rows
        # above were planned against the table as it was; the MERGE runs against the table as it is when it
        # starts, and a concurrent run of this batch may have committed in between. So the ON clause checks
        # again: an insert matches (and is then skipped) a current version this extraction wrote (this
        # batch id and extracted_at: a re-extraction of the same interval keeps the id), a close matches any
        # other. Each current version meets at most one row. A version another extraction wrote at the same
        # time or later is closed, and the CHECK valid_from < valid_to fails the run loudly.
        closes = changed.where(F.col("_current_hash").isNotNull()).select("member_id").unionByName(
            deleted.select("member_id").join(current, "member_id", "left_semi"))
        source = closes.select(
            "member_id", F.lit("close").alias("_op"),
            *[F.lit(None).cast(DIM_MEMBER_TYPES[c]).alias(c) for c in attributes if c != "member_id"],
        ).unionByName(changed.select(F.lit("insert").alias("_op"), *attributes))
        # once: the emptiness check and the MERGE would each join the changes with every current version
        source = materialise(source)
        if source.isEmpty():
            return None
        written_by_this_extraction = (F.col("t._batch_id") == batch_id) & (F.col("t.valid_from") == at)
        builder = (
            DeltaTable.forPath(spark, path).alias("t")
            .merge(source.alias("s"), F.expr("t.member_id = s.member_id AND t.is_current")
                   & F.when(F.col("s._op") == "close", ~written_by_this_extraction)
                       .otherwise(written_by_this_extraction))
            .whenMatchedUpdate(condition="s._op = 'close'", set={
                "valid_to": at, "is_current": F.lit(False), "_updated_at": F.current_timestamp()})
            .whenNotMatchedInsert(condition="s._op = 'insert'", values=values)
        )
        return tagged_commit(spark, builder, path, commit_tag)

    return retry_on_conflict(merge, f"MERGE into {path}")


def merge_members(spark: SparkSession, changes: DataFrame, deleted: DataFrame, path: str, batch_id: str,
                  commit_tag: str) -> tuple[int | None, int]:
    """MERGE into the member table (module docstring, step 9): (the version it committed or None when the
    source is empty, the source's rows).

    changes: protect()'s rows of new and changed members, upserted on member_id (a matched row is updated
    only when its source_hash differs). deleted: ``member_id`` of members to delete.
    """
    ensure_table(spark, MEMBER_TABLE, path)
    upserts = changes.select(*changes.columns, F.lit("upsert").alias("_op"))
    deletes = deleted.select(
        "member_id", *[F.lit(None).cast(MEMBER_TYPES[c]).alias(c) for c in changes.columns if c != "member_id"],
        F.lit("delete").alias("_op"))
    source = upserts.unionByName(deletes).persist(StorageLevel.DISK_ONLY)
    try:
        source_rows = source.count()
        if source_rows == 0:
            return None, 0
        values = {c: f"s.{c}" for c in changes.columns} | {
            "_batch_id": F.lit(batch_id), "_updated_at": F.current_timestamp()}

        def merge() -> int:
            builder = (
                DeltaTable.forPath(spark, path).alias("t")
                .merge(source.alias("s"), "t.member_id = s.member_id")
                .whenMatchedDelete(condition="s._op = 'delete'")
                .whenMatchedUpdate(condition="s._op = 'upsert' AND t.source_hash <> s.source_hash", set=values)
                .whenNotMatchedInsert(condition="s._op = 'upsert'", values=values)
            )
            return tagged_commit(spark, builder, path, commit_tag)

        return retry_on_conflict(merge, f"MERGE into {path}"), source_rows
    finally:
        source.unpersist()


def _types(spec: TableSpec) -> dict[str, str]:
    return {f.name: f.type for f in spec.fields}


MEMBER_TYPES = _types(MEMBER_TABLE)
DIM_MEMBER_TYPES = _types(DIM_MEMBER)


def table_facts(spark: SparkSession, table_path: str, version: int | None, plan: ChangePlan,
                snapshot: bool) -> dict[str, int]:
    """What the member table looks like around the job's commit: rows just before and at `version`, member
    ids held more than once (must be 0), and after a snapshot, rows whose member is absent from it (must be 0).

    When `version` is None (nothing committed) or the very next version after the one the plan compared
    (nobody else committed in between), the facts need no scan of the table: the plan's comparison saw one
    row per table row and batch key, and the commit's own metrics say what it deleted. Its source holds each
    member id once (validation quarantines duplicated ids, and a deleted id is absent from the batch) and a
    MERGE inserts only ids it did not match, so it cannot add a duplicate. The row count at `version` comes
    from the Delta log's statistics, and the DAG's reconciliation checks it against the commit's metrics.
    Otherwise (a concurrent writer) the table is read back in full.
    """
    history = DeltaTable.forPath(spark, table_path).history(20).select("version", "operationMetrics").collect()
    if version is None and snapshot and history[0]["version"] == plan.table_version:
        return {"rows_before": plan.table_rows, "rows_after": plan.table_rows,
                "duplicate_keys": plan.table_duplicate_keys,
                "rows_absent_from_snapshot": plan.counts.get("deleted", 0)}

    def at(v: int | None) -> DataFrame:
        reader = spark.read.format("delta")
        return (reader if v is None else reader.option("versionAsOf", v)).load(table_path)

    ours = next((h["operationMetrics"] for h in history if h["version"] == version), None)
    if version == plan.table_version + 1 and ours is not None:  # never true for None
        facts = {"rows_before": plan.table_rows, "rows_after": at(version).count(),
                 "duplicate_keys": plan.table_duplicate_keys}
        if snapshot:
            facts["rows_absent_from_snapshot"] = plan.counts.get("deleted", 0) - int(ours["numTargetRowsDeleted"])
        return facts

    after = at(version)
    rows_after = after.count()
    facts = {
        "rows_before": rows_after if version is None else at(version - 1).count() if version > 0 else 0,
        "rows_after": rows_after,
        # a key twice (a write around the MERGE, out of band) is a broken table, whatever the counts say
        "duplicate_keys": after.groupBy("member_id").count().where("count > 1").count(),
    }
    if snapshot:
        keys = plan.batch_keys
        facts["rows_absent_from_snapshot"] = after.join(keys, after["member_id"] == keys["_key"], "left_anti").count()
    return facts


def record_batch(spark: SparkSession, path: str, batch_id: str, extracted_at: datetime, result: dict) -> None:
    """Upsert the batch's row in member_batches (check_order reads it)."""
    row = spark.createDataFrame(
        [(batch_id, extracted_at, datetime.now(timezone.utc), result["delta_version"],
          result["dim_member_version"], json.dumps(result, sort_keys=True))],
        "batch_id string, extracted_at timestamp, applied_at timestamp, member_version bigint, "
        "dim_member_version bigint, result string",
    )

    def upsert() -> None:
        (DeltaTable.forPath(spark, path).alias("t").merge(row.alias("s"), "t.batch_id = s.batch_id")
         .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())

    retry_on_conflict(upsert, f"record batch in {path}")


# --------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="member_merge", description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True, help="the batch's _manifest.json")
    parser.add_argument("--tables-root", required=True,
                        help="where the Delta tables member, dim_member, member_quarantine and member_batches live")
    parser.add_argument("--result-path", required=True, help="JSON file of counts, written last")
    parser.add_argument(
        "--max-quarantine-ratio", type=float, default=0.05,
        help="fail when quarantined rows / manifest rows exceeds this (default 0.05)",
    )
    parser.add_argument(
        "--max-delete-ratio", type=float, default=0.05,
        help="fail before any change when a snapshot would delete more than this share of the table "
             "(default 0.05): an empty or partial source is likelier than a mass deletion",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> dict[str, Any]:
    """The job: arguments from `argv` (default sys.argv), the session from the cluster (or spark-submit)
    unless `spark` is given (tests run concurrent jobs in sessions of their own: the commit tag is a
    session setting). The PII keys come from the environment (lakehouse_jobs.pii.PiiKeys.from_env).

    Returns (and writes to --result-path, last) the facts the DAG reconciles: the batch's row counts, the
    versions and tag of the MERGE commits, and the member table's rows before and after.
    Raises PiiKeyError without a usable key, and BatchError, leaving the tables unchanged (the quarantine
    table aside), for an unusable or out-of-order batch, too many quarantined rows, or a snapshot that would
    delete more than --max-delete-ratio of the table.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    keys = pii.PiiKeys.from_env()
    spark = spark or SparkSession.builder.getOrCreate()
    paths = {name: f"{args.tables_root.rstrip('/')}/{name}"
             for name in ("member", "dim_member", "member_quarantine", "member_batches")}

    manifest = read_manifest(spark, args.manifest, MEMBER)
    batch_id = manifest.batch_id
    manifest_rows = manifest.row_count
    snapshot = manifest.mode == "snapshot"
    extracted_at = datetime.fromisoformat(manifest.extracted_at)
    log.info("batch %s: %d rows in %d files (%s)", batch_id, manifest_rows, len(manifest.files), manifest.mode)
    with timed("check_order", log):
        check_order(spark, paths["member_batches"], batch_id, extracted_at)
        for spec in (MEMBER_TABLE, DIM_MEMBER, MEMBER_QUARANTINE):
            ensure_table(spark, spec, paths[spec.name])

    with timed("read_batch", log):
        batch = read_batch(spark, manifest, MEMBER)
    with timed("plan_changes", log):
        table_version = DeltaTable.forPath(spark, paths["member"]).history(1).first()["version"]
        table = spark.read.format("delta").option("versionAsOf", table_version).load(paths["member"])
        rows_before = table.count()
        plan = plan_changes(hash_source(pii.with_keys(spark, batch, keys)), table, table_version, snapshot)
    deleted_rows = plan.counts.get("deleted", 0)
    log.info("batch %s: rows by change %s", batch_id, plan.counts)
    with timed("clean", log):
        cleaned = materialise(clean_members(hash_source(pii.with_keys(spark, plan.candidates(batch), keys))))
    with timed("validate", log):
        flagged = materialise(flag_rows(cleaned, today=datetime.now(timezone.utc).date()))
    valid, quarantine = split_flagged(flagged)
    with timed("quarantine", log):
        write_quarantine(spark, protect_quarantine(pii.with_keys(spark, quarantine, keys)),
                         paths["member_quarantine"], batch_id)
        by_reason = quarantine.groupBy("quarantine_reason").count().collect()
        reasons = {r["quarantine_reason"]: r["count"] for r in by_reason}
        quarantined_rows = sum(reasons.values())
        valid_rows = valid.count()
    log.info("batch %s: %d unchanged, %d valid changes, %d quarantined, %d deletions", batch_id,
             plan.counts.get("unchanged", 0), valid_rows, quarantined_rows, deleted_rows)

    if manifest_rows and quarantined_rows / manifest_rows > args.max_quarantine_ratio:
        raise BatchError(
            f"batch {batch_id}: {quarantined_rows} of {manifest_rows} rows quarantined, more than "
            f"--max-quarantine-ratio {args.max_quarantine_ratio}; see {paths['member_quarantine']} "
            f"where batch_id = '{batch_id}'. The member tables were not changed."
        )
    if rows_before and deleted_rows / rows_before > args.max_delete_ratio:
        raise BatchError(
            f"batch {batch_id}: the snapshot would delete {deleted_rows} of {rows_before} members, more than "
            f"--max-delete-ratio {args.max_delete_ratio}; an empty or partial extract is likelier than "
            "a mass deletion. The member tables were not changed."
        )
    with timed("protect", log):
        changes = materialise(pii.drop_keys(protect(pii.with_keys(spark, valid, keys))))
    deleted = plan.deleted_keys()
    commit_tag = f"member_merge {batch_id} {uuid.uuid4()}"
    with timed("merge_dim_member", log):
        dim_version = merge_dim_member(spark, changes, deleted, paths["dim_member"], batch_id,
                                       extracted_at, commit_tag)
    with timed("merge_members", log):
        version, source_rows = merge_members(spark, changes, deleted, paths["member"], batch_id,
                                             commit_tag)
    with timed("table_facts", log):
        facts = table_facts(spark, paths["member"], version, plan, snapshot)
        dim = spark.read.format("delta").load(paths["dim_member"]).agg(
            F.count(F.lit(1)).alias("rows"), F.count(F.when(F.col("is_current"), 1)).alias("current")).first()
        facts |= {"dim_member_rows": dim["rows"], "dim_member_current_rows": dim["current"]}

    result = {
        "batch_id": batch_id,
        "manifest_rows": manifest_rows,
        "unchanged_rows": plan.counts.get("unchanged", 0),
        "valid_rows": valid_rows,
        "quarantined_rows": quarantined_rows,
        "quarantine_reasons": reasons,
        "deleted_rows": deleted_rows,
        "merge_source_rows": source_rows,
        "delta_version": version,
        "dim_member_version": dim_version,
        "commit_tag": commit_tag,
        **facts,
    }
    with timed("record_batch", log):
        record_batch(spark, paths["member_batches"], batch_id, extracted_at, result)
    # last: its presence means the batch is applied
    hadoop_fs.write_text(spark, args.result_path, json.dumps(result, sort_keys=True))
    log.info("batch %s applied: %s", batch_id, result)
    return result
