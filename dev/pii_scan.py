"""Look for the source's plaintext personal data in the lakehouse's Delta tables, the way an auditor would:
every object under each table's prefix (the data files of every retained version, deletion vectors, the
log and its checkpoints), searched for every email, phone number and street address of the MySQL
`member` table. Used by `make demo` (dev/demo.py) and by tests/e2e/test_member_pipeline_e2e.py.

Parquet files are decoded first (their pages are compressed, so a raw byte search would miss plaintext);
every string and binary value in them, nested ones included, is searched. Other objects are searched as
raw bytes. Values shorter than MIN_LENGTH are not searched for: a 3-character address could match by
chance inside ciphertext.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import MySQLdb
import pyarrow.parquet as pq

from dev.bootstrap import s3_client
from include import layout, settings

PROTECTED_TABLES = ("member", "dim_member", "member_quarantine")
SEARCHED_COLUMNS = ("email", "phone_number", "address")
MIN_LENGTH = 6


@dataclass
class ScanReport:
    objects: int = 0
    values_searched: int = 0
    found: dict[str, list[str]] = field(default_factory=dict)  # object key -> source columns found in it


def source_values() -> dict[bytes, str]:
    """{value as UTF-8 (and its lower-case form): the column it came from} for every searched column of
    the MySQL member table."""
    conn = MySQLdb.connect(host=os.environ["MYSQL_HOST"], port=int(os.environ["MYSQL_PORT"]),
                           user=os.environ["MYSQL_EXTRACT_USER"], password=os.environ["MYSQL_EXTRACT_PASSWORD"],
                           database=os.environ["MYSQL_DATABASE"], charset="utf8mb4")
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT {', '.join(SEARCHED_COLUMNS)} FROM member")
        values: dict[bytes, str] = {}
        for row in cur.fetchall():
            for column, value in zip(SEARCHED_COLUMNS, row):
                for form in {value.strip(), value.strip().lower()} if value else ():
                    if len(form) >= MIN_LENGTH:
                        values[form.encode()] = column
        return values
    finally:
        conn.close()


def _strings(value: object) -> Iterator[bytes]:
    if isinstance(value, str):
        yield value.encode()
    elif isinstance(value, bytes):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def searchable(key: str, body: bytes) -> bytes:
    """The bytes to search in one object: every string and binary value of a Parquet file, one per line,
    or the object itself."""
    if not key.endswith(".parquet"):
        return body
    return b"\n".join(_strings(pq.read_table(io.BytesIO(body)).to_pylist()))


def scan(values: dict[bytes, str], tables: Iterable[str] = PROTECTED_TABLES, s3=None) -> ScanReport:
    """Search every object of each Delta table in the lakehouse bucket for each of `values`."""
    s3 = s3 or s3_client()
    report = ScanReport(values_searched=len(values))
    for table in tables:
        prefix = layout.delta_table_key(table) + "/"
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.LAKEHOUSE_BUCKET, Prefix=prefix):
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=settings.LAKEHOUSE_BUCKET, Key=obj["Key"])["Body"].read()
                text = searchable(obj["Key"], body)
                report.objects += 1
                hits = sorted({column for value, column in values.items() if value in text})
                if hits:
                    report.found[obj["Key"]] = hits
    return report
