"""What every job's main() is made of: timed steps and decisions materialised once."""

from __future__ import annotations

import contextlib
import logging
import time

from pyspark.sql import DataFrame
from pyspark.storagelevel import StorageLevel


@contextlib.contextmanager
def timed(step: str, log: logging.Logger):
    """Log "step <step>: <seconds> s" to `log` at INFO: a job's log is its first profile
    (benchmarks/member_job_profile.py reads these lines)."""
    start = time.perf_counter()
    yield
    log.info("step %s: %.1f s", step, time.perf_counter() - start)


def materialise(df: DataFrame) -> DataFrame:
    """`df` computed once, now, and kept on the executors' disks (not the heap, so memory bounds only the
    shuffles, which spill; job clusters have local NVMe disks), with its lineage cut.

    Why not persist(): a cached plan is recomputed whenever its blocks are lost or another session
    unpersists an equal plan, and recomputing a plan that reads a Delta table after the job's own MERGE
    would see the MERGE's result. What a job decided to change must stay what it decided.
    """
    return df.localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)
