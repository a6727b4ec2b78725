"""The job's side of change detection (member_merge steps 3 and 11): whether a batch's change set may be
trusted, and the change state the next extract compares the source with (lakehouse_jobs.change_state)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse_jobs import hadoop_fs
from lakehouse_jobs.change_state import POINTER_NAME, STATE_COLUMNS, ChangeState, ChangeStateError, state_rules_version
from lakehouse_jobs.contracts import MEMBER
from lakehouse_jobs.delta_log import DeltaLogError, last_data_change
from lakehouse_jobs.keys import member_key_column
from lakehouse_jobs.manifest import ChangeSet

log = logging.getLogger(__name__)


def _commit_reader(spark: SparkSession, table_path: str):
    def read(version: int) -> str | None:
        path = f"{table_path}/_delta_log/{version:020d}.json"
        return hadoop_fs.read_text(spark, path) if hadoop_fs.file_size(spark, path) is not None else None
    return read


def change_set_refusal(spark: SparkSession, change_set: ChangeSet | None, table_path: str,
                       table_version: int) -> str | None:
    """Why the job must compare the whole snapshot instead of trusting `change_set`, or None to trust it.

    Trusted only when its hashes are of the current rules and its base version is the member table's last
    data-changing commit up to `table_version` (lakehouse_jobs.delta_log): OPTIMIZE or VACUUM in between
    change nothing, an erasure or another job's MERGE does.
    """
    if change_set is None:
        return "the batch has no change set (no change state when it was extracted)"
    if change_set.rules_version != (rules := state_rules_version(MEMBER.effective_rules_version)):
        return f"its hashes are of rules {change_set.rules_version}, the job's are {rules}"
    if change_set.base_version > table_version:
        return f"its base version {change_set.base_version} is newer than the table's {table_version}"
    try:
        changed = last_data_change(table_version, _commit_reader(spark, table_path), since=change_set.base_version)
    except DeltaLogError as e:
        return f"the Delta log since version {change_set.base_version} is incomplete ({e})"
    if changed != change_set.base_version:
        return f"version {changed} changed the table's data after the change set's base {change_set.base_version}"
    return None


def current_state(spark: SparkSession, state_root: str) -> ChangeState | None:
    """The state the pointer names, None when there is none or it is unreadable (a new one replaces it)."""
    pointer = f"{state_root.rstrip('/')}/{POINTER_NAME}"
    if hadoop_fs.file_size(spark, pointer) is None:
        return None
    try:
        return ChangeState.from_json(hadoop_fs.read_text(spark, pointer), source=pointer)
    except ChangeStateError as e:
        log.warning("%s: writing a new one", e)
        return None


def write_change_state(spark: SparkSession, table_path: str, state_root: str, version: int, table_rows: int,
                       duplicate_keys: int, quarantined: DataFrame, carried: ChangeState | None = None,
                       touched: DataFrame | None = None) -> ChangeState:
    """Write the change state under `state_root`, then its pointer (lakehouse_jobs.change_state); remove
    states older than the one it replaces.

    The state holds the member table's (member_id, source_hash) at `version`, the batch's `quarantined` rows
    (raw member_id, source_hash), and, from `carried` (the state the batch's change set was found against),
    the quarantined rows no key of `touched` (``_key``: every key the change set names) has changed since.
    `table_rows` and `duplicate_keys`: the table's facts at `version` (table_facts), recorded for the
    extract, which refuses a state with duplicated keys. One read of two columns of the table (Parquet
    column pruning) and one write of a file per task: no shuffle.
    """
    root = state_root.rstrip("/")
    previous = current_state(spark, root)
    folder = f"{root}/v={version}-{uuid.uuid4().hex[:8]}"
    parts = [
        spark.read.format("delta").option("versionAsOf", version).load(table_path)
        .select("member_id", F.unhex("source_hash").alias("source_hash"), F.lit(True).alias("in_table")),
        quarantined.select(member_key_column("member_id").alias("member_id"),
                           F.unhex("source_hash").alias("source_hash"), F.lit(False).alias("in_table")),
    ]
    if carried is not None and carried.files:
        held = spark.read.parquet(*carried.files).where(~F.col("in_table"))
        if touched is not None:
            held = held.join(touched, held["member_id"] == touched["_key"], "left_anti")
        parts.append(held.select(*STATE_COLUMNS))
    state_rows = parts[0]
    for part in parts[1:]:
        state_rows = state_rows.unionByName(part)
    state_rows.write.mode("errorifexists").parquet(folder)
    files = sorted(p for p in hadoop_fs.list_files(spark, folder) if p.endswith(".parquet"))
    rows = spark.read.parquet(*files).count() if files else 0  # from the files' footers
    state = ChangeState(table_version=version, rules_version=state_rules_version(MEMBER.effective_rules_version),
                        rows=rows, table_rows=table_rows, duplicate_keys=duplicate_keys, files=files,
                        written_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    hadoop_fs.write_text(spark, f"{root}/{POINTER_NAME}", state.to_json())
    # keep the state just replaced: an extract that read its pointer a moment ago may still be reading it
    keep = {folder, *(f.rsplit("/", 1)[0] for f in (previous.files if previous else []))}
    for old in hadoop_fs.list_dirs(spark, root):
        if old.rsplit("/", 1)[-1].startswith("v=") and old not in keep:
            hadoop_fs.delete(spark, old)
    log.info("change state: %d members at version %d and %d quarantined rows in %s", table_rows, version,
             rows - table_rows, folder)
    return state
