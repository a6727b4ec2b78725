"""The member quarantine table (member_merge step 5): one batch's quarantined rows replaced at once."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse_jobs.delta import ensure_table, retry_on_conflict
from lakehouse_jobs.tables import MEMBER_QUARANTINE


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

