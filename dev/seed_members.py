"""Create the source `member` table, its read-only extract user, and seed it with generated members.

    python -m dev.seed_members --if-empty --rows 1000 --dirty   # what the stack runs at start
    python -m dev.seed_members --truncate --rows 1000000    # benchmarks

Members are generated the way the brief's generator does it (Faker: uuid4 id, first/last name, email,
phone number, street address, city, country, registration date within the last two years), but seeded
(Faker and `random`) so a given --seed and --rows always produce the same table. Calling Faker a million
times takes minutes, so each field draws from a pool of Faker values (at most --pool distinct values per
field) and rows combine pool entries at random. Email and phone are then made the member's own
(make_unique_contact): real members do not share them, and a benchmark on values repeated ~250 times would
reward a per-value cache that does nothing for real data. The rows are bulk-loaded with LOAD DATA LOCAL INFILE.

--dirty adds DIRTY_MEMBERS (idempotently): a handful of rows of each kind of dirty value real MySQL
databases hold, so `make demo` shows quarantined rows with their reasons and standardised values that
are right or absent.

Connects as root (MYSQL_ROOT_PASSWORD) to MYSQL_HOST:MYSQL_PORT; the extract never uses root.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping

import MySQLdb
from faker import Faker

from lakehouse_jobs.contracts import MEMBER, MEMBER_CARD, mysql_ddl

# derived from the contract, so the seeded table is by construction what the extract expects
MEMBER_DDL = mysql_ddl(MEMBER)
MEMBER_CARD_DDL = mysql_ddl(MEMBER_CARD)
FIRST_CARD_NUMBER = 11_000_001
# the seed invoice's "Member No." (tests/data/invoice.pdf), given as a second card to the first member
SEED_INVOICE_CARD = "11134891"
COLUMNS = tuple(MEMBER.column_names)


# Part of the benchmarks' tags of a seeded table (benchmarks/harness/member_table.py, member_daily/source.py):
# bump it whenever generate_members yields other rows for the same arguments, so an old table is reseeded.
GENERATOR_VERSION = 2  # 2: every member's email and phone number its own
# A phone number's last seven digits (exchange and line number) are unique per member up to this many rows:
# the exchange starts with 2-9 (the NANP's rule, and Faker's), so that as many numbers are valid as before
PHONE_SUBSCRIBERS = 8_000_000
FIRST_SUBSCRIBER = 2_000_000


def _affine_permutation(modulus: int, rng: random.Random):
    """i -> (a*i + b) mod `modulus`, a bijection of range(modulus) when the modulus's prime factors are 2 and
    5 only (a is then coprime with it), so distinct row numbers give distinct, unordered-looking numbers."""
    a = rng.randrange(modulus // 10, modulus) | 1
    if a % 5 == 0:
        a += 2
    b = rng.randrange(modulus)
    return lambda i: (a * i + b) % modulus


def _phone_template(phone: str) -> str:
    """A Faker phone number with the last seven digits before any extension replaced by format fields
    {0}..{6}, so the format (+1-, 001-, parentheses, dots, x-extension) and the area code are Faker's."""
    main, x, extension = phone.partition("x")
    positions = [k for k, ch in enumerate(main) if ch.isdigit()][-7:]
    chars = [c.replace("{", "{{").replace("}", "}}") for c in main]
    for slot, k in enumerate(positions):
        chars[k] = "{%d}" % slot
    return "".join(chars) + (x + extension).replace("{", "{{").replace("}", "}}")


