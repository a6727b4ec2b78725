"""Change detection (member_merge step 3): which member ids of a batch are new, changed, duplicated or
deleted, by comparing keyed row hashes with the member table's, before any per-row work."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pyspark.sql import DataFrame, Observation
from pyspark.sql import functions as F

from lakehouse_jobs import pii
from lakehouse_jobs.keys import member_key_column
from lakehouse_jobs.member.schema import BROADCAST_KEYS_MAX, RULES_VERSION, SOURCE_COLUMNS
from lakehouse_jobs.steps import materialise


def hash_source(df: DataFrame) -> DataFrame:
    """`df` (a batch's rows, with pii.with_keys' columns) plus ``source_hash``: the keyed hash of the row
    as landed and RULES_VERSION."""
    return df.withColumn("source_hash", pii.row_hash(*SOURCE_COLUMNS, version=RULES_VERSION))


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

    def candidates(self, batch: DataFrame) -> DataFrame:
        """The batch's rows that need cleaning and validation: every row of a new, changed or duplicated
        key, and every row without a usable key (those are quarantined)."""
        keys = self.statuses.where(F.col("_status").isin("new", "changed", "duplicate")).select("_key")
        if self.counts.get("unchanged", 0) == 0:  # a first load: no comparison can spare a row
            return batch
        small = sum(self.counts.get(s, 0) for s in ("new", "changed", "duplicate")) <= BROADCAST_KEYS_MAX
        # a daily change is a few percent of the table: shipping its keys to every task beats a shuffle
        keys = F.broadcast(keys) if small else keys
        keyed = batch.withColumn("_key", member_key_column("member_id"))
        return keyed.join(keys, keyed["_key"].eqNullSafe(keys["_key"]), "left_semi").drop("_key")

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

