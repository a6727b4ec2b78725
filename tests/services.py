"""Fixtures for the real local services (MariaDB, MinIO, Airflow's API) that `make test` starts.

A missing service is a test failure that says what is missing and how to start it, never a skip.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import boto3
import MySQLdb
import pytest

from dev.airflow_api import AirflowApi

REPO_ROOT = Path(__file__).resolve().parents[1]
START_HINT = "run the suite with `make test` (it installs and starts the local stack), or `make up` first"


def require_env(*names: str) -> dict[str, str]:
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.fail(f"environment variable(s) {missing} not set: {START_HINT}", pytrace=False)
    return {n: os.environ[n] for n in names}


def require_port(name: str, host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        pytest.fail(f"{name} is not reachable at {host}:{port} ({exc}): {START_HINT}", pytrace=False)


@pytest.fixture(scope="session")
def mysql_env() -> dict[str, str]:
    env = require_env("MYSQL_HOST", "MYSQL_PORT", "MYSQL_DATABASE", "MYSQL_ROOT_PASSWORD",
                      "MYSQL_EXTRACT_USER", "MYSQL_EXTRACT_PASSWORD")
    require_port("MariaDB", env["MYSQL_HOST"], int(env["MYSQL_PORT"]))
    return env


def mysql_connect(env: dict[str, str], user: str, password: str, database: str | None = None):
    """A connection to `database`, else to none (statements name their database)."""
    return MySQLdb.connect(host=env["MYSQL_HOST"], port=int(env["MYSQL_PORT"]), user=user, password=password,
                           charset="utf8mb4", local_infile=1, **({"database": database} if database else {}))


@pytest.fixture(scope="session")
def mysql_root(mysql_env):
    """root, on no database: the end-to-end tests drop and re-create the test profile's while others run."""
    conn = mysql_connect(mysql_env, "root", mysql_env["MYSQL_ROOT_PASSWORD"])
    conn.autocommit(True)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def s3_env() -> dict[str, str]:
    env = require_env("S3_ENDPOINT_URL", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY",
                      "LANDING_BUCKET", "LAKEHOUSE_BUCKET")
    hostport = env["S3_ENDPOINT_URL"].split("//", 1)[1]
    host, port = hostport.rsplit(":", 1)
    require_port("the S3 server (MinIO)", host, int(port))
    return env


@pytest.fixture(scope="session")
def s3(s3_env):
    return boto3.client("s3", endpoint_url=s3_env["S3_ENDPOINT_URL"],
                        aws_access_key_id=s3_env["S3_ACCESS_KEY_ID"],
                        aws_secret_access_key=s3_env["S3_SECRET_ACCESS_KEY"],
                        region_name=os.environ.get("S3_REGION", "us-east-1"))


@pytest.fixture
def scratch_bucket(s3, request):
    """An empty bucket of its own for one test. Unlike the real buckets it has NO default encryption,
    so a test sees only the encryption the writer asked for."""
    name = "test-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:50].strip("-")
    empty_bucket(s3, name)
    try:
        s3.create_bucket(Bucket=name)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    yield name
    empty_bucket(s3, name)
    s3.delete_bucket(Bucket=name)


def empty_bucket(s3, name: str) -> None:
    """Delete every object and pending multipart upload of bucket `name` (a no-op when it does not exist)."""
    try:
        s3.head_bucket(Bucket=name)
    except Exception:
        return
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        # a page holds at most 1,000 keys, what one DeleteObjects request takes
        if keys := [{"Key": obj["Key"]} for obj in page.get("Contents", [])]:
            s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=name):
        for up in page.get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])


DEMO_NAMES = ("MYSQL_DATABASE", "LANDING_BUCKET", "LAKEHOUSE_BUCKET", "AIRFLOW_API_PORT")


def demo_profile_names() -> dict[str, str]:
    """The database, buckets and Airflow port of the stack's demo profile (`make demo`), as dev/stack.sh gives
    them to the demo's processes: DEMO_NAMES -> value. Raises CalledProcessError when the stack script fails."""
    out = subprocess.run([str(REPO_ROOT / "dev" / "stack.sh"), "run", "printenv", *DEMO_NAMES],
                         env={**os.environ, "LAKEHOUSE_PROFILE": "demo"}, capture_output=True, text=True, check=True)
    return dict(zip(DEMO_NAMES, out.stdout.split(), strict=True))


def demo_data(mysql_root, s3, demo: dict[str, str]) -> dict[str, dict]:
    """A fingerprint of the demo profile's data: {"mysql": table -> CHECKSUM TABLE of the demo database,
    "s3": "bucket/key" -> (ETag, size) of every object of the demo buckets}. What does not exist is absent."""
    cur = mysql_root.cursor()
    tables = {}
    database = demo["MYSQL_DATABASE"]
    if cur.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (database,)):
        cur.execute(f"SHOW TABLES FROM `{database}`")
        for (table,) in cur.fetchall():
            cur.execute(f"CHECKSUM TABLE `{database}`.`{table}`")
            tables[table] = cur.fetchone()[1]
    objects = {}
    for bucket in (demo["LANDING_BUCKET"], demo["LAKEHOUSE_BUCKET"]):
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                objects |= {f"{bucket}/{o['Key']}": (o["ETag"], o["Size"]) for o in page.get("Contents", [])}
        except s3.exceptions.NoSuchBucket:
            pass
    return {"mysql": tables, "s3": objects}


def demo_airflow_active_since(demo: dict[str, str], since: str) -> bool:
    """Whether the demo profile's Airflow had a DAG run going at any time since `since` (ISO 8601, UTC): its
    scheduled runs rightly change the demo's buckets. False when it is not running."""
    try:
        socket.create_connection(("127.0.0.1", int(demo["AIRFLOW_API_PORT"])), timeout=3).close()
    except OSError:
        return False
    api = AirflowApi(base_url=f"http://127.0.0.1:{demo['AIRFLOW_API_PORT']}")
    active = api.get("dags/~/dagRuns?state=queued&state=running&limit=1").json()["total_entries"]
    ended = api.get(f"dags/~/dagRuns?end_date_gte={since}&limit=1").json()["total_entries"]
    return bool(active or ended)
