"""Cleaning (member_merge step 4): the rules of lakehouse_jobs.member.job's docstring applied to a
batch's rows; the per-row Python rules themselves live in lakehouse_jobs.standardise."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse_jobs import standardise
from lakehouse_jobs.contracts import MEMBER
from lakehouse_jobs.keys import member_key_column
from lakehouse_jobs.member.schema import MEMBER_COLUMNS, SOURCE_COLUMNS
from lakehouse_jobs.steps import materialise

# a garbled source could name millions of "countries"; past this the lookup is joined without broadcasting
COUNTRY_LOOKUP_BROADCAST_ROWS = 100_000


def trimmed(column: str) -> Column:
    """Leading and trailing whitespace removed; blank becomes null. Nothing else changes, so text in any
    script keeps its exact bytes."""
    # Spark's trim() strips spaces only; tabs and newlines from sloppy sources count as blank too
    return F.nullif(F.regexp_replace(F.col(column), r"^\s+|\s+$", ""), F.lit(""))


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
        *[(member_key_column(c) if c == "member_id" else trimmed(c)).alias(c)
          for c in MEMBER.column_names if c != "registration_date"],
        "registration_date",
        *carried,
    )
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

