"""Validation (member_merge step 4): each row gets the first quarantine reason that applies (the reasons
and their order: lakehouse_jobs.member.job's docstring), then the valid / quarantine split.

A rule that fails puts a reason on the row; the row goes to the quarantine table with that reason instead
of into the member tables, so nothing is lost and nothing wrong is loaded. Rules that need a library
rather than a column expression (email validity: email-validator) run in the cleaning step
(lakehouse_jobs.standardise) and leave their verdict in a column.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse_jobs.keys import UUID_PATTERN
from lakehouse_jobs.member.schema import MEMBER_COLUMNS, SOURCE_COLUMNS

OLDEST_REGISTRATION_DATE = date(1900, 1, 1)


def first_reason(*rules: tuple[Column, str]) -> Column:
    """The reason of the first (condition, reason) rule whose condition holds, else null."""
    expr = F
    for condition, reason in rules:
        expr = expr.when(condition, reason)
    return expr


def split_by_reason(df: DataFrame, reason: str) -> tuple[DataFrame, DataFrame]:
    """(rows whose `reason` column is null, rows whose `reason` is set)."""
    return df.filter(F.col(reason).isNull()), df.filter(F.col(reason).isNotNull())


def split_valid_quarantine(df: DataFrame, today: date) -> tuple[DataFrame, DataFrame]:
    """(valid rows: MEMBER_COLUMNS (+ source_hash when `df` has it), quarantined rows: raw SOURCE_COLUMNS
    (+ source_hash) + quarantine_reason + quarantine_detail).

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
        *[F.col(f"_raw.{c}").alias(c) for c in SOURCE_COLUMNS], *carried,
        "quarantine_reason",
        # the reason is a stable code to group by; the library's message says what exactly is wrong
        F.when(F.col("quarantine_reason") == "invalid_email", F.col("_email_error"))
        .when(F.col("quarantine_reason") == "invalid_registration_date",
              F.concat(F.lit("not a calendar date: "), F.col("_raw.registration_date_raw")))
        .alias("quarantine_detail"),
    )

