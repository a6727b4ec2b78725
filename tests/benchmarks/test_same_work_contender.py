"""The same-work contender's partitioning of the JDBC read (benchmarks/same_work_contender.py), without services:
every row must be read by exactly one partition's query, or the contender would load too few or too many."""

import random
import sqlite3
import uuid

import pytest

from benchmarks.same_work_contender import key_predicates


@pytest.mark.unit
def test_each_member_id_falls_in_exactly_one_partition():
    rng = random.Random(1)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(400)]
    ids += [i.upper() for i in ids[:40]] + [None, "", " 0a", "-", "g", "zzz", "ffff", "0", "9~", "@", "é", "\U0001F600"]
    db = sqlite3.connect(":memory:")
    # MySQL's utf8mb4_unicode_ci compares case-insensitively, as NOCASE does for ASCII
    db.execute("CREATE TABLE member (n INTEGER PRIMARY KEY, member_id TEXT COLLATE NOCASE)")
    db.executemany("INSERT INTO member (member_id) VALUES (?)", [(i,) for i in ids])
    seen: dict[int, int] = {}
    for predicate in key_predicates():
        for (n,) in db.execute(f"SELECT n FROM member WHERE {predicate}"):
            seen[n] = seen.get(n, 0) + 1
    assert len(seen) == len(ids) and set(seen.values()) == {1}
    # the key's first hex digit spreads generated ids over 16 partitions, the 17th only catches the rest
    counts = [db.execute(f"SELECT COUNT(*) FROM member WHERE {p}").fetchone()[0] for p in key_predicates()]
    assert len(counts) == 17 and min(counts[:16]) > 0
