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
- email: lower-cased. Null is allowed (the column is nullable); a non-null email must look like an
  ASCII address ``local@domain.tld``, with at most 254 characters (quality.is_email).
- country_code (new column): ISO 3166-1 alpha-2 code (standardise.country_to_code), else null; the raw
  ``country`` is always kept.
- phone_e164 (new column): the phone number in E.164 (standardise.phone_to_e164), else null; the raw
  ``phone_number`` is kept. An unknown country or phone number is not a quarantine reason.

Quarantine reasons, in the order checked (a row gets the first that applies):
missing_member_id, invalid_member_id (not a UUID), duplicate_member_id (the id appears with different
contents more than once in the batch: every copy is quarantined), duplicate_row (an extra exact copy of
a row that is kept once), invalid_email, missing_registration_date, registration_date_in_future (after
the run's UTC date), registration_date_too_old (before 1900-01-01).
Quarantine rows keep the raw source columns as read, plus quarantine_reason, batch_id, quarantined_at.
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import date, datetime, timezone
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse_jobs import hadoop_fs, standardise
from lakehouse_jobs.batch import BatchError, read_batch, read_manifest
from lakehouse_jobs.contracts import MEMBER, spark_schema
from lakehouse_jobs.delta import create_table_if_absent, retry_on_conflict
from lakehouse_jobs.quality import (
    OLDEST_REGISTRATION_DATE,
    UUID_PATTERN,
    first_reason,
    is_email,
    split_by_reason,
    trimmed,
)

log = logging.getLogger(__name__)

SOURCE_COLUMNS = MEMBER.column_names
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
    spark_schema(MEMBER).fields
    + [
        T.StructField("quarantine_reason", T.StringType(), nullable=False),
        T.StructField("batch_id", T.StringType(), nullable=False),
        T.StructField("quarantined_at", T.TimestampType()),
    ]
)


# -------------------------------------------------------------------------------------------- clean


def clean_members(df: DataFrame) -> DataFrame:
    """Normalised member rows (module docstring), plus ``_raw``: the source row as read, for quarantine."""
    df = df.select(*SOURCE_COLUMNS)
    # wrapped here rather than at import: pandas_udf() needs a SparkSession, which workers lack
    country_code_udf = F.pandas_udf(standardise.country_codes, T.StringType())
    phone_e164_udf = F.pandas_udf(standardise.phones_e164, T.StringType())
    cleaned = (
        df.select(
            F.struct(*SOURCE_COLUMNS).alias("_raw"),
            *[trimmed(c).alias(c) for c in SOURCE_COLUMNS if c != "registration_date"],
            "registration_date",
        )
        .withColumn("member_id", F.lower("member_id"))
        .withColumn("email", F.lower("email"))
        .withColumn("country_code", country_code_udf("country"))
        .withColumn("phone_e164", phone_e164_udf("phone_number", "country_code"))
    )
    return cleaned.select(*MEMBER_COLUMNS, "_raw")


# ----------------------------------------------------------------------------------------- validate


def split_valid_quarantine(df: DataFrame, today: date) -> tuple[DataFrame, DataFrame]:
    """(valid rows: MEMBER_COLUMNS, quarantined rows: raw SOURCE_COLUMNS + quarantine_reason).

    `df` is clean_members' output; `today` bounds registration_date.
    """
    df = df.select(*MEMBER_COLUMNS, "_raw")
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
        (F.col("email").isNotNull() & ~is_email("email"), "invalid_email"),
        (F.col("registration_date").isNull(), "missing_registration_date"),
        (F.col("registration_date") > F.lit(today), "registration_date_in_future"),
        (F.col("registration_date") < F.lit(OLDEST_REGISTRATION_DATE), "registration_date_too_old"),
    ))
    valid, quarantined = split_by_reason(flagged, "quarantine_reason")
    return valid.select(*MEMBER_COLUMNS), quarantined.select(
        *[F.col(f"_raw.{c}").alias(c) for c in SOURCE_COLUMNS], "quarantine_reason"
    )


# -------------------------------------------------------------------------------------------- write


