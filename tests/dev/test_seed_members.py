"""The member generator and bulk loader (dev/seed_members.py)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from dev.seed_members import COLUMNS, generate_members, load_members, setup_schema
from lakehouse_jobs.standardise import country_to_code, email_to_normalised, phone_to_e164

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


@pytest.mark.unit
def test_every_member_has_an_email_and_a_phone_number_of_its_own():
    """Rule: in 50,000 generated rows no email and no phone number occurs twice, as written nor in its
    standardised form (checked on the first 5,000 rows: email-validator's normalised address, the E.164
    number where valid), while names, cities and countries still repeat as in real data. A per-value cache
    of the rules would then save nothing a real table would not let it save (issue 22). The old generator
    drew both from pools of Faker values and repeats them here at once. The pool is small only to keep the
    test quick: uniqueness does not depend on it."""
    rows = list(generate_members(50_000, seed=5, pool=2_000, today=TODAY))
    assert len({r["email"] for r in rows}) == len(rows)
    assert len({r["phone_number"] for r in rows}) == len(rows)
    assert len({r["country"] for r in rows}) < 300 and len({r["last_name"] for r in rows}) <= 2_000
    sample = rows[:5_000]
    emails = [email_to_normalised(r["email"]) for r in sample]
    assert all(error is None for _, error in emails), "every generated address is valid"
    assert len({email.lower() for email, _ in emails}) == len(sample)
    phones = [e for e in (phone_to_e164(r["phone_number"], country_to_code(r["country"])) for r in sample) if e]
    assert len(set(phones)) == len(phones)
    # the mix of usable and unusable phone numbers stays Faker's (55% valid at seed 42 before the change)
    assert 0.45 < len(phones) / len(sample) < 0.65


@pytest.mark.integration
def test_seeded_members_all_load_with_distinct_ids(mysql_env, mysql_root):
    # no timing here (benchmarks are separate from tests; benchmarks/member_daily seeds 1M and 5M): this checks that
    # the bulk load loses and repeats nothing
    cur = mysql_root.cursor()
    cur.execute("DROP DATABASE IF EXISTS seed_test")
    try:
        setup_schema(mysql_root, "seed_test", mysql_env["MYSQL_EXTRACT_USER"], mysql_env["MYSQL_EXTRACT_PASSWORD"])
        loaded = load_members(mysql_root, generate_members(50_000, seed=11))
        cur.execute("SELECT COUNT(*), COUNT(DISTINCT member_id) FROM seed_test.member")
        assert cur.fetchone() == (50_000, 50_000) and loaded == 50_000
    finally:
        cur.execute("DROP DATABASE IF EXISTS seed_test")
