"""Fixtures for the whole test suite: the repository root, one local SparkSession per test session, and the
check that a session on the stack's test profile leaves the demo's data as it found it."""

from __future__ import annotations

import base64
import datetime as dt
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


@pytest.fixture(scope="session", autouse=True)
def demo_data_untouched(request) -> Iterator[None]:
    """On the test profile (`make test`), with any test that uses services: the demo profile's database and
    buckets hold at the end of the session exactly what they held at its start (tests/services.demo_data).
    The buckets are compared only when the demo's own Airflow ran nothing meanwhile: its scheduled runs rightly
    change them. A difference fails the session's last test, at its teardown."""
    items = request.session.items
    if os.environ.get("LAKEHOUSE_PROFILE") != "test" or all(i.get_closest_marker("unit") for i in items):
        yield
        return
    # not at the top: pytest_plugins imports tests.services after this module, so that its asserts are rewritten
    from tests.services import demo_airflow_active_since, demo_data, demo_profile_names

    mysql_root, s3 = request.getfixturevalue("mysql_root"), request.getfixturevalue("s3")
    demo = demo_profile_names()
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = demo_data(mysql_root, s3, demo)
    yield
    after = demo_data(mysql_root, s3, demo)
    changed = [part for part in ("mysql", "s3") if after[part] != before[part]]
    if "s3" in changed and demo_airflow_active_since(demo, started):
        changed.remove("s3")
    if changed:
        pytest.fail(f"the suite changed the demo's data ({', '.join(changed)}): database {demo['MYSQL_DATABASE']}, "
                    f"buckets {demo['LANDING_BUCKET']}, {demo['LAKEHOUSE_BUCKET']}", pytrace=False)
