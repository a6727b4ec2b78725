"""The local stack's environment as the benchmarks use it: variables (`dev/stack.sh run` sets them), the
MySQL root connection, MySQL URLs for the extract user, the S3 client, and redaction of its secrets."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import quote

SECRETS = ("MYSQL_EXTRACT_PASSWORD", "MYSQL_ROOT_PASSWORD", "S3_SECRET_ACCESS_KEY", "DATABRICKS_TOKEN",
           "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_METADATA_PASSWORD", "LAKEHOUSE_PII_HMAC_KEY",
           "LAKEHOUSE_PII_ENCRYPTION_KEY")


def env(name: str, default: str | None = None) -> str:
    """The variable's value, else `default`; exits with a message when neither is set."""
    value = os.environ.get(name, default)
    if value is None:
        sys.exit(f"{name} is not set: run the benchmark through the stack, "
                 "e.g. `dev/stack.sh run python -m benchmarks.member_daily --quick`")
    return value


def connect_root(database: str = "", autocommit: bool = False):
    """A MySQLdb connection as root (utf8mb4, LOCAL INFILE allowed, as dev/seed_members.py loads)."""
    import MySQLdb

    conn = MySQLdb.connect(host=env("MYSQL_HOST", "127.0.0.1"), port=int(env("MYSQL_PORT")), user="root",
                           password=env("MYSQL_ROOT_PASSWORD"), database=database, charset="utf8mb4", local_infile=1)
    if autocommit:
        conn.autocommit(True)
    return conn


def mysql_url(database: str, scheme: str = "mysql", query: str = "") -> str:
    """`database` as a URL for the extract user (ConnectorX, an Airflow connection); credentials URL-quoted."""
    auth = f"{quote(env('MYSQL_EXTRACT_USER'), safe='')}:{quote(env('MYSQL_EXTRACT_PASSWORD'), safe='')}"
    return f"{scheme}://{auth}@{env('MYSQL_HOST', '127.0.0.1')}:{env('MYSQL_PORT')}/{database}{query}"


def s3_client():
    """A boto3 S3 client for the stack's MinIO."""
    import boto3

    return boto3.client("s3", endpoint_url=env("S3_ENDPOINT_URL"), region_name=env("S3_REGION", "us-east-1"),
                        aws_access_key_id=env("S3_ACCESS_KEY_ID"), aws_secret_access_key=env("S3_SECRET_ACCESS_KEY"))


def redact(text: str) -> str:
    """`text` with the value of every secret variable that is set replaced by ***."""
    for name in SECRETS:
        if os.environ.get(name):
            text = text.replace(os.environ[name], "***")
    return text


def log_tail(path: Path, limit: int = 3000) -> str:
    """The last `limit` characters of a log, redacted; "" when it cannot be read."""
    try:
        return redact(path.read_text(errors="replace")[-limit:])
    except OSError:
        return ""
