"""The member_batches table: the order batches are applied in, and what each run changed (member_merge
steps 2 and 11)."""

from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse_jobs.batch import BatchError
from lakehouse_jobs.delta import ensure_table, retry_on_conflict
from lakehouse_jobs.results import MemberMergeResult
from lakehouse_jobs.tables import MEMBER_BATCHES


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


def record_batch(spark: SparkSession, path: str, extracted_at: datetime, result: MemberMergeResult) -> None:
    """Append this application of the batch to member_batches (check_order reads it). Every run keeps its
    own row: a rerun of a batch (a retry, a cleared DAG run) adds one beside the earlier run's, whose
    counts say what that run changed."""
    row = spark.createDataFrame([{
        "batch_id": result.batch_id, "extracted_at": extracted_at, "applied_at": datetime.now(timezone.utc),
        "member_version": result.delta_version, "dim_member_version": result.dim_member_version,
        "result": result.to_json(),
    }], MEMBER_BATCHES.schema_ddl)
    # a blind append never conflicts with a concurrent append (Delta's WriteSerializable isolation)
    retry_on_conflict(lambda: row.write.format("delta").mode("append").save(path), f"record batch in {path}")
