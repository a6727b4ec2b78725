"""Merge one published `member` batch into the Delta table `member`.

Entry point `member_merge` of the jobs wheel: a Databricks `python_wheel_task`, run the same way by the
local runner (spark_jobs/README.md).

Steps, each a function below:
1. ``read_manifest``: the batch's ``_manifest.json`` (docs/conventions.md) names the data files.
2. ``read_batch``: read exactly those files with the explicit source schema; fail if a file is missing,
   has a different size than the manifest says, or the rows read differ from the manifest's row_count.
3. ``clean_members``: normalise the rows (rules below).
4. ``split_valid_quarantine``: give each bad row the first quarantine reason that applies.
5. ``write_quarantine``: replace this batch's rows in the quarantine table (reruns don't duplicate them).
6. Fail the job if the quarantined share exceeds ``--max-quarantine-ratio``. The check runs after the
   quarantine write, so the bad rows can be inspected, and before the MERGE, so the table is unchanged.
7. ``merge_members``: upsert on member_id. A row is only rewritten when a business column changed, so
   rerunning a batch changes no row. A backfill of an older batch is applied like any other batch.
8. ``write_result``: counts for the DAG's reconciliation (manifest_rows = valid_rows + quarantined_rows),
   written last, after the MERGE committed.

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
Quarantine rows keep the raw source columns as read, plus quarantine_reason (one of the codes above),
quarantine_detail (for invalid_email, email-validator's message, such as "An email address must have an
@-sign."; for invalid_registration_date, the source text; else null), batch_id, quarantined_at.
"""

from __future__ import annotations

import argparse
import json
import logging
import uuid
from datetime import date, datetime, timezone
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.storagelevel import StorageLevel

from lakehouse_jobs import hadoop_fs, standardise
from lakehouse_jobs.batch import BatchError, read_batch, read_manifest
from lakehouse_jobs.contracts import MEMBER, spark_schema
from lakehouse_jobs.delta import create_table_if_absent, retry_on_conflict
from lakehouse_jobs.quality import (
    OLDEST_REGISTRATION_DATE,
    UUID_PATTERN,
    first_reason,
    split_by_reason,
    trimmed,
)

log = logging.getLogger(__name__)

# the columns of a landed batch: the contract's, then registration_date_raw (the source text of a date
# with no calendar equivalent, which landed as null; see lakehouse_jobs.contracts.raw_columns)
SOURCE_COLUMNS = spark_schema(MEMBER, landed=True).fieldNames()
# Business columns of the Delta table. PII protection (hashing, masking) would change this list.
MEMBER_COLUMNS = [
    "member_id", "first_name", "last_name", "email", "phone_number", "phone_e164",
    "address", "city", "country", "country_code", "registration_date",
]
MEMBER_TABLE_SCHEMA = T.StructType(
    [T.StructField("member_id", T.StringType(), nullable=False)]
    + [T.StructField(c, T.DateType() if c == "registration_date" else T.StringType())
       for c in MEMBER_COLUMNS[1:]]
    + [
        T.StructField("_batch_id", T.StringType()),  # the batch that last changed the row
        T.StructField("_updated_at", T.TimestampType()),  # when that change was made
    ]
)
QUARANTINE_TABLE_SCHEMA = T.StructType(
    spark_schema(MEMBER, landed=True).fields
    + [
        T.StructField("quarantine_reason", T.StringType(), nullable=False),
        T.StructField("quarantine_detail", T.StringType()),
        T.StructField("batch_id", T.StringType(), nullable=False),
        T.StructField("quarantined_at", T.TimestampType()),
    ]
)


# -------------------------------------------------------------------------------------------- clean


