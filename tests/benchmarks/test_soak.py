"""benchmarks/soak.py's own logic: the changes it draws and the check that would report a lost row. The soak
itself runs for half an hour through Airflow; its committed result is benchmarks/results/soak-*.md."""

from __future__ import annotations

import datetime as dt
import random
import re

import pytest

from benchmarks.soak import Day, Expected, Member, main, plan_day, summarize, violations

pytestmark = pytest.mark.unit

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def source(n: int = 1000, dirty: int = 20) -> dict[str, Member]:
    # the first `dirty` members are dirty, every other one of them by a date no new email fixes
    return {f"id{i:04d}": Member(f"Name{i}", f"n{i}@example.com", dirty=i < dirty, fixable=i % 2 == 0)
            for i in range(n)}


def test_a_day_changes_about_the_share_asked_of_existing_and_new_members():
    members = source()
    day = plan_day(random.Random(1), members, 2, 0.05)
    assert 45 <= day.changed <= 60
    assert set(day.deletes) <= members.keys() and not set(day.deletes) & day.updates.keys()
    assert not day.inserts.keys() & members.keys() and all(UUID4.match(k) for k in day.inserts)
    assert any(m.dirty for m in day.inserts.values()) and any(m.dirty for m in day.updates.values())
    fixed = [k for k, m in day.updates.items() if members[k].dirty and not m.dirty]
    assert fixed and all(members[k].fixable for k in fixed), "fixes, never of a row a new email cannot fix"
    # every dirty row is one the job must quarantine (an email with two @), every new value is distinct
    assert all("@@" in m.email for m in [*day.inserts.values(), *day.updates.values()] if m.dirty)
    names = [m.first_name for m in [*day.inserts.values(), *day.updates.values()]]
    assert len(names) == len(set(names)) and not set(names) & {m.first_name for m in members.values()}


def perfect(expected: Expected) -> tuple[dict[str, str], int, set[str], set[str]]:
    member = {k: m.first_name for k, m in expected.valid.items()}
    return member, 0, set(member), expected.dirty_ids


def test_tables_that_match_the_source_show_no_violation_and_each_kind_of_loss_is_counted():
    members = source()
    expected = Expected(members)
    day = plan_day(random.Random(2), members, 2, 0.05)
    before = dict(expected.valid)
    expected.apply(day)
    assert sum(violations(expected, *perfect(expected)).values()) == 0

    member, duplicates, dim, quarantined = perfect(expected)
    lost = next(iter(day.inserts.keys() & expected.valid.keys()))
    stale = next(k for k in day.updates if k in before and not day.updates[k].dirty)
    kept_after_delete = day.deletes[0]
    member = {k: v for k, v in member.items() if k != lost} | {stale: before[stale].first_name,
                                                               kept_after_delete: "Gone"}
    found = violations(expected, member, duplicates + 2, dim, quarantined - {next(iter(expected.dirty_ids))})
    assert found == {"missing": 1, "not_deleted": 1, "stale": 1, "duplicate_keys": 2,
                     "dim_member_current_differs": 2, "dirty_not_quarantined": 1}


def test_a_dirty_update_keeps_the_last_valid_row_expected():
    expected = Expected({"a": Member("Ann", "a@example.com")})
    expected.apply(Day(updates={"a": Member("Bad", "a@@example.com", dirty=True)}))
    assert expected.valid["a"].first_name == "Ann" and expected.dirty_ids == {"a"}


def test_the_summary_counts_lost_rows_and_failed_days():
    days = [{"day": 1, "state": "success", "rows_changed": 10, "violations": {"missing": 0}, "versions_read": 2},
            {"day": 2, "state": "success", "rows_changed": 5, "violations": {"missing": 3},
             "replay_changed_nothing": False},
            {"day": 3, "state": "failed", "rows_changed": 1}]
    report = summarize(days, members=10)
    assert (report["runs"], report["runs_succeeded"], report["rows_changed"], report["rows_lost"]) == (3, 2, 16, 3)
    assert report["days_failing_a_check"] == [2, 3]


@pytest.mark.parametrize(("args", "message"), [
    (["--runs", "0"], "must be at least 1"), (["--members", "0"], "must be at least 1"),
    (["--change", "2"], "a share in (0, 1]"), (["--change", "0"], "a share in (0, 1]"),
    (["--replay-every", "-1"], "are days (0: never)")])
def test_impossible_options_are_refused_before_anything_is_emptied(args, message, capsys):
    with pytest.raises(SystemExit) as refused:
        main(args)
    assert refused.value.code == 2 and message in capsys.readouterr().err


def test_a_result_already_there_is_refused_before_anything_is_emptied(tmp_path, capsys):
    (tmp_path / f"soak-{dt.date.today().isoformat()}.md").write_text("a committed result\n")
    with pytest.raises(SystemExit) as refused:
        main(["--runs", "1", "--out", str(tmp_path)])
    assert refused.value.code == 2 and "already holds soak-" in capsys.readouterr().err
