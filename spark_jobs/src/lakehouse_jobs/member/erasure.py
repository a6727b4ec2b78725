"""Erase one member from the Delta tables, including their history: the right to erasure (GDPR Art. 17).

Entry point `member_erasure` of the jobs wheel, run by the DAG `member_erasure` after the member is gone
from the source and from the landing batches (include/erasure_landing.py).

Why delete-and-purge rather than crypto-shredding (docs/pii.md, "Erasure"): one table key encrypts every
member, so there is no per-member key to destroy; physically removing the rows is what Delta documents for
GDPR. With deletion vectors a DELETE only marks rows as deleted, and the files holding them stay readable
through time travel until VACUUM removes them. So, for each table holding the member's personal data
(tables.MEMBER_PII_TABLES):
1. ``delete_member``: a MERGE ... WHEN MATCHED DELETE against a one-row source, not a DELETE with a
   literal predicate, which Delta would keep in the commit's operationParameters, in the log, for 30 days.
2. ``REORG TABLE ... APPLY (PURGE)``: rewrite the files whose deletion vectors mark the member's rows.
3. ``VACUUM ... LITE RETAIN 0 HOURS``: remove every file an earlier version used and the latest does not,
   so no older version can bring the rows back. LITE takes the files from the log's remove actions only, so
   it never touches a file a running writer has written and not yet committed (no log names it): a full
   VACUUM at 0 hours would, and the writer's commit would then name files that are gone (delta-io/delta#1470).
   Then a full ``VACUUM ... RETAIN <--writer-hours> HOURS`` removes files no version ever used (a failed
   writer's) older than any running writer's; a younger one goes with the next erasure or maintenance run.
   The 7-day safety check is switched off for this job's session only: this is the one path that may go
   below it, and it ends time travel to older versions for every reader. The DAG also waits until no run of
   a job writing the tables is active (include/table_writers.py).
The table log holds no member id (tables declare no statistics on identifying columns). The request is
recorded in ``erasure_requests`` by a keyed hash of the member id, never the id. Rerunning a request
removes nothing more and changes nothing but completed_at.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from datetime import datetime, timezone

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse_jobs import pii
from lakehouse_jobs.delta import ensure_table, retry_on_conflict
from lakehouse_jobs.entry import TablePaths, run_job
from lakehouse_jobs.keys import is_member_id, member_key_column
from lakehouse_jobs.results import ErasureParams, ErasureResult
from lakehouse_jobs.tables import ERASURE_REQUESTS, MEMBER_PII_TABLES, TableSpec

log = logging.getLogger(__name__)


RETENTION_CHECK_CONF = "spark.databricks.delta.retentionDurationCheck.enabled"


def request_hash(member_id: str, keys: pii.PiiKeys) -> str:
    """HMAC-SHA-256 (hex) of the member id: equal to pii.keyed_hash of the same text in Spark."""
    return hmac.new(keys.hmac_key, member_id.encode(), hashlib.sha256).hexdigest()


def erase_ids(spark: SparkSession, member_id: str) -> DataFrame:
    """The id as data (column ``_erase_id``), never as a literal in a plan or a commit's predicate."""
    return spark.createDataFrame([(member_id,)], "_erase_id string")


def delete_member(spark: SparkSession, spec: TableSpec, path: str, member_id: str) -> int:
    """Delete the member's rows from one table (the quarantine's raw ids compared as keys.member_key);
    the number of rows deleted."""
    ensure_table(spark, spec, path)
    target_id = member_key_column("member_id") if spec.name == "member_quarantine" else F.col("member_id")
    source = erase_ids(spark, member_id)

    def delete() -> int:
        table = DeltaTable.forPath(spark, path)
        if remaining_rows(table.toDF(), source, raw_ids=spec.name == "member_quarantine") == 0:
            return 0
        table.alias("t").merge(source.alias("s"), target_id == F.col("s._erase_id")).whenMatchedDelete().execute()
        metrics = table.history(1).first()["operationMetrics"]
        return int(metrics.get("numTargetRowsDeleted", 0))

    return retry_on_conflict(delete, f"erase from {path}")


