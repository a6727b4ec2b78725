"""Incremental extracts: which rows a batch covers, by a watermark column such as `updated_at`.

A batch covers `low < column <= high`:
- `high` is MAX(column) when the run starts, so rows committed during the run belong to the next batch;
- `low` is the durable high-watermark of the last published batch minus an overlap, because a
  transaction that commits late can carry an `updated_at` older than rows already extracted. Rows read
  twice are harmless: the MERGE downstream upserts by key.
- A re-run of a batch keeps the `low` its first run used, so it never covers less than before.
- A backfill passes `low`/`high` explicitly and leaves the stored high-watermark as it is, unless it
  reaches past it.

The high-watermark lives next to the batches, `s3://<landing>/<table>/_state/high_watermark.json`, and
is written after the batch's manifest: a crash in between only makes the next run read a little more.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class WatermarkRange:
    column: str
    low: dt.datetime | None  # exclusive; None: from the beginning
    high: dt.datetime | None  # inclusive; None: the table is empty

    def where_sql(self) -> str:
        """SQL condition. Values are datetimes we produced, formatted here, never user text."""
        if self.high is None:
            return "FALSE"
        cond = f"`{self.column}` <= '{self.high:%Y-%m-%d %H:%M:%S.%f}'"
        if self.low is not None:
            cond = f"`{self.column}` > '{self.low:%Y-%m-%d %H:%M:%S.%f}' AND " + cond
        return cond

    def as_json(self) -> dict:
        return {"column": self.column, "low": self.low and self.low.isoformat(),
                "high": self.high and self.high.isoformat()}


def state_key(table: str) -> str:
    return f"{table}/_state/high_watermark.json"


def read_high_watermark(s3, bucket: str, table: str) -> dt.datetime | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=state_key(table))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return dt.datetime.fromisoformat(json.loads(body)["high_watermark"])


def write_high_watermark(s3, bucket: str, table: str, high: dt.datetime, extra_args: dict) -> None:
    current = read_high_watermark(s3, bucket, table)
    if current is not None and current >= high:
        return  # a backfill of an older interval never moves the watermark back
    s3.put_object(Bucket=bucket, Key=state_key(table), ContentType="application/json", **extra_args,
                  Body=json.dumps({"high_watermark": high.isoformat()}).encode())


def source_max(conn, table: str, column: str) -> dt.datetime | None:
    cur = conn.cursor()
    cur.execute(f"SELECT MAX(`{column}`) FROM `{table}`")
    (value,) = cur.fetchone()
    cur.close()
    return value


def plan_range(conn, s3, bucket: str, table: str, column: str, *, overlap: dt.timedelta,
               previous_low: dt.datetime | None, low: dt.datetime | None = None,
               high: dt.datetime | None = None, rerun: bool = False) -> WatermarkRange:
    """The range a run extracts: explicit bounds (backfill) win; a re-run keeps its first low."""
    if high is None:
        high = source_max(conn, table, column)
    if low is None:
        if rerun:
            low = previous_low
        else:
            stored = read_high_watermark(s3, bucket, table)
            low = stored - overlap if stored is not None else None
    return WatermarkRange(column, low, high)
