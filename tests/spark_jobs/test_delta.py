"""Delta helpers (lakehouse_jobs.delta)."""

from __future__ import annotations

import pytest
from delta.exceptions import ConcurrentAppendException

from lakehouse_jobs.delta import retry_on_conflict


@pytest.mark.unit
def test_retry_on_conflict_retries_only_delta_conflicts():
    calls = []

    def conflicts_twice():
        calls.append(1)
        if len(calls) <= 2:
            raise ConcurrentAppendException("a concurrent run appended files")
        return "committed"

    assert retry_on_conflict(conflicts_twice, "test", base_delay_s=0) == "committed"
    assert len(calls) == 3

    calls.clear()

    def always_conflicts():
        calls.append(1)
        raise ConcurrentAppendException("a concurrent run appended files")

    with pytest.raises(ConcurrentAppendException):
        retry_on_conflict(always_conflicts, "test", attempts=3, base_delay_s=0)
    assert len(calls) == 3

    calls.clear()

    def fails():
        calls.append(1)
        raise ValueError("not a conflict")

    with pytest.raises(ValueError):
        retry_on_conflict(fails, "test", base_delay_s=0)
    assert len(calls) == 1


# -------------------------------------------------------------------------------- unit: DataFrames