def clean_members(df: DataFrame) -> DataFrame:
    """Normalised member rows (module docstring): MEMBER_COLUMNS, plus ``_raw``, the source row as read, for
    quarantine, and ``_email_error``, email-validator's reason when the address is invalid (``email`` is
    then null), else null."""
    df = df.select(*SOURCE_COLUMNS)
    # wrapped here rather than at import: pandas_udf() needs a SparkSession, which workers lack
    country_code_udf = F.pandas_udf(standardise.country_codes, T.StringType())
    phone_e164_udf = F.pandas_udf(standardise.phones_e164, T.StringType())
    email_udf = F.pandas_udf(standardise.emails_normalised, standardise.EMAIL_RESULT_TYPE)
    cleaned = (
        df.select(
            F.struct(*SOURCE_COLUMNS).alias("_raw"),
            *[trimmed(c).alias(c) for c in MEMBER.column_names if c != "registration_date"],
            "registration_date",
        )
        .withColumn("member_id", F.lower("member_id"))
        .withColumn("_email", email_udf("email"))
        .withColumn("country_code", country_code_udf("country"))
        .withColumn("phone_e164", phone_e164_udf("phone_number", "country_code"))
    )
    return cleaned.select(
        *[F.col("_email.email").alias("email") if c == "email" else c for c in MEMBER_COLUMNS],
        "_raw",
        F.col("_email.error").alias("_email_error"),
    )


# ----------------------------------------------------------------------------------------- validate


def split_valid_quarantine(df: DataFrame, today: date) -> tuple[DataFrame, DataFrame]:
    """(valid rows: MEMBER_COLUMNS, quarantined rows: raw SOURCE_COLUMNS + quarantine_reason +
    quarantine_detail).

    `df` is clean_members' output; `today` bounds registration_date.
    """
    df = df.select(*MEMBER_COLUMNS, "_raw", "_email_error")
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
    valid, quarantined = split_by_reason(flagged, "quarantine_reason")
    return valid.select(*MEMBER_COLUMNS), quarantined.select(
        *[F.col(f"_raw.{c}").alias(c) for c in SOURCE_COLUMNS],
        "quarantine_reason",
        # the reason is a stable code to group by; the library's message says what exactly is wrong
        F.when(F.col("quarantine_reason") == "invalid_email", F.col("_email_error"))
        .when(F.col("quarantine_reason") == "invalid_registration_date",
              F.concat(F.lit("not a calendar date: "), F.col("_raw.registration_date_raw")))
        .alias("quarantine_detail"),
    )


# -------------------------------------------------------------------------------------------- write


def write_quarantine(spark: SparkSession, quarantine_df: DataFrame, path: str, batch_id: str) -> None:
    """Replace this batch's rows in the quarantine Delta table (an empty DataFrame clears them)."""
    rows = quarantine_df.select(
        *SOURCE_COLUMNS,
        "quarantine_reason",
        "quarantine_detail",
        F.lit(batch_id).alias("batch_id"),
        F.current_timestamp().alias("quarantined_at"),
    )

    def replace_batch() -> None:
        create_table_if_absent(spark, path, QUARANTINE_TABLE_SCHEMA)
        (
            rows.write.format("delta")
            .mode("overwrite")
            # adds columns this schema gained since the table was created (quarantine_detail)
            .option("mergeSchema", "true")
            # safe: BatchManifest checked batch_id against BATCH_ID_PATTERN
            .option("replaceWhere", f"batch_id = '{batch_id}'")
            .save(path)
        )

    retry_on_conflict(replace_batch, f"quarantine write {path}")


def merge_source(valid: DataFrame, quarantined: DataFrame) -> DataFrame:
    """The MERGE's source: every valid row (``_valid`` true), plus the key of every member whose row in this
    batch was quarantined and who has no valid row (``_valid`` false, other columns null).

    The second kind keeps such a member in the table unchanged: a quarantined row is present at the
    source, so it must not count as a deletion. Keys are unique in the result (a MERGE fails when two
    source rows match one target row).
    """
    kept = (
        quarantined.select(F.lower(trimmed("member_id")).alias("member_id"))
        .where(F.col("member_id").rlike(UUID_PATTERN))
        .distinct()
        .join(valid.select("member_id"), "member_id", "left_anti")
    )
    return valid.select(*MEMBER_COLUMNS, F.lit(True).alias("_valid")).unionByName(
        kept.select(*[F.col(c) if c == "member_id" else F.lit(None).alias(c) for c in MEMBER_COLUMNS],
                    F.lit(False).alias("_valid")),
        allowMissingColumns=False,
    )


