"""What every job's main() shares, once: logging, arguments, the session, table paths, the result file.

A job's entry point is then a few lines::

    def main(argv=None, spark=None) -> MemberMergeResult:
        return run_job(MemberMergeParams, run, argv, spark)

where ``run(spark, params, paths)`` is the job itself and returns its result (lakehouse_jobs.results).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from pyspark.sql import SparkSession

from lakehouse_jobs import hadoop_fs
from lakehouse_jobs.results import JobParams, JobResult

P = TypeVar("P", bound=JobParams)
R = TypeVar("R", bound=JobResult)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TablePaths:
    """Where each Delta table lives: ``<tables_root>/<table name>`` (include/layout.py names the same
    folders on the Airflow side)."""

    def __init__(self, tables_root: str):
        self.root = tables_root.rstrip("/")

    def __getitem__(self, table: str) -> str:
        return f"{self.root}/{table}"


def run_job(params_type: type[P], job: Callable[[SparkSession, P, TablePaths], R],
            argv: Sequence[str] | None = None, spark: SparkSession | None = None) -> R:
    """Run `job` as an entry point: log lines as the benchmarks read them (INFO, logger name first),
    `params_type` parsed from `argv` (default sys.argv; SystemExit 2 on bad arguments), the cluster's
    session unless `spark` is given (tests run concurrent jobs in sessions of their own), and the result
    written to the parameters' ``result_path`` last, so its presence means the job finished. Returns the
    result; whatever `job` raises propagates, and then no result file is written.
    """
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    params = params_type.parse(argv)
    spark = spark or SparkSession.builder.getOrCreate()
    result = job(spark, params, TablePaths(params.tables_root))
    hadoop_fs.write_text(spark, params.result_path, result.to_json())
    return result
