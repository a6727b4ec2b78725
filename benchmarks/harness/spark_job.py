"""Running lakehouse_jobs.member.job (member_merge) in this process, as the job-only benchmarks do: a local session with
the runner's conf, random PII keys in the environment, and the job's own "step <name>: <s> s" log lines."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import re
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.harness.results import package_versions

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

JOB_LOGGER = "lakehouse_jobs.member.job"
STEP_LINE = re.compile(r"^step (\w+): ([0-9.]+) s$")  # lakehouse_jobs.steps.timed


def local_session(driver_memory: str, extra_conf: dict[str, str] | None = None,
                  app_name: str = "member_history_bench") -> SparkSession:
    """local[2] with the conf the local runner and the tests use (dev/local_spark.py), plus `extra_conf`."""
    from pyspark.sql import SparkSession

    from dev.local_spark import local_spark_conf

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (SparkSession.builder.master("local[2]").appName(app_name)
               .config("spark.driver.memory", driver_memory).config("spark.ui.showConsoleProgress", "false"))
    for key, value in (local_spark_conf() | (extra_conf or {})).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def spark_versions(spark: SparkSession) -> dict:
    """Python, Spark, Java, the job's libraries and the Delta jar the session loaded."""
    out = package_versions("pyspark", "delta-spark", "pyarrow", "numpy", "lakehouse-jobs")
    out |= {"spark": spark.version, "java": spark.sparkContext._jvm.System.getProperty("java.version")}
    jars = spark.sparkContext.getConf().get("spark.jars", "")
    out["delta_jar"] = next((Path(j).name for j in jars.split(",") if Path(j).name.startswith("delta-spark")), None)
    return out


class StepTimes(logging.Handler):
    """Collects the job's "step <name>: <seconds> s" lines: {step: seconds summed over its lines}."""

    def __init__(self):
        super().__init__(level=logging.INFO)
        self.steps: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if m := STEP_LINE.match(record.getMessage()):
            self.steps[m[1]] = round(self.steps.get(m[1], 0.0) + float(m[2]), 1)


@contextlib.contextmanager
def job_log(handler: logging.Handler):
    """`handler` on the job's logger at INFO, whatever the root logger's level (pytest leaves it at WARNING),
    kept off the console (the benchmark prints its own line per run); the logger as it was afterwards."""
    logger = logging.getLogger(JOB_LOGGER)
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


@contextlib.contextmanager
def step_times():
    """{step: seconds} of the job's step lines logged inside the block."""
    with job_log(StepTimes()) as handler:
        yield handler.steps


@contextlib.contextmanager
def pii_keys():
    """Random PII keys in the environment while the job runs (it reads them there, as on a cluster); the
    previous values, if any, back afterwards (a test session's other tests use theirs)."""
    from lakehouse_jobs import pii

    names = (pii.HMAC_KEY_ENV, pii.ENCRYPTION_KEY_ENV)
    saved = {n: os.environ.get(n) for n in names}
    for n in names:
        os.environ[n] = base64.b64encode(secrets.token_bytes(pii.KEY_BYTES)).decode()
    try:
        yield
    finally:
        for n, value in saved.items():
            if value is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = value
