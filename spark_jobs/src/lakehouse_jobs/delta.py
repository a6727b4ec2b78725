"""Delta helpers every job uses: create a table once, and retry a write that lost a commit race."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from delta import exceptions as delta_exceptions
from delta.tables import DeltaTable
from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession
from pyspark.sql import types as T

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
    Spark 4.0 classic: measured in tests/spark_jobs/test_member_merge_faults.py)."""
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


def create_table_if_absent(spark: SparkSession, path: str, schema: T.StructType) -> None:
    DeltaTable.createIfNotExists(spark).location(path).addColumns(schema).execute()