def purge(spark: SparkSession, path: str, writer_hours: float) -> None:
    """Rewrite the files with deleted rows, remove every file an earlier version used and the latest does not
    (VACUUM LITE at 0 hours), then the files of no version older than `writer_hours` (module docstring)."""
    spark.sql(f"REORG TABLE delta.`{path}` APPLY (PURGE)")
    spark.conf.set(RETENTION_CHECK_CONF, "false")
    try:
        spark.sql(f"VACUUM delta.`{path}` LITE RETAIN 0 HOURS")
        DeltaTable.forPath(spark, path).vacuum(writer_hours)
    finally:
        spark.conf.unset(RETENTION_CHECK_CONF)


def remaining_rows(df: DataFrame, ids: DataFrame, raw_ids: bool) -> int:
    """Rows of `df` whose member_id (as keys.member_key when `raw_ids`) is in `ids` (``_erase_id``)."""
    column = member_key_column("member_id") if raw_ids else F.col("member_id")
    return df.join(ids, column == ids["_erase_id"], "left_semi").count()


def record_request(spark: SparkSession, path: str, digest: str, request_id: str, removed: dict) -> None:
    """Upsert the request's row: the removal counts are kept from the run that removed something."""
    ensure_table(spark, ERASURE_REQUESTS, path)
    now = datetime.now(timezone.utc)
    row = spark.createDataFrame([{
        "request_hash": digest, "first_requested_at": now, "completed_at": now, "request_id": request_id,
        "removed": json.dumps(removed, sort_keys=True),
    }], ERASURE_REQUESTS.schema_ddl)
    removed_something = any(v for v in removed.get("rows", {}).values())

    def upsert() -> None:
        update = {"completed_at": "s.completed_at", "request_id": "s.request_id"}
        if removed_something:
            update["removed"] = "s.removed"
        (DeltaTable.forPath(spark, path).alias("t").merge(row.alias("s"), "t.request_hash = s.request_hash")
         .whenMatchedUpdate(set=update).whenNotMatchedInsertAll().execute())

    retry_on_conflict(upsert, f"record erasure request in {path}")


def main(argv: Sequence[str] | None = None, spark: SparkSession | None = None) -> ErasureResult:
    """The entry point: run_job(ErasureParams, erase); `spark` for tests (lakehouse_jobs.entry)."""
    return run_job(ErasureParams, erase, argv, spark)


def erase(spark: SparkSession, params: ErasureParams, paths: TablePaths) -> ErasureResult:
    """The job: counts only, rows removed and rows left per table (left must be 0), and the request's
    hash. Raises ValueError for a member id that is not a lower-case UUID, PiiKeyError without a usable key."""
    member_id = params.member_id
    if not is_member_id(member_id):
        raise ValueError("--member-id must be a lower-case UUID")  # the value is not echoed: it may be anything
    keys = pii.PiiKeys.from_env()
    digest = request_hash(member_id, keys)
    removed, left = {}, {}
    for spec in MEMBER_PII_TABLES:
        path = paths[spec.name]
        removed[spec.name] = delete_member(spark, spec, path, member_id)
        purge(spark, path, params.writer_hours)
        left[spec.name] = remaining_rows(spark.read.format("delta").load(path), erase_ids(spark, member_id),
                                         raw_ids=spec.name == "member_quarantine")
        log.info("erasure %s: %s removed %d rows, %d left", digest[:12], spec.name, removed[spec.name],
                 left[spec.name])
    record_request(spark, paths[ERASURE_REQUESTS.name], digest, params.request_id,
                   {"rows": removed, "landing": json.loads(params.landing)})
    return ErasureResult(request_hash=digest, rows_removed=removed, rows_left=left)
