"""Batch ids: the one place a landed batch gets its name, ``<table>/<batch_id>/`` in the landing bucket.

A batch id is a Hive-style ``key=value`` folder naming the interval the batch covers, so re-running a DAG
run (or a task's retry) names, and replaces, the same batch:

    daily_batch_id(day)        extract_date=2026-11-26       one per day: member_pipeline, `python -m include.extract`
    run_batch_id(at)           ingest_ts=20261126T130000     one per DAG run: invoice_pipeline (claim, member cards)

A DAG task gets its instant from `interval_end(context)`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping


def interval_end(context: Mapping) -> dt.datetime:
    """The instant a DAG run's batches are named by: its data interval's end, or, for a manual run that has
    no data interval, when it was triggered (`dag_run.run_after`). `context`: the task's Airflow context."""
    return context.get("data_interval_end") or context["dag_run"].run_after


def daily_batch_id(day: dt.date) -> str:
    """The batch of one daily extraction interval: ``extract_date=YYYY-MM-DD``. Raises TypeError for
    anything but a date."""
    if not isinstance(day, dt.date):
        raise TypeError(f"a batch's day must be a date, not {type(day).__name__}")
    return f"extract_date={day.isoformat()[:10]}"


def run_batch_id(at: dt.datetime) -> str:
    """The batch of one DAG run, named by its instant in UTC to the second: ``ingest_ts=YYYYMMDDTHHMMSS``.
    The same instant written with another offset names the same batch. Raises ValueError for a naive
    datetime (its instant is unknown) and TypeError for anything but a datetime."""
    if not isinstance(at, dt.datetime):
        raise TypeError(f"a run's instant must be a datetime, not {type(at).__name__}")
    if at.utcoffset() is None:
        raise ValueError(f"{at!r} has no time zone: a batch is named by an instant in UTC")
    utc = at.astimezone(dt.timezone.utc)
    return f"ingest_ts={utc.year:04d}{utc:%m%dT%H%M%S}"
