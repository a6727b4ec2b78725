"""Batch ids (include/landing/batch_id.py): the one place a landed batch gets its name."""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace

import pytest

from include.landing.batch_id import (
    SNAPSHOT_MAX_LAG,
    PastIntervalError,
    daily_batch_id,
    interval_end,
    run_batch_id,
    snapshot_batch_id,
)
from lakehouse_jobs.manifest import BATCH_ID_PATTERN

pytestmark = pytest.mark.unit

END = dt.datetime(2026, 11, 26, 13, 5, 9, 123456, tzinfo=dt.timezone.utc)


def test_a_scheduled_run_is_named_by_its_interval_end_a_manual_run_by_when_it_was_triggered():
    triggered = dt.datetime(2026, 11, 27, 8, tzinfo=dt.timezone.utc)
    dag_run = SimpleNamespace(run_after=triggered)
    assert interval_end({"data_interval_end": END, "dag_run": dag_run}) == END
    assert interval_end({"data_interval_end": None, "dag_run": dag_run}) == triggered
    assert interval_end({"dag_run": dag_run}) == triggered


def test_daily_and_per_run_ids_are_hive_style_and_pass_the_manifest_check():
    assert daily_batch_id(END.date()) == "extract_date=2026-11-26"
    assert run_batch_id(END) == "ingest_ts=20261126T130509"  # to the second: a retry names the same batch
    for batch_id in (daily_batch_id(END.date()), run_batch_id(END)):
        assert re.match(BATCH_ID_PATTERN, batch_id)


def test_an_instant_is_named_in_utc_whatever_its_offset():
    paris = dt.timezone(dt.timedelta(hours=1))
    assert run_batch_id(END.astimezone(paris)) == run_batch_id(END) == "ingest_ts=20261126T130509"
    assert run_batch_id(dt.datetime(999, 1, 2, tzinfo=dt.timezone.utc)) == "ingest_ts=09990102T000000"
    assert daily_batch_id(dt.date(999, 1, 2)) == "extract_date=0999-01-02"


@pytest.mark.parametrize(("namer", "value", "error"), [
    (run_batch_id, dt.datetime(2026, 11, 26, 13), ValueError),  # naive: which instant?
    (run_batch_id, dt.date(2026, 11, 26), TypeError),
    (run_batch_id, "2026-11-26T13:00:00+00:00", TypeError),
    (daily_batch_id, "2026-11-26", TypeError),
])
def test_what_is_not_an_instant_or_a_day_is_refused(namer, value, error):
    with pytest.raises(error):
        namer(value)


def test_a_snapshot_batch_is_the_scheduled_runs_day_or_any_other_runs_own_instant():
    """Two manual runs of one day, and a manual run beside the scheduled one, never share a batch (issue 23
    item 3): each lands and records its own."""
    now = END + dt.timedelta(hours=2)
    assert snapshot_batch_id("scheduled", END, now) == "extract_date=2026-11-26"
    assert snapshot_batch_id("manual", END, now) == "ingest_ts=20261126T130509"
    assert snapshot_batch_id("manual", END + dt.timedelta(seconds=1), now) == "ingest_ts=20261126T130510"
    assert snapshot_batch_id("asset_triggered", END, now) == run_batch_id(END)


@pytest.mark.parametrize("run_type", ["backfill", "manual", "scheduled"])
def test_a_snapshot_source_refuses_an_interval_that_has_passed(run_type):
    """A snapshot holds today's rows: landing them under a past day's name would replace that day's batch."""
    now = END + SNAPSHOT_MAX_LAG + dt.timedelta(seconds=1)
    with pytest.raises(PastIntervalError, match=r"interval ending 2026-11-26T13:05:09.123456\+00:00, more than "
                                                r"1 day, 0:00:00 ago, but the source is a snapshot.*Trigger a new run"):
        snapshot_batch_id(run_type, END, now)
    # a retry or a cleared run within one schedule period still names its own batch
    assert snapshot_batch_id(run_type, END, END + SNAPSHOT_MAX_LAG).endswith(("2026-11-26", "T130509"))
