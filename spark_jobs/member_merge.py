"""Merge one published `member` batch into the Delta table `member`.

Runs unchanged as a Databricks `spark_python_task` and under local spark-submit (see README.md here).

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
  ASCII address ``local@domain.tld``, with at most 254 characters.
- country_code (new column): ISO 3166-1 alpha-2 code from pycountry. It matches names, official and
  common names and codes, ignoring case and accents, then the name without a bracketed suffix ("Slovakia
  (Slovak Republic)"), then a few former names ("Turkey", "Swaziland"), then pycountry's fuzzy search
  when that finds exactly one country. Otherwise null; the raw ``country`` is always kept.
- phone_e164 (new column): the phone number in E.164 when libphonenumber finds it valid, trying the
  country's region first, then "US" (the extract's Faker data uses US formats with random countries).
  The extension ("x123") is dropped, as E.164 has none. Otherwise null; raw ``phone_number`` is kept.
  An unknown country or phone number is not a quarantine reason.

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
import random
import re
import time
import unicodedata
from collections.abc import Callable
from datetime import date, datetime, timezone
from typing import Any, TypeVar

import pandas as pd
import phonenumbers
import pycountry
from delta import exceptions as delta_exceptions
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

log = logging.getLogger("member_merge")

# The Parquet contract with the extract (docs/conventions.md); read with this schema, never inferred.
SOURCE_SCHEMA = T.StructType(
    [T.StructField(name, T.StringType()) for name in (
        "member_id", "first_name", "last_name", "email", "phone_number", "address", "city", "country",
    )]
    + [T.StructField("registration_date", T.DateType())]
)
SOURCE_COLUMNS = SOURCE_SCHEMA.fieldNames()

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
    SOURCE_SCHEMA.fields
    + [
        T.StructField("quarantine_reason", T.StringType(), nullable=False),
        T.StructField("batch_id", T.StringType(), nullable=False),
        T.StructField("quarantined_at", T.TimestampType()),
    ]
)

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# Pragmatic rather than RFC 5322: dot-separated atoms, then a domain with a letters-only TLD.
EMAIL_PATTERN = (
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$"
)
EMAIL_MAX_LENGTH = 254
OLDEST_REGISTRATION_DATE = date(1900, 1, 1)
# batch_id goes into a replaceWhere SQL predicate, so only harmless characters are accepted.
BATCH_ID_PATTERN = re.compile(r"^[A-Za-z0-9_=.:-]+$")

# Former or everyday English names that pycountry no longer lists; "Korea" stays unresolved on purpose.
COUNTRY_ALIASES = {
    "cape verde": "CV",
    "libyan arab jamahiriya": "LY",
    "palestinian territory": "PS",
    "pitcairn islands": "PN",
    "svalbard & jan mayen islands": "SJ",
    "swaziland": "SZ",
    "turkey": "TR",
    "uk": "GB",
    "united states virgin islands": "VI",
}

# Every commit conflict Delta's optimistic concurrency can raise; the Python classes do not share a base.
DELTA_CONFLICTS = tuple(getattr(delta_exceptions, name) for name in (
    "ConcurrentAppendException", "ConcurrentDeleteDeleteException", "ConcurrentDeleteReadException",
    "ConcurrentTransactionException", "ConcurrentWriteException", "DeltaConcurrentModificationException",
    "MetadataChangedException", "ProtocolChangedException",
))


class BatchError(RuntimeError):
    """The batch cannot be merged as published: the job fails and the member table is left unchanged."""


# ---------------------------------------------------------------------------- Hadoop FileSystem I/O
# Small files (manifest, result) go through the JVM's Hadoop FileSystem, so the job reads and writes
# whatever paths the cluster can (s3:// on Databricks, s3:// served by S3A locally, file: in tests).


def _hadoop_fs(spark: SparkSession, path: str) -> tuple[Any, Any]:
    """(FileSystem, Path) objects of the JVM for `path`."""
    hadoop_path = spark._jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark._jsc.hadoopConfiguration()), hadoop_path


def _read_text(spark: SparkSession, path: str) -> str:
    fs, hadoop_path = _hadoop_fs(spark, path)
    stream = fs.open(hadoop_path)
    try:
        return spark._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()


def _write_text(spark: SparkSession, path: str, text: str) -> None:
    fs, hadoop_path = _hadoop_fs(spark, path)
    stream = fs.create(hadoop_path, True)  # True: overwrite the file of an earlier run
    try:
        stream.write(text.encode())
    finally:
        stream.close()


# --------------------------------------------------------------------------------------------- read


def read_manifest(spark: SparkSession, path: str) -> dict[str, Any]:
    """The batch manifest, checked for what this job relies on."""
    # not spark.read.text(): Spark's file sources skip names starting with "_", like _manifest.json
    manifest = json.loads(_read_text(spark, path))
    problems = []
    if manifest.get("manifest_version") != 1 or manifest.get("table") != "member":
        problems.append("expected manifest_version 1 for table member")
    if not BATCH_ID_PATTERN.match(str(manifest.get("batch_id", ""))):
        problems.append(f"batch_id {manifest.get('batch_id')!r} is missing or has unexpected characters")
    if sum(f["rows"] for f in manifest.get("files", [])) != manifest.get("row_count"):
        problems.append("row_count is not the sum of files[].rows")
    columns = [c["name"] for c in manifest.get("schema", [])]
    if columns != SOURCE_COLUMNS:
        problems.append(f"source columns changed: {columns} (expected {SOURCE_COLUMNS})")
    if problems:
        raise BatchError(f"invalid manifest {path}: " + "; ".join(problems))
    return manifest


def read_batch(spark: SparkSession, manifest: dict[str, Any]) -> DataFrame:
    """Exactly the manifest's files, with the source schema; fails on missing, resized or short files."""
    problems = []
    for entry in manifest["files"]:
        fs, path = _hadoop_fs(spark, entry["path"])
        if not fs.exists(path):
            problems.append(f"missing file {entry['path']}")
        elif (size := fs.getFileStatus(path).getLen()) != entry["bytes"]:
            # a truncated or zero-byte upload shows here, before Parquet fails with a cryptic error
            problems.append(f"{entry['path']} has {size} bytes, manifest says {entry['bytes']}")
    if problems:
        raise BatchError(f"batch {manifest['batch_id']} is incomplete: " + "; ".join(problems))

    paths = [entry["path"] for entry in manifest["files"]]
    if paths:
        df = spark.read.schema(SOURCE_SCHEMA).parquet(*paths)
    else:  # an empty extract may publish no file at all
        df = spark.createDataFrame([], SOURCE_SCHEMA)
    rows = df.count()
    if rows != manifest["row_count"]:
        raise BatchError(
            f"batch {manifest['batch_id']}: read {rows} rows, manifest says {manifest['row_count']}"
        )
    return df.select(*SOURCE_COLUMNS)


