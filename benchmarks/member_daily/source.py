"""The scratch MySQL source every contender reads, in state A or B, and checksums of what it holds."""

from __future__ import annotations

import re
import time

from benchmarks.harness.member_table import SEED_TODAY, ensure_table
from benchmarks.harness.stack import connect_root as _connect_root
from benchmarks.harness.stack import env
from benchmarks.member_daily.config import CHANGE_SHARE

# state B: what changes in a changed member's row, by column; every other column is copied from state A
CHANGED_VALUES = {"email": "CONCAT('moved.', a.email)", "address": "CONCAT('Flat 2, ', a.address)"}


def connect_root(database: str = ""):
    return _connect_root(database, autocommit=True)


def member_columns() -> list[str]:
    """The member contract's source columns, in order (lakehouse_jobs.contracts.MEMBER)."""
    from lakehouse_jobs.contracts import MEMBER

    return MEMBER.column_names


def state_b_select(changes_table: str, source: str) -> str:
    """The SELECT that derives state B from state A (`source`, aliased a): each contract column by name, the
    CHANGED_VALUES columns replaced for the members listed in `changes_table`."""
    columns = [f"IF(c.member_id IS NULL, a.{name}, {CHANGED_VALUES[name]}) AS {name}" if name in CHANGED_VALUES
               else f"a.{name}" for name in member_columns()]
    return (f"SELECT {', '.join(columns)} FROM {source} a "
            f"LEFT JOIN {changes_table} c USING (member_id)")


def _hash(expr: str) -> str:
    """A 60-bit number from the MD5 of a text: summed over rows, an order-free checksum of a set."""
    return f"CAST(CONV(SUBSTRING(MD5({expr}), 1, 15), 16, 10) AS UNSIGNED)"


def mysql_row_text(alias: str = "") -> str:
    """Every contract column of a row as one text (NULL as \\N, dates as YYYY-MM-DD), as Spark renders it in
    Checker.row_text: the same bytes, hence the same MD5, on both sides."""
    from lakehouse_jobs.contracts import MEMBER

    p = f"{alias}." if alias else ""
    parts = [f"IFNULL(DATE_FORMAT({p}{c.name}, '%Y-%m-%d'), '\\\\N')" if c.type == "date"
             else f"IFNULL({p}{c.name}, '\\\\N')" for c in MEMBER.columns]
    return f"CONCAT_WS(CHAR(31 USING utf8mb4), {', '.join(parts)})"