def write_quarantine(spark: SparkSession, quarantine_df: DataFrame, path: str, batch_id: str) -> None:
    """Replace this batch's rows in the quarantine Delta table (an empty DataFrame clears them)."""
    rows = quarantine_df.select(
        *SOURCE_COLUMNS,
        "quarantine_reason",
        F.lit(batch_id).alias("batch_id"),
        F.current_timestamp().alias("quarantined_at"),
    )

    def replace_batch() -> None:
        create_table_if_absent(spark, path, QUARANTINE_TABLE_SCHEMA)
        (
            rows.write.format("delta")
            .mode("overwrite")
            # safe: BatchManifest checked batch_id against BATCH_ID_PATTERN
            .option("replaceWhere", f"batch_id = '{batch_id}'")
            .save(path)
        )

    retry_on_conflict(replace_batch, f"quarantine write {path}")


def merge_members(spark: SparkSession, valid_df: DataFrame, table_path: str, batch_id: str) -> None:
    """Upsert valid rows on member_id; a matched row is updated only if a business column differs.

    No ordering guard: a backfill of an older batch overwrites newer values, as its operator intends.
    """
    source = valid_df.select(
        *MEMBER_COLUMNS,
        F.lit(batch_id).alias("_batch_id"),
        F.current_timestamp().alias("_updated_at"),
    )
    # <=> is null-safe equality: null -> value and value -> null are changes too
    changed = " OR ".join(f"NOT (t.{c} <=> s.{c})" for c in MEMBER_COLUMNS if c != "member_id")
    assignments = {c: f"s.{c}" for c in MEMBER_TABLE_SCHEMA.fieldNames()}

    def merge() -> None:
        create_table_if_absent(spark, table_path, MEMBER_TABLE_SCHEMA)
        (
            DeltaTable.forPath(spark, table_path).alias("t")
            .merge(source.alias("s"), "t.member_id = s.member_id")
            .whenMatchedUpdate(condition=changed, set=assignments)
            .whenNotMatchedInsert(values=assignments)
            .execute()
        )

    retry_on_conflict(merge, f"MERGE into {table_path}")


# --------------------------------------------------------------------------------------------- main


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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """The job: arguments from `argv` (default sys.argv), the session from the cluster (or spark-submit)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    spark = SparkSession.builder.getOrCreate()

    manifest = read_manifest(spark, args.manifest, MEMBER)
    batch_id = manifest.batch_id
    manifest_rows = manifest.row_count
    log.info("batch %s: %d rows in %d files", batch_id, manifest_rows, len(manifest.files))

    # cached: the quarantine write, the counts and the MERGE would each re-read and re-run the UDFs
    cleaned = clean_members(read_batch(spark, manifest, MEMBER)).persist()
    try:
        valid, quarantine = split_valid_quarantine(cleaned, today=datetime.now(timezone.utc).date())
        write_quarantine(spark, quarantine, args.quarantine_path, batch_id)
        quarantined_rows = quarantine.count()
        valid_rows = valid.count()
        log.info("batch %s: %d valid, %d quarantined", batch_id, valid_rows, quarantined_rows)

        if manifest_rows and quarantined_rows / manifest_rows > args.max_quarantine_ratio:
            raise BatchError(
                f"batch {batch_id}: {quarantined_rows} of {manifest_rows} rows quarantined, more than "
                f"--max-quarantine-ratio {args.max_quarantine_ratio}; see {args.quarantine_path} "
                f"where batch_id = '{batch_id}'. The member table was not changed."
            )
        merge_members(spark, valid, args.table_path, batch_id)
    finally:
        cleaned.unpersist()

    # the version just committed (or a later one, if an overlapping run committed since) and its size
    version = DeltaTable.forPath(spark, args.table_path).history(1).first()["version"]
    total = spark.read.format("delta").option("versionAsOf", version).load(args.table_path).count()
    result = {
        "batch_id": batch_id,
        "manifest_rows": manifest_rows,
        "valid_rows": valid_rows,
        "quarantined_rows": quarantined_rows,
        "delta_rows_total": total,
        "delta_version": version,
    }
    # last: its presence means the batch is merged
    hadoop_fs.write_text(spark, args.result_path, json.dumps(result, sort_keys=True))
    log.info("batch %s merged: %s", batch_id, result)
    return result
