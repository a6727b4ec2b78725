"""Source table contracts, defined once in plain Python and imported by both sides.

The extract (Airflow side) derives its Arrow schema and its schema-drift check from these definitions,
the Spark jobs derive their read schema, and `dev/seed_members.py` derives the MySQL DDL it creates; a
test (tests/spark_jobs/test_contracts.py) checks every derived form against this one. Importing this
module needs neither pyarrow nor pyspark: each conversion imports its library when it is called.

Logical types: "string" (UTF-8 text; MySQL VARCHAR(max_length)), "date" (a calendar date; MySQL DATE,
Arrow date32, Spark DateType) and "timestamp" (a wall-clock time in UTC to the microsecond; MySQL
DATETIME(6), Arrow timestamp[us], Spark TimestampNTZType).

A landed batch has the contract's columns, then one string column `<name>_raw` per "date" and
"timestamp" column (`raw_columns`): MySQL stores values with no calendar equivalent (the zero date
`0000-00-00`, `2024-00-15`, `2024-02-00`, `2023-02-30` under ALLOW_INVALID_DATES, year 0), which land as
a null date (so the typed column is nullable in a batch) with their source text in `<name>_raw`, so a
job can quarantine them with a precise reason. `<name>_raw` is null for every other value, a source NULL
included.
A contract with a ``rules_version`` (member) lands one more column, ``_row_hash``: the keyed hash of the row as
read (lakehouse_jobs.change_hash), which change detection compares.

PII classes, which the jobs protecting personal data act on:
- "direct": identifies a person on its own (name, email, phone, street address);
- "quasi": identifies a person only in combination (city, country, registration date);
- "none": no personal information (the surrogate member_id, a random UUID).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

LogicalType = Literal["string", "date", "timestamp", "row_hash"]
PiiClass = Literal["direct", "quasi", "none"]


@dataclass(frozen=True)
class Column:
    name: str
    type: LogicalType
    nullable: bool = True
    max_length: int | None = None  # characters, for "string" columns (the MySQL VARCHAR length)
    pii: PiiClass = "none"
    description: str = ""


def _installed_version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "absent"


@dataclass(frozen=True)
class SourceContract:
    """One source table: its columns in order and its primary key. Any difference at the source (a
    missing, new or retyped column) fails the extract until the contract and the jobs follow.

    watermark_column: a column that grows on every insert and update (e.g. updated_at); None means the
    table can only be extracted as a full snapshot.
    rules_version: set for a table whose job detects changes by row hash (lakehouse_jobs.change_hash): its
    landed batches carry ``_row_hash``, the keyed hash of the row as landed and `effective_rules_version`.
    Change it when a rule the job applies to the rows changes, and the next batch reprocesses every row.
    rule_libraries: the distributions whose answers the rules are (email-validator, phonenumbers,
    pycountry for members, lakehouse_jobs.standardise): their installed versions are part of
    `effective_rules_version`, so upgrading one reprocesses every row too, without anyone editing a constant.
    """

    table: str
    key: str
    columns: tuple[Column, ...]
    watermark_column: str | None = None
    rules_version: str | None = None
    rule_libraries: tuple[str, ...] = ()

    @property
    def effective_rules_version(self) -> str | None:
        """What a row's change-detection hash and the change state are made with: `rules_version` and the
        installed version of each of `rule_libraries`, ``member-rules-1+email-validator==2.4.0+...`` (a
        library that is not installed reads ``==absent``). None without a rules_version."""
        if self.rules_version is None:
            return None
        return self.rules_version + "".join(f"+{name}=={_installed_version(name)}" for name in self.rule_libraries)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def columns_of_class(self, pii: PiiClass) -> list[str]:
        return [c.name for c in self.columns if c.pii == pii]


# The brief's `member` table (the code test brief, "Part 1 - Data": nine columns, all strings but the date);
# the lengths are ours (the brief gives none), wide enough for what its Faker generator emits.
MEMBER = SourceContract(
    table="member",
    key="member_id",
    columns=(
        Column("member_id", "string", nullable=False, max_length=36, description="UUID of the member"),
        Column("first_name", "string", max_length=100, pii="direct", description="first name"),
        Column("last_name", "string", max_length=100, pii="direct", description="last name"),
        Column("email", "string", max_length=255, pii="direct", description="email address"),
        Column("phone_number", "string", max_length=50, pii="direct", description="phone number as entered"),
        Column("address", "string", max_length=255, pii="direct", description="street address"),
        Column("city", "string", max_length=100, pii="quasi", description="city"),
        Column("country", "string", max_length=100, pii="quasi", description="country name as entered"),
        Column("registration_date", "date", pii="quasi", description="date the member registered"),
    ),
    rules_version="member-rules-1",
    rule_libraries=("email-validator", "phonenumbers", "pycountry"),
)


# Membership cards: the "Member No." printed on an invoice (lakehouse_jobs.invoice.job) is a card number, not
# the member's UUID. A member may hold several cards (a replacement keeps the old number valid for old
# invoices); a card belongs to one member. Digits as text: an identifier, never summed, leading zeros kept.
MEMBER_CARD = SourceContract(
    table="member_card",
    key="card_number",
    columns=(
        Column("card_number", "string", nullable=False, max_length=20, description="membership card number"),
        Column("member_id", "string", nullable=False, max_length=36, description="UUID of the card's member"),
        Column("issued_on", "date", description="date the card was issued"),
    ),
)


# ----------------------------------------------------------------------------------- derived forms


def raw_columns(contract: SourceContract) -> dict[str, Column]:
    """{name of each "date" or "timestamp" column: the string column `<name>_raw` beside it in a batch}."""
    return {
        c.name: Column(f"{c.name}_raw", "string", pii=c.pii,
                       description=f"source text of {c.name} when it has no calendar equivalent, else null")
        for c in contract.columns if c.type in ("date", "timestamp")
    }


ROW_HASH_COLUMN = "_row_hash"


def read_columns(contract: SourceContract) -> tuple[Column, ...]:
    """The columns the extract reads from the source: the contract's, then `raw_columns`."""
    raw = raw_columns(contract)
    # a value with no calendar equivalent lands as null in its typed column, even a NOT NULL one
    return tuple(replace(c, nullable=True) if c.name in raw else c for c in contract.columns) + tuple(raw.values())