def generate_members(rows: int, seed: int = 42, pool: int = 20_000, today: dt.date | None = None) -> Iterator[dict]:
    """Yield `rows` members, each a dict by column name (COLUMNS), deterministic for a given seed.

    Every member's email and phone number is distinct from every other's (phone numbers up to
    PHONE_SUBSCRIBERS rows): the email is a Faker address with ``.<n>`` appended to its local part, n a
    permutation of the row number (``brian12.4821093@example.net``); the phone number is a Faker number
    (its format, area code and extension kept) whose last seven digits are another permutation of the row
    number in 2000000..9999999. Names, addresses, cities and countries repeat, as in real data."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    size = max(1, min(rows, pool))
    pools = {
        "first_name": [fake.first_name() for _ in range(size)],
        "last_name": [fake.last_name() for _ in range(size)],
        "email": [fake.email().split("@", 1) for _ in range(size)],
        "phone_number": [_phone_template(fake.phone_number()) for _ in range(size)],
        "address": [fake.street_address() for _ in range(size)],
        "city": [fake.city() for _ in range(size)],
        "country": [fake.country() for _ in range(size)],
    }
    # a generator of its own, so the draws below (and with them every other column) stay as they were
    unique = random.Random(f"{seed}/unique-contact")
    email_number = _affine_permutation(10 ** max(7, len(str(rows))), unique)
    subscriber = _affine_permutation(PHONE_SUBSCRIBERS, unique)
    today = today or dt.date.today()
    first_day = today - dt.timedelta(days=730)  # Faker's date_between("-2y", "today")
    days = (today - first_day).days
    for i in range(rows):
        # the draws in this order (id, each pool, date), so a seed keeps giving the same members
        member = {"member_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
        member |= {column: values[rng.randrange(size)] for column, values in pools.items()}
        local, domain = member["email"]
        member["email"] = f"{local}.{email_number(i)}@{domain}"
        member["phone_number"] = member["phone_number"].format(*str(FIRST_SUBSCRIBER + subscriber(i)))
        member["registration_date"] = first_day + dt.timedelta(days=rng.randint(0, days))
        yield member


def _dirty(name: str, **values) -> dict:
    """A member with a stable id (so --dirty is idempotent) and plausible defaults for what `values` leaves out."""
    return {"member_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"lakehouse-ref/dirty/{name}")), "first_name": "Dirty",
            "last_name": name, "email": f"{name}@example.com", "phone_number": "(213) 948-8645", "address": "1 Main St",
            "city": "Springfield", "country": "United States of America", "registration_date": "2024-05-01", **values}


# What the pipeline must do with each is in the comment; tests/e2e checks the outcome.
DIRTY_MEMBERS = (
    _dirty("zero-date", registration_date="0000-00-00"),  # quarantined: invalid_registration_date
    _dirty("no-valid-day", registration_date="2024-02-00"),  # quarantined: invalid_registration_date
    _dirty("bad-email", email="jane.doe@@example.com"),  # quarantined: invalid_email (email-validator's reason)
    _dirty("future", registration_date="2099-01-01"),  # quarantined: registration_date_in_future
    _dirty("punycode", email="info@xn--h1alffa9f.xn--p1ai"),  # valid: a punycode top-level domain
    _dirty("unicode-domain", email="info@bücher.example"),  # valid: an internationalised domain
    _dirty("seoul", country="Republic of Korea", phone_number="02-312-3456"),  # KR, +8223123456
    _dirty("kosovo", country="Kosovo"),  # XK, never RS
    _dirty("city-as-country", country="Victoria"),  # a city, not a country: no code
)


def load_dirty_members(conn) -> int:
    """Insert DIRTY_MEMBERS unless present; returns how many were new. Zero dates need a permissive
    sql_mode, as the legacy schemas that hold them had."""
    cur = conn.cursor()
    cur.execute("SET SESSION sql_mode = ''")
    placeholders = ", ".join(f"%({c})s" for c in COLUMNS)
    added = cur.executemany(f"INSERT IGNORE INTO member ({', '.join(COLUMNS)}) VALUES ({placeholders})",
                            DIRTY_MEMBERS)
    conn.commit()
    return added


def _tsv_field(value) -> str:
    if value is None:
        return r"\N"
    text = value.isoformat() if isinstance(value, dt.date) else str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def connect_root(database: str | None = None):
    return MySQLdb.connect(
        host=os.environ.get("MYSQL_HOST", "127.0.0.1"),
        port=int(os.environ.get("MYSQL_PORT", "3306")),
        user="root",
        password=os.environ["MYSQL_ROOT_PASSWORD"],
        database=database or "",
        charset="utf8mb4",
        local_infile=1,
    )


def setup_schema(conn, database: str, extract_user: str, extract_password: str) -> None:
    """Database, tables and the read-only extract user (SELECT on member and member_card only). Idempotent."""
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    cur.execute(f"USE `{database}`")
    cur.execute(MEMBER_DDL)
    cur.execute(MEMBER_CARD_DDL)
    cur.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (extract_user, extract_password))
    # keeps the password in step with .env if the user existed already
    cur.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (extract_user, extract_password))
    for table in (MEMBER.table, MEMBER_CARD.table):
        cur.execute(f"GRANT SELECT ON `{database}`.`{table}` TO %s@'%%'", (extract_user,))
    conn.commit()


def issue_cards(conn) -> int:
    """Give every member without a card the next card number (in member_id order, so a re-seed numbers
    alike), and the seed invoice's card to the first member; returns the cards issued. Idempotent."""
    cur = conn.cursor()
    cur.execute("SELECT COALESCE(MAX(CAST(card_number AS UNSIGNED)), %s) FROM member_card "
                "WHERE card_number <> %s", (FIRST_CARD_NUMBER - 1, SEED_INVOICE_CARD))
    last = cur.fetchone()[0]
    issued = cur.execute(
        "INSERT INTO member_card (card_number, member_id, issued_on) "
        "SELECT CAST(%s + ROW_NUMBER() OVER (ORDER BY m.member_id) AS CHAR), m.member_id, m.registration_date "
        "FROM member m LEFT JOIN member_card c ON c.member_id = m.member_id "
        "WHERE c.member_id IS NULL AND m.member_id IS NOT NULL AND m.member_id <> ''", (last,))
    issued += cur.execute(
        "INSERT IGNORE INTO member_card (card_number, member_id, issued_on) "
        "SELECT %s, member_id, registration_date FROM member WHERE member_id <> '' ORDER BY member_id LIMIT 1",
        (SEED_INVOICE_CARD,))
    conn.commit()
    return issued


