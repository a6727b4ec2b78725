"""Fixtures for the whole test suite: the repository root and one local SparkSession per test session."""

from __future__ import annotations

import base64
import logging
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

REPO_ROOT = Path(__file__).resolve().parents[1]

# Jobs run in this process (tests calling lakehouse_jobs.*.main) read their PII keys from the environment,
# as on a cluster: the stack's (`make test` runs pytest with .env loaded; the end-to-end tests need them to
# decrypt what the stack wrote), else fresh random ones. Tests read the values back from os.environ.
for _name in ("LAKEHOUSE_PII_HMAC_KEY", "LAKEHOUSE_PII_ENCRYPTION_KEY"):
    os.environ.setdefault(_name, base64.b64encode(secrets.token_bytes(32)).decode())

# fixtures for the real local services (MariaDB, MinIO, Airflow's API)
pytest_plugins = ["tests.services"]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def spark(repo_root: Path) -> Iterator[SparkSession]:
    """Local Spark with Delta (and S3A when S3_* variables are set), configured as the local runner does."""
    # imported here so that test modules which never touch Spark don't pay for importing it
    from pyspark.sql import SparkSession

    from dev.local_spark import local_spark_conf

    # py4j logs "Closing down clientserver connection" at interpreter exit, after pytest has closed the
    # captured streams; keep it quiet instead of printing a logging traceback
    logging.getLogger("py4j").setLevel(logging.WARNING)
    # Python workers must run this interpreter (the venv), not whatever `python3` is first on PATH
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master("local[2]").appName("tests")
    for key, value in local_spark_conf().items():
        builder = builder.config(key, value)
    # Python workers import lakehouse_jobs (UDFs are pickled by reference) from the venv's editable install
    session = builder.getOrCreate()
    yield session
    session.stop()
