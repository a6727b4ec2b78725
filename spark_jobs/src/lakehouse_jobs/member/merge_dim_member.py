"""The SCD type 2 MERGE into dim_member (member_merge step 8)."""

from __future__ import annotations

from datetime import datetime

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse_jobs.delta import ensure_table, is_empty, retry_on_conflict, tagged_commit
from lakehouse_jobs.member.schema import BROADCAST_KEYS_MAX, DIM_MEMBER_TYPES
from lakehouse_jobs.steps import materialise
from lakehouse_jobs.tables import DIM_MEMBER, OPEN_END


def merge_dim_member(spark: SparkSession, changes: DataFrame, deleted: DataFrame, path: str, batch_id: str,
                     extracted_at: datetime, commit_tag: str) -> tuple[int | None, int]:
    """SCD type 2 MERGE into dim_member (module docstring, step 8): the version it committed, or None
    when no member's attributes changed (nothing is committed), and how many members that had a current
    version got a new one (their standardised attributes changed: at the source, or by new rules).

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

    def merge() -> tuple[int | None, int]:
        table = DeltaTable.forPath(spark, path)
        if is_empty(table):  # a first load: every change is a first version, and nothing is closed
            source = changes.select(F.lit("insert").alias("_op"), *attributes)
            builder = (table.alias("t").merge(source.alias("s"), "t.member_id = s.member_id AND t.is_current")
                       .whenNotMatchedInsert(values=values))
            return (tagged_commit(spark, builder, path, commit_tag) if not changes.isEmpty() else None), 0
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
            return None, 0
        # a close of a member this batch also inserts: a new version of an existing member (not a deletion)
        versioned = source.where("_op = 'close'").join(changed.select("member_id"), "member_id", "left_semi").count()
        written_by_this_extraction = (F.col("t._batch_id") == batch_id) & (F.col("t.valid_from") == at)
        builder = (
            table.alias("t")
            .merge(source.alias("s"), F.expr("t.member_id = s.member_id AND t.is_current")
                   & F.when(F.col("s._op") == "close", ~written_by_this_extraction)
                       .otherwise(written_by_this_extraction))
            .whenMatchedUpdate(condition="s._op = 'close'", set={
                "valid_to": at, "is_current": F.lit(False), "_updated_at": F.current_timestamp()})
            .whenNotMatchedInsert(condition="s._op = 'insert'", values=values)
        )
        return tagged_commit(spark, builder, path, commit_tag), versioned

    return retry_on_conflict(merge, f"MERGE into {path}")

