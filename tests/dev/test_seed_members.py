"""The member generator and bulk loader (dev/seed_members.py)."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest

from dev.seed_members import COLUMNS, generate_members, load_members, setup_schema

TODAY = dt.date(2026, 11, 26)


@pytest.mark.unit
def test_generation_is_reproducible_and_brief_shaped():
    first = list(generate_members(500, seed=3, today=TODAY))
    assert first == list(generate_members(500, seed=3, today=TODAY))
    assert first != list(generate_members(500, seed=4, today=TODAY))
    assert all(list(row) == list(COLUMNS) for row in first)
    ids = [row["member_id"] for row in first]
    assert len(set(ids)) == 500 and all(uuid.UUID(i).version == 4 for i in ids)
    assert all(TODAY - dt.timedelta(days=730) <= row["registration_date"] <= TODAY for row in first)
    assert all("@" in row["email"] for row in first)
    assert all(isinstance(row[c], str) and row[c] for row in first for c in COLUMNS[1:-1])


@pytest.mark.integration
def test_a_million_members_seed_in_under_a_minute(mysql_env, mysql_root):
    cur = mysql_root.cursor()
    cur.execute("DROP DATABASE IF EXISTS seed_test")
    try:
        setup_schema(mysql_root, "seed_test", mysql_env["MYSQL_EXTRACT_USER"], mysql_env["MYSQL_EXTRACT_PASSWORD"])
        started = time.monotonic()
        loaded = load_members(mysql_root, generate_members(1_000_000, seed=11))
        elapsed = time.monotonic() - started
        cur.execute("SELECT COUNT(*), COUNT(DISTINCT member_id) FROM seed_test.member")
        assert cur.fetchone() == (1_000_000, 1_000_000) and loaded == 1_000_000
        assert elapsed < 60, f"seeding 1M rows took {elapsed:.1f}s"
    finally:
        cur.execute("DROP DATABASE IF EXISTS seed_test")