# -------------------------------------------------------------------------------------------- clean
# The lookups below run in Spark's Python workers, inside pandas UDFs. Under spark-submit and on
# Databricks this file is __main__, so cloudpickle ships the functions by value; that is why there is
# no functools.cache here (a cached function is pickled by name, and the worker's __main__ lacks it).


def _fold(text: str) -> str:
    """Case- and accent-insensitive form of a name: "Côte d'Ivoire" -> "cote d'ivoire"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(ascii_text.casefold().split())


_country_index_cache: dict[str, str] = {}


def _country_index() -> dict[str, str]:
    """Folded name or code -> alpha-2 for every ISO 3166 country, built once per worker (or task)."""
    if not _country_index_cache:
        for country in pycountry.countries:
            for field in ("alpha_2", "alpha_3", "name", "official_name", "common_name"):
                if value := getattr(country, field, None):
                    _country_index_cache[_fold(value)] = country.alpha_2
        _country_index_cache.update(COUNTRY_ALIASES)
    return _country_index_cache


def country_to_code(name: str | None) -> str | None:
    """ISO 3166-1 alpha-2 code of a country name, or None when unknown or ambiguous."""
    if name is None:
        return None
    index = _country_index()
    for candidate in (name, re.sub(r"\(.*\)", "", name)):
        if code := index.get(_fold(candidate)):
            return code
    try:
        matches = pycountry.countries.search_fuzzy(name)
    except LookupError:
        return None
    return matches[0].alpha_2 if len(matches) == 1 else None


def phone_to_e164(phone: str | None, region: str | None) -> str | None:
    """E.164 form of a phone number valid in `region` (alpha-2) or else in the US, or None."""
    if phone is None:
        return None
    for candidate_region in dict.fromkeys(r for r in (region, "US") if r):
        try:
            number = phonenumbers.parse(phone, candidate_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def _country_codes(countries: pd.Series) -> pd.Series:
    # a batch has a few hundred distinct countries at most: resolve each once per Arrow batch
    codes = {name: country_to_code(name) for name in countries.dropna().unique()}
    return countries.map(codes)


def _phones_e164(phones: pd.Series, regions: pd.Series) -> pd.Series:
    # no per-value cache: phone numbers are nearly unique, so it would only cost memory
    return pd.Series([phone_to_e164(p, r) for p, r in zip(phones, regions)], index=phones.index, dtype=object)


def _trimmed(column: str) -> F.Column:
    # Spark's trim() strips spaces only; tabs and newlines from sloppy sources count as blank too
    return F.nullif(F.regexp_replace(F.col(column), r"^\s+|\s+$", ""), F.lit(""))


def clean_members(df: DataFrame) -> DataFrame:
    """Normalised member rows (module docstring), plus ``_raw``: the source row as read, for quarantine."""
    df = df.select(*SOURCE_COLUMNS)
    # wrapped here rather than at import: pandas_udf() needs a SparkSession, which workers lack
    country_code_udf = F.pandas_udf(_country_codes, T.StringType())
    phone_e164_udf = F.pandas_udf(_phones_e164, T.StringType())
    cleaned = (
        df.select(
            F.struct(*SOURCE_COLUMNS).alias("_raw"),
            *[_trimmed(c).alias(c) for c in SOURCE_COLUMNS if c != "registration_date"],
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
    email_ok = F.col("email").rlike(EMAIL_PATTERN) & (F.length("email") <= EMAIL_MAX_LENGTH)
    reason = (
        F.when(F.col("member_id").isNull(), "missing_member_id")
        .when(~F.col("member_id").rlike(UUID_PATTERN), "invalid_member_id")
        .when(F.col("_versions") > 1, "duplicate_member_id")
        .when(F.col("_copy") > 1, "duplicate_row")
        .when(F.col("email").isNotNull() & ~email_ok, "invalid_email")
        .when(F.col("registration_date").isNull(), "missing_registration_date")
        .when(F.col("registration_date") > F.lit(today), "registration_date_in_future")
        .when(F.col("registration_date") < F.lit(OLDEST_REGISTRATION_DATE), "registration_date_too_old")
    )
    flagged = flagged.withColumn("quarantine_reason", reason)

    valid = flagged.filter(F.col("quarantine_reason").isNull()).select(*MEMBER_COLUMNS)
    quarantine = flagged.filter(F.col("quarantine_reason").isNotNull()).select(
        *[F.col(f"_raw.{c}").alias(c) for c in SOURCE_COLUMNS], "quarantine_reason"
    )
    return valid, quarantine


# -------------------------------------------------------------------------------------------- write

R = TypeVar("R")


def _retry_on_conflict(action: Callable[[], R], what: str, attempts: int = 4, base_delay_s: float = 2.0) -> R:
    """Run a Delta write, retrying when a concurrent commit (an overlapping run) conflicts with it.

    Each attempt re-reads the table, so a retried write is decided against the winner's commit.
    """
    for attempt in range(1, attempts):
        try:
            return action()
        except DELTA_CONFLICTS as exc:
            # exponential backoff with jitter, so that the two runs don't collide again
            delay = base_delay_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
            log.warning("%s: %s, retry %d in %.1fs", what, type(exc).__name__, attempt, delay)
            time.sleep(delay)
    return action()  # the last attempt: a conflict now fails the job


def _create_table_if_absent(spark: SparkSession, path: str, schema: T.StructType) -> None:
    DeltaTable.createIfNotExists(spark).location(path).addColumns(schema).execute()


def write_quarantine(spark: SparkSession, quarantine_df: DataFrame, path: str, batch_id: str) -> None:
    """Replace this batch's rows in the quarantine Delta table (an empty DataFrame clears them)."""
    rows = quarantine_df.select(
        *SOURCE_COLUMNS,
        "quarantine_reason",
        F.lit(batch_id).alias("batch_id"),
        F.current_timestamp().alias("quarantined_at"),
    )

    def replace_batch() -> None:
        _create_table_if_absent(spark, path, QUARANTINE_TABLE_SCHEMA)
        (
            rows.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", f"batch_id = '{batch_id}'")  # safe: read_manifest checked batch_id
            .save(path)
        )

    _retry_on_conflict(replace_batch, f"quarantine write {path}")


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
        _create_table_if_absent(spark, table_path, MEMBER_TABLE_SCHEMA)
        (
            DeltaTable.forPath(spark, table_path).alias("t")
            .merge(source.alias("s"), "t.member_id = s.member_id")
            .whenMatchedUpdate(condition=changed, set=assignments)
            .whenNotMatchedInsert(values=assignments)
            .execute()
        )

    _retry_on_conflict(merge, f"MERGE into {table_path}")


def write_result(spark: SparkSession, path: str, result: dict[str, Any]) -> None:
    """The result JSON the DAG reconciles; a rerun of the batch replaces it."""
    _write_text(spark, path, json.dumps(result, sort_keys=True))


# --------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    args = parse_args(argv)
    spark = SparkSession.builder.getOrCreate()  # Databricks provides the session; locally spark-submit

    manifest = read_manifest(spark, args.manifest)
    batch_id = manifest["batch_id"]
    manifest_rows = manifest["row_count"]
    log.info("batch %s: %d rows in %d files", batch_id, manifest_rows, len(manifest["files"]))

    # cached: the quarantine write, the counts and the MERGE would each re-read and re-run the UDFs
    cleaned = clean_members(read_batch(spark, manifest)).persist()
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
    write_result(spark, args.result_path, result)  # last: its presence means the batch is merged
    log.info("batch %s merged: %s", batch_id, result)
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    main()
