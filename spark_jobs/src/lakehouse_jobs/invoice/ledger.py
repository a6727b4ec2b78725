"""The ledger and the quarantine (invoice_load steps 9 and 11): one row per content processed,
inserted only where absent, so a rerun after a failure adds nothing twice."""

from __future__ import annotations

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse_jobs import pii
from lakehouse_jobs.delta import retry_on_conflict, tagged_commit
from lakehouse_jobs.invoice.tables import INVOICE_LEDGER, INVOICE_QUARANTINE
from lakehouse_jobs.steps import materialise


def insert_absent(spark: SparkSession, path: str, rows: DataFrame, commit_tag: str) -> int | None:
    """Insert the `rows` whose source_sha256 the table at `path` lacks (a rerun after a failure adds nothing
    twice); the version, or None when nothing was inserted."""
    def merge() -> int | None:
        new = materialise(rows.join(spark.read.format("delta").load(path).select("source_sha256"),
                                    "source_sha256", "left_anti"))
        if new.isEmpty():
            return None
        builder = (DeltaTable.forPath(spark, path).alias("t")
                   .merge(new.alias("s"), "t.source_sha256 = s.source_sha256").whenNotMatchedInsertAll())
        return tagged_commit(spark, builder, path, commit_tag)

    return retry_on_conflict(merge, f"insert into {path}")


def quarantine_rows(decided: DataFrame, batch_id: str) -> DataFrame:
    """invoice_quarantine's rows (needs pii.with_keys' columns for the detail's ciphertext)."""
    return decided.where(F.col("outcome") == "quarantined").select(
        "source_path", "source_sha256", "invoice_number", "reason", "detail",
        pii.encrypt("detail_full").alias("detail_enc"), F.lit(batch_id).alias("_batch_id"),
        F.current_timestamp().alias("quarantined_at"),
    ).select(*INVOICE_QUARANTINE.column_names)


def ledger_rows(decided: DataFrame, batch_id: str) -> DataFrame:
    """invoice_ledger's rows: every decided file but those that changed during the run."""
    return decided.where(F.col("outcome") != "changed").select(
        "source_sha256", "source_path", "file_size", "file_modified_at", F.col("outcome").alias("status"),
        "invoice_number", F.current_timestamp().alias("processed_at"), F.lit(batch_id).alias("_batch_id"),
    ).select(*INVOICE_LEDGER.column_names)
