"""Change detection (member_merge step 3): which member ids of a batch are new, changed, duplicated or
deleted, before any per-row work: from the change set the extract found against the job's change state
(``plan_from_change_set``), or by comparing every row's hash with the member table's (``plan_changes``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from lakehouse_jobs.contracts import ROW_HASH_COLUMN
from lakehouse_jobs.keys import member_key_column
from lakehouse_jobs.manifest import ChangeSet
from lakehouse_jobs.member.schema import BROADCAST_KEYS_MAX
from lakehouse_jobs.steps import materialise


def with_source_hash(batch: DataFrame) -> DataFrame:
    """A landed batch's rows with ``source_hash`` (the extract's row hash, lakehouse_jobs.change_hash, as 64
    lower-case hex digits, as the member table keeps it) in place of ``_row_hash``."""
    return batch.withColumn("source_hash", F.lower(F.hex(ROW_HASH_COLUMN))).drop(ROW_HASH_COLUMN)


@dataclass
class ChangePlan:
    """What a batch changes, by member_id, before any per-row work.

    statuses: one row per key (``_key``) of the batch or the table that needs work, with ``_status``: new,
    changed, duplicate (the key is on more than one source row) or deleted (in the table, absent from a
    snapshot), ``_rows`` (source rows with that key) and ``_table_rows``; unchanged keys are only counted.
    batch_keys: every key of the batch (lazy: read again only where needed). counts: source rows per
    status, and for deleted the table rows.
    """

    statuses: DataFrame
    batch_keys: DataFrame
    counts: dict[str, int]
    table_version: int  # the member table's version the comparison read
    table_rows: int  # rows of the member table the comparison saw (all of them for a snapshot)
    table_duplicate_keys: int  # rows beyond the first of a key held more than once (a broken table; must be 0)

    from_change_set: bool = False  # the batch's rows are its change set's: every one needs work

    def candidates(self, batch: DataFrame) -> DataFrame:
        """The batch's rows that need cleaning and validation: every row of a new, changed or duplicated
        key, and every row without a usable key (those are quarantined)."""
        if self.from_change_set:
            return batch
        keys = self.statuses.where(F.col("_status").isin("new", "changed", "duplicate")).select("_key")
        if self.counts.get("unchanged", 0) == 0:  # a first load: no comparison can spare a row
            return batch
        small = sum(self.counts.get(s, 0) for s in ("new", "changed", "duplicate")) <= BROADCAST_KEYS_MAX
        # a daily change is a few percent of the table: shipping its keys to every task beats a shuffle
        keys = F.broadcast(keys) if small else keys
        keyed = batch.withColumn("_key", member_key_column("member_id"))
        return keyed.join(keys, keyed["_key"].eqNullSafe(keys["_key"]), "left_semi").drop("_key")

    @property
    def is_empty(self) -> bool:
        """No row to clean and nothing to delete: the batch leaves the tables as they are."""
        return not any(self.counts.get(s, 0) for s in ("new", "changed", "duplicate", "deleted"))

    def deleted_keys(self) -> DataFrame:
        return self.statuses.where(F.col("_status") == "deleted").select(F.col("_key").alias("member_id"))


STATUSES = ("new", "changed", "unchanged", "duplicate", "deleted")


def plan_changes(batch_hashes: DataFrame, table: DataFrame, table_version: int, snapshot: bool) -> ChangePlan:
    """Compare the batch (``member_id`` as landed, ``source_hash``) with the member table (``member_id``,
    ``source_hash``): see ChangePlan. With `snapshot`, a table key absent from the batch is a deletion;
    an incremental batch deletes nothing.

    One pass: both sides are aggregated per key (the join reuses that partitioning, so each side is
    shuffled once), the counts are observed on the way (Spark's Observation), and only the keys that need
    work are kept, on disk: at 5% changed, a twentieth of the table.
    """
    per_key = batch_hashes.groupBy(member_key_column("member_id").alias("_key")).agg(
        F.count(F.lit(1)).alias("_rows"), F.min("source_hash").alias("_hash"))
    current = table.groupBy(F.col("member_id").alias("_key")).agg(
        F.count(F.lit(1)).alias("_table_rows"), F.min("source_hash").alias("_table_hash"))
    joined = per_key.join(current, "_key", "full_outer" if snapshot else "left")
    statuses = joined.select(
        "_key",
        F.coalesce("_rows", F.lit(0)).alias("_rows"),
        F.coalesce("_table_rows", F.lit(0)).alias("_table_rows"),
        F.when(F.col("_rows").isNull(), "deleted")
        .when(F.col("_key").isNull(), "new")  # rows without a key: quarantined as missing_member_id
        .when(F.col("_rows") > 1, "duplicate")
        .when(F.col("_table_hash").isNull(), "new")
        .when(F.col("_hash") == F.col("_table_hash"), "unchanged")
        .otherwise("changed").alias("_status"),
    )
    observation = Observation(f"plan_changes_{uuid.uuid4().hex}")  # unique: jobs may share a session
    statuses = statuses.observe(
        observation,
        *[F.sum(F.when(F.col("_status") == s, F.col("_table_rows" if s == "deleted" else "_rows"))
                .otherwise(0)).alias(s) for s in STATUSES],
        F.sum("_table_rows").alias("_table_rows"),
        F.sum(F.greatest(F.col("_table_rows") - 1, F.lit(0))).alias("_table_duplicate_keys"),
    )
    statuses = materialise(statuses.where(F.col("_status") != "unchanged"))
    observed = {k: int(v or 0) for k, v in observation.get.items()}
    counts = {s: observed[s] for s in STATUSES if observed[s]}
    batch_keys = batch_hashes.select(member_key_column("member_id").alias("_key"))
    return ChangePlan(statuses, batch_keys, counts, table_version,
                      observed["_table_rows"], observed["_table_duplicate_keys"])



def plan_from_change_set(spark: SparkSession, change_set: ChangeSet, snapshot_files: list[str],
                         table_version: int) -> ChangePlan:
    """The plan the extract found (lakehouse_jobs.manifest.ChangeSet), for a change set the job has checked
    against the table (its base is the table's last data change): no row of the table is read.
    `snapshot_files`: the whole landed snapshot, whose keys are read only if a concurrent writer makes
    table_facts check the table against it; `table_version`: the table's latest version."""
    key_files = [f.path for f in change_set.key_files]
    keys = (spark.read.parquet(*key_files) if key_files
            else spark.createDataFrame([], "member_id string, change string"))
    statuses = keys.select(F.col("member_id").alias("_key"), F.col("change").alias("_status"))
    counts = {k: v for k, v in change_set.counts.items() if v}
    snapshot = spark.read.schema("member_id string").parquet(*snapshot_files) if snapshot_files \
        else spark.createDataFrame([], "member_id string")
    batch_keys = snapshot.select(member_key_column("member_id").alias("_key"))
    # the state the extract compared with held each member_id once (include/extract/change_set.load_state)
    return ChangePlan(statuses, batch_keys, counts, table_version, change_set.state_rows, 0, from_change_set=True)
