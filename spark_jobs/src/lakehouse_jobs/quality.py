"""Data-quality rules as Spark column expressions, shared by the jobs' validation steps.

A rule that fails puts a reason on the row; the row goes to a quarantine table with that reason instead
of into the facts, so nothing is lost and nothing wrong is loaded. Rules that need a library rather than
a column expression (email validity: email-validator) live in ``standardise`` and run as pandas UDFs.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
OLDEST_REGISTRATION_DATE = date(1900, 1, 1)


def trimmed(column: str) -> Column:
    """Leading and trailing whitespace removed; blank becomes null. Nothing else changes, so text in any
    script keeps its exact bytes."""
    # Spark's trim() strips spaces only; tabs and newlines from sloppy sources count as blank too
    return F.nullif(F.regexp_replace(F.col(column), r"^\s+|\s+$", ""), F.lit(""))


def first_reason(*rules: tuple[Column, str]) -> Column:
    """The reason of the first (condition, reason) rule whose condition holds, else null."""
    expr = F
    for condition, reason in rules:
        expr = expr.when(condition, reason)
    return expr


def split_by_reason(df: DataFrame, reason: str) -> tuple[DataFrame, DataFrame]:
    """(rows whose `reason` column is null, rows whose `reason` is set)."""
    return df.filter(F.col(reason).isNull()), df.filter(F.col(reason).isNotNull())
