"""Routine maintenance of the Delta tables: compact small files (OPTIMIZE) and remove files that no version
within the retention window uses (VACUUM).

Entry point `table_maintenance` of the jobs wheel, run by the DAG `lakehouse_maintenance` after the member
pipeline or the invoice pipeline has updated its tables, on every table of both (MAINTAINED_TABLES), in
the Airflow pool that keeps it from running beside a member MERGE (a conflicting commit, such as an
invoice load's, is retried: lakehouse_jobs.delta.retry_on_conflict).

VACUUM never goes below the 7-day safety retention here (MIN_RETAIN_HOURS, Delta's default
`delta.deletedFileRetentionDuration`): a reader or writer that started before the VACUUM may still need a
file of a version up to a week old. Only the erasure job (lakehouse_jobs.member.erasure) goes below it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from lakehouse_jobs.delta import retry_on_conflict
from lakehouse_jobs.entry import TablePaths, run_job
from lakehouse_jobs.invoice.tables import INVOICE_TABLES
from lakehouse_jobs.results import MaintenanceParams, MaintenanceResult
from lakehouse_jobs.tables import TABLES

# the member tables and the invoice star schema: every table the jobs write under --tables-root
MAINTAINED_TABLES = TABLES | INVOICE_TABLES

log = logging.getLogger(__name__)


def maintain(spark: SparkSession, path: str, retain_hours: float) -> dict[str, int]:
    """OPTIMIZE then VACUUM one table; its number of data files before and after (Delta's detail())."""
    table = DeltaTable.forPath(spark, path)
    before = table.detail().first()["numFiles"]
    retry_on_conflict(lambda: table.optimize().executeCompaction(), f"OPTIMIZE {path}")
    table.vacuum(retain_hours)
    return {"files_before": before, "files_after": DeltaTable.forPath(spark, path).detail().first()["numFiles"]}


def main(argv: Sequence[str] | None = None, spark: SparkSession | None = None) -> MaintenanceResult:
    """The entry point: run_job(MaintenanceParams, maintain_all); `spark` for tests (lakehouse_jobs.entry)."""
    return run_job(MaintenanceParams, maintain_all, argv, spark)


def maintain_all(spark: SparkSession, params: MaintenanceParams, paths: TablePaths) -> MaintenanceResult:
    """Every table of MAINTAINED_TABLES that exists under --tables-root: files before and after per table.
    The retention's floor (7 days) is checked when the parameters are parsed (results.retention_hours)."""
    result = {}
    for name in MAINTAINED_TABLES:
        if DeltaTable.isDeltaTable(spark, paths[name]):
            result[name] = maintain(spark, paths[name], params.retain_hours)
            log.info("%s: %s", name, result[name])
    return MaintenanceResult(tables=result)
