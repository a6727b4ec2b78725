"""Routine maintenance of the Delta tables: compact small files (OPTIMIZE) and remove files that no version
within the retention window uses (VACUUM).

Entry point `table_maintenance` of the jobs wheel, run by the DAG `lakehouse_maintenance` after the member
pipeline has updated the tables, in the Airflow pool that keeps it from running beside a MERGE (a
conflicting commit would still be retried: lakehouse_jobs.delta.retry_on_conflict).

VACUUM never goes below the 7-day safety retention here (MIN_RETAIN_HOURS, Delta's default
`delta.deletedFileRetentionDuration`): a reader or writer that started before the VACUUM may still need a
file of a version up to a week old. Only the erasure job (lakehouse_jobs.member_erasure) goes below it.
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from lakehouse_jobs import hadoop_fs
from lakehouse_jobs.delta import retry_on_conflict
from lakehouse_jobs.tables import TABLES

log = logging.getLogger(__name__)

MIN_RETAIN_HOURS = 7 * 24


def maintain(spark: SparkSession, path: str, retain_hours: float) -> dict[str, int]:
    """OPTIMIZE then VACUUM one table; its number of data files before and after (Delta's detail())."""
    table = DeltaTable.forPath(spark, path)
    before = table.detail().first()["numFiles"]
    retry_on_conflict(lambda: table.optimize().executeCompaction(), f"OPTIMIZE {path}")
    table.vacuum(retain_hours)
    return {"files_before": before, "files_after": DeltaTable.forPath(spark, path).detail().first()["numFiles"]}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="table_maintenance", description=__doc__.splitlines()[0])
    parser.add_argument("--tables-root", required=True, help="where the Delta tables live")
    parser.add_argument("--retain-hours", type=float, default=MIN_RETAIN_HOURS,
                        help=f"VACUUM retention, at least {MIN_RETAIN_HOURS} (7 days)")
    parser.add_argument("--result-path", required=True, help="JSON file of counts, written last")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> dict[str, Any]:
    """The job: every declared table that exists under --tables-root; returns (and writes) files before and
    after per table. Raises ValueError for --retain-hours below 7 days."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    if args.retain_hours < MIN_RETAIN_HOURS:
        raise ValueError(f"--retain-hours {args.retain_hours} is below the 7-day safety retention "
                         f"({MIN_RETAIN_HOURS} h); only the erasure job may go below it")
    spark = spark or SparkSession.builder.getOrCreate()
    result = {}
    for name in TABLES:
        path = f"{args.tables_root.rstrip('/')}/{name}"
        if DeltaTable.isDeltaTable(spark, path):
            result[name] = maintain(spark, path, args.retain_hours)
            log.info("%s: %s", name, result[name])
    hadoop_fs.write_text(spark, args.result_path, json.dumps(result, sort_keys=True))
    return result