def deletions(spark: SparkSession, table_path: str, source: DataFrame) -> tuple[int, int]:
    """(rows of the current table whose member is absent from `source`, rows of the table)."""
    create_table_if_absent(spark, table_path, MEMBER_TABLE_SCHEMA)
    table = spark.read.format("delta").load(table_path)
    return table.join(source.select("member_id"), "member_id", "left_anti").count(), table.count()


def merge_members(spark: SparkSession, source: DataFrame, table_path: str, batch_id: str, *,
                  delete_absent: bool, commit_tag: str) -> int:
    """MERGE `source` (merge_source's shape) into the member table; return the version it committed.

    Valid rows are upserted on member_id; a matched row is updated only if a business column differs, so an
    unchanged replay updates no row. Delta still rewrites each data file holding a matched row (copying its
    unchanged rows): merging only the changed rows, found by comparing row hashes first, is issue 11's
    work. With `delete_absent` (a full snapshot is the truth for the current-state table, and deletions()
    found members absent from it) those members are deleted; the not-matched-by-source clause is left out
    otherwise. The commit carries `commit_tag`
    as its userMetadata, so the reconciliation can tell this MERGE's commit from any other.
    No ordering guard: a backfill of an older batch overwrites newer values, as its operator intends.
    """
    rows = source.select(
        *MEMBER_COLUMNS, "_valid",
        F.lit(batch_id).alias("_batch_id"),
        F.current_timestamp().alias("_updated_at"),
    )
    # <=> is null-safe equality: null -> value and value -> null are changes too
    changed = " OR ".join(f"NOT (t.{c} <=> s.{c})" for c in MEMBER_COLUMNS if c != "member_id")
    assignments = {c: f"s.{c}" for c in MEMBER_TABLE_SCHEMA.fieldNames()}

    def merge() -> int:
        create_table_if_absent(spark, table_path, MEMBER_TABLE_SCHEMA)
        builder = (
            DeltaTable.forPath(spark, table_path).alias("t")
            .merge(rows.alias("s"), "t.member_id = s.member_id")
            .whenMatchedUpdate(condition=f"s._valid AND ({changed})", set=assignments)
            .whenNotMatchedInsert(condition="s._valid", values=assignments)
        )
        if delete_absent:
            builder = builder.whenNotMatchedBySourceDelete()
        spark.conf.set(COMMIT_METADATA_CONF, commit_tag)
        try:
            builder.execute()
        finally:
            spark.conf.unset(COMMIT_METADATA_CONF)
        return commit_version(spark, table_path, commit_tag)

    return retry_on_conflict(merge, f"MERGE into {table_path}")


def commit_version(spark: SparkSession, table_path: str, commit_tag: str) -> int:
    """The version of the commit whose userMetadata is `commit_tag` (searched among the newest 100)."""
    history = DeltaTable.forPath(spark, table_path).history(100)
    match = history.where(F.col("userMetadata") == commit_tag).select("version").first()
    if match is None:
        raise RuntimeError(f"no commit tagged {commit_tag!r} in the last 100 versions of {table_path}")
    return match["version"]


def table_facts(spark: SparkSession, table_path: str, version: int, source: DataFrame | None) -> dict[str, int]:
    """What the table looks like after the commit, read back from the table itself (not from the MERGE):
    rows before and at `version`, member ids held more than once at `version` (must be 0), and (for a
    snapshot `source`) rows at `version` whose member is absent from the source (must be 0)."""
    def at(v: int) -> DataFrame:
        return spark.read.format("delta").option("versionAsOf", v).load(table_path)

    after = at(version)
    facts = {
        "rows_before": at(version - 1).count() if version > 0 else 0,
        "rows_after": after.count(),
        # a key twice (a write around the MERGE, out of band) is a broken table, whatever the counts say
        "duplicate_keys": after.groupBy("member_id").count().where("count > 1").count(),
    }
    if source is not None:
        facts["rows_absent_from_snapshot"] = at(version).join(source.select("member_id"), "member_id",
                                                               "left_anti").count()
    return facts


