"""Delta helpers every job uses: create a declared table once, and retry a write that lost a commit race."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from delta import exceptions as delta_exceptions
from delta.tables import DeltaTable, IdentityGenerator
from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse_jobs.tables import TableSpec

log = logging.getLogger(__name__)

# Every commit conflict Delta's optimistic concurrency can raise; the Python classes share no base.
CONFLICT_NAMES = (
    "ConcurrentAppendException", "ConcurrentDeleteDeleteException", "ConcurrentDeleteReadException",
    "ConcurrentTransactionException", "ConcurrentWriteException", "DeltaConcurrentModificationException",
    "MetadataChangedException", "ProtocolChangedException",
)
DELTA_CONFLICTS = tuple(getattr(delta_exceptions, name) for name in CONFLICT_NAMES)


def is_conflict(exc: BaseException) -> bool:
    """True for a Delta commit conflict, whether delta-spark converted it to its Python class or it
    arrives as the JVM's io.delta.exceptions.* inside a Py4JJavaError (as a MERGE's conflict does under
    Spark 4.0 classic: measured in tests/spark_jobs/member/test_member_job_faults.py)."""
    if isinstance(exc, DELTA_CONFLICTS):
        return True
    if isinstance(exc, Py4JJavaError):
        java = exc.java_exception
        while java is not None:
            if java.getClass().getName() in {f"io.delta.exceptions.{n}" for n in CONFLICT_NAMES}:
                return True
            java = java.getCause()
    return False

R = TypeVar("R")


def retry_on_conflict(action: Callable[[], R], what: str, attempts: int = 4, base_delay_s: float = 2.0) -> R:
    """Run a Delta write, retrying when a concurrent commit (an overlapping run) conflicts with it.

    `action` must re-read the table on each call, so a retried write is decided against the winner's
    commit. Waits base_delay_s * 2**(attempt-1) seconds, jittered by +-50%, between attempts; the last
    attempt's conflict propagates.
    """
    for attempt in range(1, attempts):
        try:
            return action()
        except Exception as exc:
            if not is_conflict(exc):
                raise
            # jitter, so that the two runs don't collide again
            delay = base_delay_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
            log.warning("%s: commit conflict, retry %d in %.1fs", what, attempt, delay)
            time.sleep(delay)
    return action()


def is_empty(table: DeltaTable) -> bool:
    """True when the table's latest version has no data file (from the log, no data read).

    A MERGE into an empty table needs only its insert clauses: Delta then runs it as an anti-join and an
    append, where matched clauses cost a second pass to find and rewrite touched files (Delta's
    MergeIntoCommand, "insert-only merge"). Decided just before the MERGE; a writer that fills the table
    after the MERGE's snapshot makes the commit conflict, and retry_on_conflict decides again.
    """
    return table.detail().first()["numFiles"] == 0


class TableDeclarationError(RuntimeError):
    """A table exists at the path but differs from its declaration (lakehouse_jobs.tables)."""


def ensure_table(spark: SparkSession, spec: TableSpec, path: str) -> None:
    """Create the Delta table `spec` declares at `path` unless it exists, with its columns, properties,
    clustering and CHECK constraints; an existing table must have the declared columns (names, types,
    nullability, in order), else TableDeclarationError says how it differs (migrating is a deliberate act,
    not a side effect of a run). A CHECK constraint of an existing table that is missing or reads otherwise
    than declared (a list of reason codes that grew) is added or replaced: Delta validates every existing row
    against it, so a narrower one fails loudly rather than hiding rows. Safe to call from runs racing each
    other."""

    if path in _ENSURED:
        return

    def create() -> None:
        builder = DeltaTable.createIfNotExists(spark).location(path).comment(spec.description)
        for f in spec.fields:
            builder = builder.addColumn(f.name, f.type, nullable=f.nullable, comment=f.comment or None,
                                        generatedAlwaysAs=IdentityGenerator() if f.identity else None)
        # CHECK constraints are table properties: declared at creation they cost no extra commit (and no
        # scan), where ALTER TABLE ADD CONSTRAINT is one commit each
        constraints = {f"delta.constraints.{name.lower()}": expr for name, expr in spec.constraints.items()}
        for key, value in (spec.table_properties | constraints).items():
            builder = builder.property(key, value)
        if spec.cluster_by:
            builder = builder.clusterBy(*spec.cluster_by)
        builder.execute()
        existing = DeltaTable.forPath(spark, path)
        _check_columns(spec, path, existing.toDF().schema)
        present = existing.detail().first()["properties"]
        for name, expression in spec.constraints.items():
            current = present.get(f"delta.constraints.{name.lower()}")
            if current is not None and not _same_sql(current, expression):
                # checked before the old one goes: a table is never left without its constraint
                if existing.toDF().where(f"NOT ({expression})").limit(1).count():
                    raise TableDeclarationError(
                        f"the Delta table at {path} has rows that break the declared constraint {name} "
                        f"({expression}); it keeps its own ({current}). Migrate the rows or the declaration.")
                spark.sql(f"ALTER TABLE delta.`{path}` DROP CONSTRAINT {name}")
            if current is None or not _same_sql(current, expression):
                spark.sql(f"ALTER TABLE delta.`{path}` ADD CONSTRAINT {name} CHECK ({expression})")

    retry_on_conflict(create, f"create {spec.name} at {path}")
    _ENSURED.add(path)


def _same_sql(stored: str, declared: str) -> bool:
    # Delta keeps an added constraint as its tokens joined by single spaces ("reason IN ( 'a' , 'b' )"), one
    # declared at creation as written: compared without whitespace (so two expressions differing only by
    # spaces inside a string literal read as the same)
    return re.sub(r"\s+", "", stored) == re.sub(r"\s+", "", declared)


# tables this process has checked: a job checks each once, however many steps use it
_ENSURED: set[str] = set()


def _check_columns(spec: TableSpec, path: str, schema: T.StructType) -> None:
    declared = [(f.name, f.type.lower(), f.nullable) for f in spec.fields]
    actual = [(f.name, _sql_type(f.dataType), f.nullable) for f in schema.fields]
    if declared != actual:
        raise TableDeclarationError(
            f"the Delta table at {path} does not match the declaration of {spec.name} "
            f"(lakehouse_jobs.tables): declared {declared}, found {actual}. Migrate or remove the table."
        )


def _sql_type(data_type: T.DataType) -> str:
    if isinstance(data_type, T.DecimalType):  # typeName() drops precision and scale
        return data_type.simpleString()
    return {"long": "bigint", "integer": "int"}.get(data_type.typeName(), data_type.typeName())


# Delta writes this session setting into the commit's commitInfo.userMetadata
COMMIT_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"


def tagged_commit(spark: SparkSession, builder: Any, path: str, commit_tag: str) -> int | None:
    """Execute a MERGE builder (delta.tables.DeltaMergeBuilder) with `commit_tag` as its commit's
    userMetadata; the version it committed, or None when Delta committed nothing (no clause changed a row:
    a concurrent run had applied the change). The tag is a session setting: concurrent jobs need sessions
    of their own."""
    table = DeltaTable.forPath(spark, path)
    before = table.history(1).first()["version"]
    spark.conf.set(COMMIT_METADATA_CONF, commit_tag)
    try:
        builder.execute()
    finally:
        spark.conf.unset(COMMIT_METADATA_CONF)
    # our commit is among the few after `before` (a concurrent writer may have committed around it)
    ours = (table.history(20).where((F.col("version") > before) & (F.col("userMetadata") == commit_tag))
            .select("version").first())
    return None if ours is None else ours["version"]
