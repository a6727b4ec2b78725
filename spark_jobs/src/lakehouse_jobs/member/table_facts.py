"""What the member table looks like around member_merge's commit, for the DAG's reconciliation."""

from __future__ import annotations

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from lakehouse_jobs.member.plan import ChangePlan


def table_facts(spark: SparkSession, table_path: str, version: int | None, plan: ChangePlan,
                snapshot: bool) -> dict[str, int]:
    """What the member table looks like around the job's commit: rows just before and at `version`, member
    ids held more than once (must be 0), and after a snapshot, rows whose member is absent from it (must be 0).

    When `version` is None (nothing committed) or the very next version after the one the plan compared
    (nobody else committed in between), the facts need no scan of the table: the plan's comparison saw one
    row per table row and batch key, and the commit's own metrics say what it deleted. Its source holds each
    member id once (validation quarantines duplicated ids, and a deleted id is absent from the batch) and a
    MERGE inserts only ids it did not match, so it cannot add a duplicate. The row count at `version` comes
    from the Delta log's statistics, and the DAG's reconciliation checks it against the commit's metrics.
    Otherwise (a concurrent writer) the table is read back in full.
    """
    history = DeltaTable.forPath(spark, table_path).history(20).select("version", "operationMetrics").collect()
    if version is None and snapshot and history[0]["version"] == plan.table_version:
        return {"rows_before": plan.table_rows, "rows_after": plan.table_rows,
                "duplicate_keys": plan.table_duplicate_keys,
                "rows_absent_from_snapshot": plan.counts.get("deleted", 0)}

    def at(v: int | None) -> DataFrame:
        reader = spark.read.format("delta")
        return (reader if v is None else reader.option("versionAsOf", v)).load(table_path)

    ours = next((h["operationMetrics"] for h in history if h["version"] == version), None)
    if version == plan.table_version + 1 and ours is not None:  # never true for None
        facts = {"rows_before": plan.table_rows, "rows_after": at(version).count(),
                 "duplicate_keys": plan.table_duplicate_keys}
        if snapshot:
            facts["rows_absent_from_snapshot"] = plan.counts.get("deleted", 0) - int(ours["numTargetRowsDeleted"])
        return facts

    after = at(version)
    rows_after = after.count()
    facts = {
        "rows_before": rows_after if version is None else at(version - 1).count() if version > 0 else 0,
        "rows_after": rows_after,
        # a key twice (a write around the MERGE, out of band) is a broken table, whatever the counts say
        "duplicate_keys": after.groupBy("member_id").count().where("count > 1").count(),
    }
    if snapshot:
        keys = plan.batch_keys
        facts["rows_absent_from_snapshot"] = after.join(keys, after["member_id"] == keys["_key"], "left_anti").count()
    return facts

