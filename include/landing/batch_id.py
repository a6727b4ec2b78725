"""Batch ids: the one place a landed batch gets its name, ``<table>/<batch_id>/`` in the landing bucket.

A batch id is a Hive-style ``key=value`` folder naming the interval the batch covers, so re-running a DAG
run (or a task's retry) names, and replaces, the same batch:

    daily_batch_id(day)        extract_date=2026-11-26       one per day: member_pipeline's scheduled runs,
                                                             `python -m include.extract`
    run_batch_id(at)           ingest_ts=20261126T130000     one per DAG run: member_pipeline's other runs,
                                                             invoice_pipeline (claim, member cards)

A DAG task gets its instant from `interval_end(context)`. A snapshot source (member) holds its rows as they
are now, so `snapshot_batch_id` refuses an interval that has passed: a backfill or an old logical date would
land today's rows under that day's name and replace what that day's run landed and recorded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping


def interval_end(context: Mapping) -> dt.datetime:
    """The instant a DAG run's batches are named by: its data interval's end, or, for a manual run that has
    no data interval, when it was triggered (`dag_run.run_after`). `context`: the task's Airflow context."""
    return context.get("data_interval_end") or context["dag_run"].run_after


class PastIntervalError(ValueError):
    """A run asked a snapshot source for an interval that has passed; the message says what to do instead."""


# how late a scheduled run's extract may still run (a retry, a cleared run): one schedule period, @daily
SNAPSHOT_MAX_LAG = dt.timedelta(days=1)


def snapshot_batch_id(run_type: str, end: dt.datetime, now: dt.datetime,
                      max_lag: dt.timedelta = SNAPSHOT_MAX_LAG) -> str:
    """The batch a DAG run lands from a snapshot source: a scheduled run's day (`daily_batch_id` of `end`'s
    UTC date), any other run's own instant (`run_batch_id(end)`: two manual runs of one day never replace
    each other's batch, nor the scheduled run's).

    `run_type`: the DAG run's type ("scheduled", "manual", "backfill", "asset_triggered"); `end`: its
    `interval_end`; `now`: the current time, aware. Raises PastIntervalError when `end` is more than
    `max_lag` before `now` (a backfill, a manual run with an old logical date, a run cleared days later).
    """
    if now - end > max_lag:
        raise PastIntervalError(
            f"this {run_type} run is for the interval ending {end.isoformat()}, more than {max_lag} ago, but the "
            "source is a snapshot: it holds its rows as they are now, and would land them under that day's name, "
            "replacing what that day's run landed. Trigger a new run instead (`airflow dags trigger "
            "member_pipeline`, no logical date); the lakehouse keeps history by extraction time (dim_member).")
    if run_type == "scheduled":
        return daily_batch_id(end.astimezone(dt.timezone.utc).date())
    return run_batch_id(end)


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
