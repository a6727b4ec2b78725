"""Fixtures for the real local services (MariaDB, MinIO, Airflow's API) that `make test` starts.

A missing service is a test failure that says what is missing and how to start it, never a skip.
"""

from __future__ import annotations

import os
import re
import socket

import boto3
import MySQLdb
import pytest

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
    return MySQLdb.connect(host=env["MYSQL_HOST"], port=int(env["MYSQL_PORT"]), user=user,
                           password=password, database=database or env["MYSQL_DATABASE"],
                           charset="utf8mb4", local_infile=1)


@pytest.fixture(scope="session")
def mysql_root(mysql_env):
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
    try:
        s3.head_bucket(Bucket=name)
    except Exception:
        return
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=obj["Key"])
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=name):
        for up in page.get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
