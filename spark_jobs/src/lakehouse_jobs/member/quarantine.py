"""The member quarantine table (member_merge step 5): a batch's verdicts on the rows it evaluated.

A batch's quarantine rows are replaced only for the members the run evaluated. With a change set the job
evaluates what changed since the change state, so a rerun of a batch (a retry, a cleared DAG run) after
its first run was applied evaluates only what changed since that run: the rows the first run quarantined
that the source still holds unchanged are not evaluated again, and must stay (nothing is lost).
"""

from __future__ import annotations

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse_jobs.delta import ensure_table, retry_on_conflict
from lakehouse_jobs.keys import member_key_column
from lakehouse_jobs.tables import MEMBER_QUARANTINE


def write_quarantine(spark: SparkSession, rows: DataFrame, evaluated: DataFrame, path: str, batch_id: str) -> None:
    """Replace, in one commit, this batch's quarantine rows of the members in `evaluated` with `rows`.

    `rows`: protect_quarantine's output, the rows quarantined now. `evaluated`: the member_id (as landed) of
    every row the run cleaned and validated, quarantined or not; a member is matched by its key
    (lakehouse_jobs.keys.member_key, so a missing id matches a missing id). Rows of other batches, and of
    members this run did not evaluate, are kept. Nothing is committed when nothing was evaluated.
    """
    if evaluated.isEmpty():
        return
    columns = [c for c in MEMBER_QUARANTINE.column_names if c not in ("batch_id", "quarantined_at")]
    inserts = rows.select(*columns, F.lit(batch_id).alias("batch_id"),
                          F.current_timestamp().alias("quarantined_at"),
                          F.lit(None).cast("string").alias("_key"), F.lit("insert").alias("_op"))
    replaced = evaluated.select(member_key_column("member_id").alias("_key")).distinct() \
        .withColumn("_op", F.lit("replace"))
    # one MERGE, so no reader sees the old verdicts gone and the new ones missing: a "replace" row matches
    # the batch's rows of its member, which are deleted; an "insert" row matches nothing and is inserted
    source = replaced.unionByName(inserts, allowMissingColumns=True)
    condition = ((F.col("s._op") == "replace") & (F.col("t.batch_id") == F.lit(batch_id))
                 & member_key_column(F.col("t.member_id")).eqNullSafe(F.col("s._key")))

    def replace_verdicts() -> None:
        ensure_table(spark, MEMBER_QUARANTINE, path)
        (DeltaTable.forPath(spark, path).alias("t").merge(source.alias("s"), condition)
         .whenMatchedDelete()
         .whenNotMatchedInsert(condition="s._op = 'insert'",
                               values={c: f"s.`{c}`" for c in MEMBER_QUARANTINE.column_names})
         .execute())

    retry_on_conflict(replace_verdicts, f"quarantine write {path}")