def load_members(conn, rows: Iterable[Mapping[str, object]]) -> int:
    """Bulk-load members (dicts by column name, as generate_members yields them) through a temporary TSV file;
    returns the number of rows loaded. A column a row lacks raises KeyError."""
    count = 0
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".tsv") as f:
        for row in rows:
            f.write("\t".join(_tsv_field(row[c]) for c in COLUMNS) + "\n")
            count += 1
        f.flush()
        cur = conn.cursor()
        cur.execute(
            "LOAD DATA LOCAL INFILE %s INTO TABLE member CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' "
            f"({', '.join(COLUMNS)})",
            (f.name,),
        )
    conn.commit()
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=int(os.environ.get("SEED_ROWS", "1000")))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--pool", type=int, default=20_000, help="distinct Faker values per field")
    parser.add_argument("--if-empty", action="store_true", help="seed only when the table has no rows")
    parser.add_argument("--truncate", action="store_true", help="empty the table first")
    parser.add_argument("--dirty", action="store_true", help="add DIRTY_MEMBERS too (idempotent)")
    args = parser.parse_args(argv)

    database = os.environ.get("MYSQL_DATABASE", "members")
    conn = connect_root()
    setup_schema(conn, database, os.environ["MYSQL_EXTRACT_USER"], os.environ["MYSQL_EXTRACT_PASSWORD"])
    cur = conn.cursor()
    if args.truncate:
        cur.execute("TRUNCATE TABLE member")
    cur.execute("SELECT COUNT(*) FROM member")
    existing = cur.fetchone()[0]
    if args.if_empty and existing:
        print(f"member table already has {existing} rows; not seeding")
    else:
        started = time.monotonic()
        loaded = load_members(conn, generate_members(args.rows, seed=args.seed, pool=args.pool))
        print(f"seeded {loaded} members in {time.monotonic() - started:.1f}s")
    if args.dirty:
        print(f"dirty members: {load_dirty_members(conn)} added ({len(DIRTY_MEMBERS)} in all)")
    print(f"member cards: {issue_cards(conn)} issued")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
