"""The MERGE into the member table, the current state (member_merge step 9)."""

from __future__ import annotations

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.storagelevel import StorageLevel

from lakehouse_jobs.delta import ensure_table, is_empty, retry_on_conflict, tagged_commit
from lakehouse_jobs.member.schema import MEMBER_TYPES
from lakehouse_jobs.tables import MEMBER_TABLE


def merge_members(spark: SparkSession, changes: DataFrame, deleted: DataFrame, path: str, batch_id: str,
                  commit_tag: str) -> tuple[int | None, int]:
    """MERGE into the member table (module docstring, step 9): (the version it committed or None when the
    source is empty, the source's rows).

    changes: protect()'s rows of new and changed members, upserted on member_id (a matched row is updated
    only when its source_hash differs). deleted: ``member_id`` of members to delete. Into an empty table
    (a first load) the MERGE has only its insert clause (delta.is_empty).
    """
    ensure_table(spark, MEMBER_TABLE, path)
    upserts = changes.select(*changes.columns, F.lit("upsert").alias("_op"))
    deletes = deleted.select(
        "member_id", *[F.lit(None).cast(MEMBER_TYPES[c]).alias(c) for c in changes.columns if c != "member_id"],
        F.lit("delete").alias("_op"))
    source = upserts.unionByName(deletes).persist(StorageLevel.DISK_ONLY)
    try:
        source_rows = source.count()
        if source_rows == 0:
            return None, 0
        values = {c: f"s.{c}" for c in changes.columns} | {
            "_batch_id": F.lit(batch_id), "_updated_at": F.current_timestamp()}

        def merge() -> int:
            table = DeltaTable.forPath(spark, path)
            builder = table.alias("t").merge(source.alias("s"), "t.member_id = s.member_id")
            if not is_empty(table):
                builder = (
                    builder.whenMatchedDelete(condition="s._op = 'delete'")
                    .whenMatchedUpdate(condition="s._op = 'upsert' AND t.source_hash <> s.source_hash", set=values)
                )
            builder = builder.whenNotMatchedInsert(condition="s._op = 'upsert'", values=values)
            return tagged_commit(spark, builder, path, commit_tag)

        return retry_on_conflict(merge, f"MERGE into {path}"), source_rows
    finally:
        source.unpersist()