class Source:
    """The scratch source every contender reads: `bench_daily.member`, which is, by an atomic RENAME TABLE,
    one of the tables parked in `bench_daily_store`: m<N>_a (N generated members, dev/seed_members.py's
    generator with the extract benchmark's seed and day) or m<N>_b (the same with the email and address of
    5% of them changed; their ids in m<N>_changes). The live table's comment says which it is. The extract
    user has SELECT on `bench_daily.member` (a grant by name, which follows the name, not the table)."""

    def __init__(self, seed: int, prefix: str = "bench_daily"):
        self.seed = seed
        self.live_db, self.store_db, self.seed_db = prefix, f"{prefix}_store", f"{prefix}_seed"
        self.expected: dict[tuple[int, str], dict] = {}

    def tag(self, rows: int, state: str) -> str:
        from dev.seed_members import GENERATOR_VERSION

        # the generator's version too: a state seeded by an older generator is seeded again, not reused
        return (f"member_daily_bench seed={self.seed} rows={rows} today={SEED_TODAY} state={state} "
                f"generator={GENERATOR_VERSION}")

    def _comment(self, cur, db: str, table: str) -> str | None:
        cur.execute("SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s",
                    (db, table))
        row = cur.fetchone()
        return None if row is None else row[0]

    def live(self, cur) -> tuple[int, str] | None:
        comment = self._comment(cur, self.live_db, "member")
        # any seed's or generator's table of this benchmark: parked, never dropped, by ensure() and switch()
        m = re.fullmatch(r"member_daily_bench seed=\S+ rows=(\d+) today=\S+ state=([AB])( generator=\S+)?",
                         comment or "")
        if comment is not None and not m:
            raise RuntimeError(f"{self.live_db}.member is not a table of this benchmark (comment {comment!r}); "
                               "drop it or move it away")
        return (int(m[1]), m[2]) if m else None

    def _have(self, cur, rows: int, state: str) -> bool:
        return (self._comment(cur, self.live_db, "member") == self.tag(rows, state)
                or self._comment(cur, self.store_db, f"m{rows}_{state.lower()}") == self.tag(rows, state))

    def ensure(self, rows: int) -> dict:
        """Both states of `rows` members exist (seeded the first time), and A is live. Returns facts."""
        conn = connect_root()
        cur = conn.cursor()
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {self.live_db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {self.store_db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        seeded = {}
        changed = round(rows * CHANGE_SHARE)
        if not self._have(cur, rows, "A"):
            print(f"  seeding {rows:,} members (state A) ...", flush=True)
            started = time.monotonic()
            self._park_live(cur)
            cur.execute(f"DROP TABLE IF EXISTS {self.store_db}.m{rows}_a, {self.store_db}.m{rows}_b, "
                        f"{self.store_db}.m{rows}_changes")
            ensure_table(rows, self.seed_db, self.seed)  # dev/seed_members.py's generator, as the extract benchmark
            cur.execute(f"RENAME TABLE {self.seed_db}.member TO {self.store_db}.m{rows}_a")
            cur.execute(f"ALTER TABLE {self.store_db}.m{rows}_a COMMENT = %s", (self.tag(rows, "A"),))
            seeded["a_s"] = round(time.monotonic() - started, 1)
        if not self._have(cur, rows, "B"):
            print(f"  deriving state B: {changed:,} members with a new email and address ...", flush=True)
            started = time.monotonic()
            self.switch(rows, "A")
            a = f"{self.live_db}.member"
            cur.execute(f"DROP TABLE IF EXISTS {self.store_db}.m{rows}_b, {self.store_db}.m{rows}_changes")
            cur.execute(f"CREATE TABLE {self.store_db}.m{rows}_changes (member_id VARCHAR(36) NOT NULL PRIMARY KEY)")
            cur.execute(f"INSERT INTO {self.store_db}.m{rows}_changes SELECT member_id FROM {a} "
                        f"ORDER BY MD5(CONCAT(member_id, %s)), member_id LIMIT {changed}", (str(self.seed),))
            cur.execute(f"CREATE TABLE {self.store_db}.m{rows}_b LIKE {a}")
            names = ", ".join(member_columns())
            cur.execute(f"INSERT INTO {self.store_db}.m{rows}_b ({names}) "
                        + state_b_select(f"{self.store_db}.m{rows}_changes", a))
            cur.execute(f"ALTER TABLE {self.store_db}.m{rows}_b COMMENT = %s", (self.tag(rows, "B"),))
            seeded["b_s"] = round(time.monotonic() - started, 1)
        self.switch(rows, "A")
        cur.execute(f"SELECT COUNT(*) FROM {self.store_db}.m{rows}_changes")
        changed = cur.fetchone()[0]
        cur.execute("SELECT DATA_LENGTH FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s AND TABLE_NAME='member'",
                    (self.live_db,))
        data_bytes = int(cur.fetchone()[0])
        conn.close()
        return {"rows": rows, "changed": changed, "seeded_s": seeded or None, "innodb_data_bytes": data_bytes}

    def _park_live(self, cur) -> None:
        live = self.live(cur)
        if live:
            cur.execute(f"RENAME TABLE {self.live_db}.member TO {self.store_db}.m{live[0]}_{live[1].lower()}")

    def switch(self, rows: int, state: str) -> None:
        """Make m<rows>_<state> the live table: one RENAME TABLE, atomic for every reader."""
        conn = connect_root()
        cur = conn.cursor()
        live = self.live(cur)
        if live != (rows, state):
            renames = []
            if live:
                renames.append(f"{self.live_db}.member TO {self.store_db}.m{live[0]}_{live[1].lower()}")
            renames.append(f"{self.store_db}.m{rows}_{state.lower()} TO {self.live_db}.member")
            cur.execute("RENAME TABLE " + ", ".join(renames))
        cur.execute(f"GRANT SELECT ON {self.live_db}.member TO %s@'%%'", (env("MYSQL_EXTRACT_USER"),))
        conn.close()

    def facts(self, rows: int, state: str) -> dict:
        """Checksums of the live table in `state`: rows, the member_id set, every row's values, the values of
        the changed members' rows (computed once per run)."""
        key = (rows, state)
        if key not in self.expected:
            self.switch(rows, state)
            conn = connect_root()
            cur = conn.cursor()
            cur.execute(f"SELECT COUNT(*), COUNT(DISTINCT member_id), SUM({_hash('member_id')}), "
                        f"SUM({_hash(mysql_row_text())}) FROM {self.live_db}.member")
            count, distinct, ids, values = cur.fetchone()
            cur.execute(f"SELECT COUNT(*), SUM({_hash(mysql_row_text('m'))}) FROM {self.live_db}.member m "
                        f"JOIN {self.store_db}.m{rows}_changes c USING (member_id)")
            changed, changed_values = cur.fetchone()
            conn.close()
            self.expected[key] = {"rows": int(count), "distinct": int(distinct), "id_sum": int(ids),
                                  "value_sum": int(values), "changed_rows": int(changed),
                                  "changed_value_sum": int(changed_values or 0)}
        return self.expected[key]

    def changed_ids(self, rows: int) -> list[str]:
        conn = connect_root()
        cur = conn.cursor()
        cur.execute(f"SELECT member_id FROM {self.store_db}.m{rows}_changes")
        ids = [r[0] for r in cur.fetchall()]
        conn.close()
        return ids
