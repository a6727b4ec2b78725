"""The seeded MySQL `member` table the MySQL benchmarks read: dev/seed_members.py's generator, with a fixed
seed and day, so that the same table is generated every day and a later run can reuse it."""

from __future__ import annotations

import datetime as dt
import time

from benchmarks.harness.stack import connect_root, env

SEED = 42
SEED_TODAY = dt.date(2026, 1, 1)  # registration dates relative to a fixed day: the same table every day


def ensure_table(rows: int, database: str, seed: int) -> dict:
    """`database`.member holding `rows` generated members, reused when its comment says it holds exactly
    those (the tag names the extract benchmark, which seeded them first, and dev/seed_members'
    GENERATOR_VERSION, so a table of an older generator is reseeded), else reseeded; the extract user gets
    SELECT on it. Returns facts: rows, database, seed, seeding seconds (None when reused), InnoDB data and
    index bytes. Raises RuntimeError when the row count is not `rows`."""
    from dev.seed_members import GENERATOR_VERSION, generate_members, load_members, setup_schema

    tag = f"extract_bench seed={seed} rows={rows} today={SEED_TODAY} generator={GENERATOR_VERSION}"
    conn = connect_root()
    try:
        setup_schema(conn, database, env("MYSQL_EXTRACT_USER"), env("MYSQL_EXTRACT_PASSWORD"))
        cur = conn.cursor()
        cur.execute("SELECT TABLE_COMMENT FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'member'", (database,))
        comment = cur.fetchone()[0]
        seeded_s = None
        if comment != tag:
            print(f"  seeding {database}.member with {rows:,} rows (seed {seed}) ...", flush=True)
            started = time.monotonic()
            cur.execute("TRUNCATE TABLE member")
            cur.execute("ALTER TABLE member COMMENT = ''")
            conn.commit()
            load_members(conn, generate_members(rows, seed=seed, today=SEED_TODAY))
            cur.execute("ALTER TABLE member COMMENT = %s", (tag,))
            conn.commit()
            seeded_s = round(time.monotonic() - started, 1)
        cur.execute("SELECT COUNT(*) FROM member")
        count = cur.fetchone()[0]
        if count != rows:
            raise RuntimeError(f"{database}.member holds {count} rows, expected {rows}")
        cur.execute("ANALYZE TABLE member")
        cur.fetchall()
        cur.execute("SELECT DATA_LENGTH, INDEX_LENGTH FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'member'", (database,))
        data_length, index_length = cur.fetchone()
    finally:
        conn.close()
    return {"rows": rows, "database": database, "seed": seed, "seeded_s": seeded_s,
            "reused": seeded_s is None, "innodb_data_bytes": int(data_length),
            "innodb_index_bytes": int(index_length)}