def _columns(contract: SourceContract, landed: bool) -> tuple[Column, ...]:
    if not landed:
        return contract.columns
    hashed = contract.rules_version is not None
    return read_columns(contract) + ((Column(ROW_HASH_COLUMN, "row_hash", nullable=False,
                                             description="keyed hash of the row as read"),) if hashed else ())


def arrow_schema(contract: SourceContract, *, landed: bool = False):
    """The contract as a `pyarrow.Schema`; with `landed`, followed by `raw_columns` and, for a contract with
    a rules_version, ``_row_hash`` (32 bytes): the Parquet schema of a landed batch."""
    import pyarrow as pa

    types = {"string": pa.string(), "date": pa.date32(), "timestamp": pa.timestamp("us"), "row_hash": pa.binary(32)}
    return pa.schema([pa.field(c.name, types[c.type], nullable=c.nullable) for c in _columns(contract, landed)])


def spark_schema(contract: SourceContract, *, landed: bool = False):
    """The contract as a Spark `StructType`; with `landed`, the schema a job reads a batch with (never
    inferred)."""
    from pyspark.sql import types as T

    types = {"string": T.StringType(), "date": T.DateType(), "timestamp": T.TimestampNTZType(),
             "row_hash": T.BinaryType()}
    return T.StructType([T.StructField(c.name, types[c.type], nullable=c.nullable)
                         for c in _columns(contract, landed)])


def mysql_ddl(contract: SourceContract) -> str:
    """`CREATE TABLE IF NOT EXISTS` for the contract's table in MySQL / MariaDB (utf8mb4)."""
    types = {"date": "DATE", "timestamp": "DATETIME(6)"}
    lines = [
        f"    `{c.name}` {types.get(c.type) or f'VARCHAR({c.max_length})'} {'NULL' if c.nullable else 'NOT NULL'}"
        for c in contract.columns
    ]
    lines.append(f"    PRIMARY KEY (`{contract.key}`)")
    body = ",\n".join(lines)
    return (
        f"CREATE TABLE IF NOT EXISTS `{contract.table}` (\n{body}\n"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
    )
