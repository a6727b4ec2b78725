"""Change detection in the extract (include/extract/change_set.py): every kind of change a snapshot can hold,
against a state held in memory. No service: the detector works on Arrow batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from include.extract.change_set import ChangeDetector, LoadedState, _as_numpy
from lakehouse_jobs.change_hash import row_hashes
from lakehouse_jobs.change_state import ChangeState
from lakehouse_jobs.delta_log import DeltaLogError, changes_data, last_data_change

pytestmark = pytest.mark.unit

KEY = bytes(32)
COLUMNS = ["member_id", "email"]


def rows(*pairs: tuple[str | None, str | None]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({"member_id": [p[0] for p in pairs], "email": [p[1] for p in pairs]})


def state_of(*pairs: tuple[str, str], quarantined: tuple[tuple[str | None, str], ...] = ()) -> LoadedState:
    """A state as the job writes it: the member_id (its key form) and the hash of each table row, then of
    each quarantined source row."""
    batch = rows(*pairs, *quarantined)
    digests = row_hashes(batch, COLUMNS, "r1", KEY)
    order = pc.sort_indices(digests)
    in_table = np.array([True] * len(pairs) + [False] * len(quarantined))
    meta = ChangeState(table_version=3, rules_version="r1/h1", rows=len(batch), table_rows=len(pairs),
                       duplicate_keys=0, files=[], written_at="")
    return LoadedState(meta, _as_numpy(digests.take(order)), batch.column("member_id").take(order),
                       in_table[order.to_numpy()])


def detect(state: LoadedState, *batches: pa.RecordBatch):
    sent: list[pa.Table] = []
    detector = ChangeDetector(COLUMNS, "member_id", "r1", KEY, state, on_change=sent.append)
    landed = list(detector.stream(iter(batches)))
    outcome = detector.finish()
    sent_rows = pa.concat_tables(sent).select(COLUMNS).to_pylist() if sent else []
    kinds = dict(zip(outcome.key_index["member_id"].to_pylist(), outcome.key_index["change"].to_pylist()))
    return landed, sent_rows, outcome, kinds


def test_unchanged_changed_new_and_deleted_members_are_told_apart():
    state = state_of(("a", "a@x"), ("b", "b@x"), ("c", "c@x"))

    landed, sent, outcome, kinds = detect(state, rows(("a", "a@x"), ("b", "moved@x")), rows(("d", "d@x")))

    assert [r.num_rows for r in landed] == [2, 1] and all("_row_hash" in b.schema.names for b in landed)
    assert sent == [{"member_id": "b", "email": "moved@x"}, {"member_id": "d", "email": "d@x"}]
    assert kinds == {"b": "changed", "d": "new", "c": "deleted"}
    assert outcome.counts == {"new": 1, "changed": 1, "duplicate": 0, "unchanged": 1, "deleted": 1}
    assert len(outcome.reread_keys) == 0


def test_a_key_is_matched_in_its_table_form_so_a_case_change_is_a_change_not_a_new_member():
    state = state_of(("a1", "a@x"))

    _, sent, outcome, kinds = detect(state, rows((" A1 ", "a@x")))

    assert sent == [{"member_id": " A1 ", "email": "a@x"}]
    assert kinds == {"a1": "changed"} and outcome.counts["deleted"] == 0


def test_every_copy_of_a_duplicated_member_id_is_marked_and_unchanged_copies_are_read_back():
    state = state_of(("a", "a@x"), ("b", "b@x"))

    # a: one copy unchanged, one different; b: the same unchanged row twice; n: two new copies
    _, sent, outcome, kinds = detect(state, rows(("a", "a@x"), ("a", "other@x"), ("b", "b@x"), ("b", "b@x"),
                                                 ("n", "1@x"), ("n", "2@x")))

    assert kinds == {"a": "duplicate", "b": "duplicate", "n": "duplicate"}
    assert sorted(outcome.reread_keys.to_pylist()) == ["a", "b"]
    assert len(sent) == 3  # streamed: a's changed copy and both n; the engine adds a's and b's held copies
    assert outcome.counts == {"new": 0, "changed": 0, "duplicate": 6, "unchanged": 0, "deleted": 0}


def test_rows_without_a_usable_key_are_sent_as_new_and_never_delete_anything():
    state = state_of(("a", "a@x"))

    _, sent, outcome, kinds = detect(state, rows(("a", "a@x"), (None, "x@x"), ("  ", "y@x")))

    assert len(sent) == 2 and kinds == {}
    assert outcome.counts == {"new": 2, "changed": 0, "duplicate": 0, "unchanged": 1, "deleted": 0}


def test_an_unchanged_quarantined_row_is_settled_and_one_no_longer_at_the_source_is_gone():
    # "a" is in the table, its newer bad row was quarantined; "q" only ever had a bad row; "r" had one too
    state = state_of(("a", "a@x"), quarantined=(("a", "bad"), ("q", "bad"), ("r", "bad"), (None, "nokey")))

    _, sent, outcome, kinds = detect(state, rows(("a", "bad"), ("q", "bad"), (None, "nokey")))

    assert sent == [] and kinds == {"r": "gone"}  # "a" is not deleted: the source still has it
    assert outcome.counts == {"new": 0, "changed": 0, "duplicate": 0, "unchanged": 3, "deleted": 0}


def test_without_a_state_every_row_is_hashed_and_nothing_is_compared():
    detector = ChangeDetector(COLUMNS, "member_id", "r1", KEY, None)
    [landed] = list(detector.stream(iter([rows(("a", "a@x"))])))
    assert landed.column("_row_hash").equals(row_hashes(rows(("a", "a@x")), COLUMNS, "r1", KEY))


def test_the_row_hash_depends_on_every_value_the_key_and_the_rules_version():
    base = row_hashes(rows(("a", "b|c")), COLUMNS, "r1", KEY)[0]
    assert row_hashes(rows(("a|b", "c")), COLUMNS, "r1", KEY)[0] != base  # no ambiguity across columns
    assert row_hashes(rows(("a", None)), COLUMNS, "r1", KEY)[0] != row_hashes(rows(("a", "-")), COLUMNS, "r1", KEY)[0]
    assert row_hashes(rows(("a", "b|c")), COLUMNS, "r2", KEY)[0] != base
    assert row_hashes(rows(("a", "b|c")), COLUMNS, "r1", bytes([1] * 32))[0] != base
    assert len(base.as_py()) == 32
    many = row_hashes(rows(*[(str(i), None) for i in range(1000)]), COLUMNS, "r1", KEY)
    assert np.unique(_as_numpy(many)).size == 1000


def commit(*actions: dict) -> str:
    import json

    return "\n".join(json.dumps(a) for a in [{"commitInfo": {"operation": "X"}}, *actions])


def test_only_commits_that_add_or_remove_data_count_as_data_changes():
    optimize = commit({"add": {"path": "a", "dataChange": False}}, {"remove": {"path": "b", "dataChange": False}})
    vacuum = commit()
    delete = commit({"remove": {"path": "b", "dataChange": True}})
    assert not changes_data(optimize) and not changes_data(vacuum) and changes_data(delete)

    log = {4: optimize, 5: vacuum}
    assert last_data_change(5, log.get, since=3) == 3
    assert last_data_change(6, {**log, 6: delete}.get, since=3) == 6
    with pytest.raises(DeltaLogError, match="commit 4 is no longer"):
        last_data_change(5, {5: vacuum}.get, since=3)
