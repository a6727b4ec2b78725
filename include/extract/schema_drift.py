"""The check of a live MySQL table against its contract (lakehouse_jobs.contracts), and the SELECT that
reads it as a batch.

The contract is the Parquet schema consumers rely on. At every run the live columns (information_schema)
are compared with it: a dropped, new or retyped column fails the run with every difference spelled out,
before anything is written. A new column reaches the lake by adding it to the contract (and to the jobs
that read it), never silently.
"""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa

from lakehouse_jobs.contracts import SourceContract, raw_columns

# the MySQL DATA_TYPEs a contract column of each logical type may have at the source
MYSQL_TYPES = {
    "string": {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum"},
    "date": {"date"},
    "timestamp": {"datetime"},
}


class SchemaDriftError(RuntimeError):
    """The live source schema no longer matches the contract; the message lists every difference."""


def live_columns(conn, table: str) -> dict[str, str]:
    """{column: MySQL DATA_TYPE} of the table in the connection's current database, in table order."""
    cur = conn.cursor()
    cur.execute(
        "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        (table,),
    )
    rows = cur.fetchall()
    cur.close()
    if not rows:
        raise SchemaDriftError(f"table {table!r} not found (or not readable) in the source database")
    return {name: dtype.lower() for name, dtype in rows}


def select_sql(contract: SourceContract, where: str | None = None) -> str:
    """SELECT of a landed batch's columns (`arrow_schema(contract, landed=True)`) from the contract's table.

    Date and timestamp columns are read as `col + INTERVAL 0 DAY`, which MariaDB evaluates to NULL for
    every value without a calendar equivalent (zero date, zero month or day, 2023-02-30, year 0) under
    any sql_mode, and their source text goes to `<col>_raw` exactly then. So no reader is handed a value
    it cannot convert (ConnectorX panics on a zero date, mysqlclient silently returns None), and both
    readers land the same rows.
    """
    raw = raw_columns(contract)
    typed, texts = [], []
    for c in contract.columns:
        if c.name in raw:
            value = f"`{c.name}` + INTERVAL 0 DAY"
            typed.append(f"{value} AS `{c.name}`")
            texts.append(f"IF({value} IS NULL, CAST(`{c.name}` AS CHAR), NULL) AS `{raw[c.name].name}`")
        else:
            typed.append(f"`{c.name}`")
    return f"SELECT {', '.join(typed + texts)} FROM `{contract.table}`" + (f" WHERE {where}" if where else "")


def check_schema(contract: SourceContract, live: dict[str, str]) -> None:
    """Raise SchemaDriftError listing every difference between the live columns and the contract."""
    problems = []
    for c in contract.columns:
        if c.name not in live:
            problems.append(f"column {c.name!r} ({c.type}) is missing from the source")
        elif live[c.name] not in MYSQL_TYPES[c.type]:
            problems.append(f"column {c.name!r} changed type: contract {c.type}, source MySQL {live[c.name]}")
    if new := [name for name in live if name not in contract.column_names]:
        problems.append(f"new source column(s) {new}: add them to the contract and the jobs first")
    if problems:
        raise SchemaDriftError(
            f"source table {contract.table!r} drifted from its contract:\n  - " + "\n  - ".join(problems)
        )


def schema_json(schema: pa.Schema) -> list[dict]:
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]


def schema_hash(schema: pa.Schema) -> str:
    canonical = json.dumps(schema_json(schema), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