# --------------------------------------------------------------------------------------------- main

# Delta writes this session setting into the commit's commitInfo.userMetadata
COMMIT_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="member_merge", description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True, help="the batch's _manifest.json")
    parser.add_argument("--table-path", required=True, help="Delta table `member`")
    parser.add_argument("--quarantine-path", required=True, help="Delta table of quarantined rows")
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
    session setting).

    Returns (and writes to --result-path, last) the facts the DAG reconciles: the batch's row counts, the
    version and tag of the MERGE commit, and the table's rows before and after it.
    Raises BatchError, leaving the member table unchanged, for an unusable batch, too many quarantined
    rows, or a snapshot that would delete more than --max-delete-ratio of the table.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    spark = spark or SparkSession.builder.getOrCreate()

    manifest = read_manifest(spark, args.manifest, MEMBER)
    batch_id = manifest.batch_id
    manifest_rows = manifest.row_count
    snapshot = manifest.mode == "snapshot"
    log.info("batch %s: %d rows in %d files (%s)", batch_id, manifest_rows, len(manifest.files), manifest.mode)

    # cached: the quarantine write, the counts and the MERGE would each re-read and re-run the UDFs. On
    # disk, not the heap: the driver's memory then bounds nothing but the shuffles, which spill, whatever
    # the batch's size (a job cluster's nodes have local NVMe disks)
    cleaned = clean_members(read_batch(spark, manifest, MEMBER)).persist(StorageLevel.DISK_ONLY)
    cached = [cleaned]
    try:
        valid, quarantine = split_valid_quarantine(cleaned, today=datetime.now(timezone.utc).date())
        write_quarantine(spark, quarantine, args.quarantine_path, batch_id)
        by_reason = quarantine.groupBy("quarantine_reason").count().collect()
        reasons = {r["quarantine_reason"]: r["count"] for r in by_reason}
        quarantined_rows = sum(reasons.values())
        valid_rows = valid.count()
        log.info("batch %s: %d valid, %d quarantined", batch_id, valid_rows, quarantined_rows)

        if manifest_rows and quarantined_rows / manifest_rows > args.max_quarantine_ratio:
            raise BatchError(
                f"batch {batch_id}: {quarantined_rows} of {manifest_rows} rows quarantined, more than "
                f"--max-quarantine-ratio {args.max_quarantine_ratio}; see {args.quarantine_path} "
                f"where batch_id = '{batch_id}'. The member table was not changed."
            )
        source = merge_source(valid, quarantine).persist(StorageLevel.DISK_ONLY)
        cached.append(source)
        absent = 0
        if snapshot:
            absent, table_rows = deletions(spark, args.table_path, source)
            if table_rows and absent / table_rows > args.max_delete_ratio:
                raise BatchError(
                    f"batch {batch_id}: the snapshot would delete {absent} of {table_rows} members, more than "
                    f"--max-delete-ratio {args.max_delete_ratio}; an empty or partial extract is likelier than "
                    "a mass deletion. The member table was not changed."
                )
        commit_tag = f"member_merge {batch_id} {uuid.uuid4()}"
        version = merge_members(spark, source, args.table_path, batch_id, delete_absent=snapshot and absent > 0,
                                commit_tag=commit_tag)
        facts = table_facts(spark, args.table_path, version, source if snapshot else None)
        source_rows = source.count()
    finally:
        for df in cached:
            df.unpersist()

    result = {
        "batch_id": batch_id,
        "manifest_rows": manifest_rows,
        "valid_rows": valid_rows,
        "quarantined_rows": quarantined_rows,
        "quarantine_reasons": reasons,
        "merge_source_rows": source_rows,
        "delta_version": version,
        "commit_tag": commit_tag,
        **facts,
    }
    # last: its presence means the batch is merged
    hadoop_fs.write_text(spark, args.result_path, json.dumps(result, sort_keys=True))
    log.info("batch %s merged: %s", batch_id, result)
    return result
