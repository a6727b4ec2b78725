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


@pytest.mark.integration
def test_a_constraint_that_grew_is_replaced_once_and_a_narrower_one_fails_loudly(spark, tmp_path):
    """A table created with an older list of reason codes takes the declared list (issue 23 item 5 added two
    invoice quarantine reasons); a table already as declared gets no commit; a constraint its rows break is
    refused, and the table keeps its own."""
    from delta.tables import DeltaTable

    from lakehouse_jobs import delta
    from lakehouse_jobs.tables import Field, TableSpec

    path = str(tmp_path / "t")

    def ensure(*reasons: str) -> int:
        spec = TableSpec(name="t", description="test", fields=(Field("reason", "STRING", nullable=False),),
                         constraints={"reason_known": "reason IN ({})".format(", ".join(f"'{r}'" for r in reasons))})
        delta._ENSURED.discard(path)
        delta.ensure_table(spark, spec, path)
        return DeltaTable.forPath(spark, path).history(1).first()["version"]

    created = ensure("a")
    spark.sql(f"INSERT INTO delta.`{path}` VALUES ('a')")
    grown = ensure("a", "b")
    assert grown > created + 1
    spark.sql(f"INSERT INTO delta.`{path}` VALUES ('b')")  # allowed now
    inserted = DeltaTable.forPath(spark, path).history(1).first()["version"]
    assert ensure("a", "b") == inserted  # as declared: nothing committed
    with pytest.raises(delta.TableDeclarationError, match="has rows that break the declared constraint"):
        ensure("b")
    kept = DeltaTable.forPath(spark, path).detail().first()["properties"]["delta.constraints.reason_known"]
    assert kept.replace(" ", "") == "reasonIN('a','b')"  # Delta keeps an added one's tokens spaced out
