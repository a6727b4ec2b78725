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
    """The batch of one daily extraction interval: ``extract_date=YYYY-MM-DD``."""
    return f"extract_date={day:%Y-%m-%d}"


def run_batch_id(at: dt.datetime) -> str:
    """The batch of one DAG run, named by its instant to the second: ``ingest_ts=YYYYMMDDTHHMMSS`` (the
    instant's own clock, as Airflow gives it: UTC)."""
    return f"ingest_ts={at:%Y%m%dT%H%M%S}"
