"""The check of a live MySQL table against its contract (lakehouse_jobs.contracts), before every extract.

The contract is the Parquet schema consumers rely on. At every run the live columns (information_schema)
are compared with it: a dropped column or a changed type fails the run with the difference spelled out;
a new column follows the contract's policy ("fail", or "evolve": extract it too, typed from MySQL, and
say so in the manifest). Nothing is published when the check fails.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import pyarrow as pa

from lakehouse_jobs.contracts import SourceContract, arrow_schema

# MySQL DATA_TYPE -> Arrow type, for contract checks and evolved columns
MYSQL_TO_ARROW = {
    "char": pa.string(), "varchar": pa.string(), "text": pa.string(), "tinytext": pa.string(),
    "mediumtext": pa.string(), "longtext": pa.string(), "enum": pa.string(),
    "date": pa.date32(), "datetime": pa.timestamp("us"), "timestamp": pa.timestamp("us", tz="UTC"),
    "tinyint": pa.int8(), "smallint": pa.int16(), "mediumint": pa.int32(), "int": pa.int32(),
    "bigint": pa.int64(), "float": pa.float32(), "double": pa.float64(), "decimal": pa.string(),
}


class SchemaDriftError(RuntimeError):
    """The live source schema no longer matches the contract; the message lists every difference."""


@dataclass
class SchemaCheck:
    schema: pa.Schema  # what this run extracts
    new_columns: list[str] = field(default_factory=list)


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


def select_sql(contract: SourceContract, schema: pa.Schema | None = None, where: str | None = None) -> str:
    """SELECT of the contract's columns (or `schema`'s, with evolved columns) from its table."""
    names = ", ".join(f"`{f.name}`" for f in (schema or arrow_schema(contract)))
    return f"SELECT {names} FROM `{contract.table}`" + (f" WHERE {where}" if where else "")


def check_schema(contract: SourceContract, live: dict[str, str]) -> SchemaCheck:
    """The schema to extract; raises SchemaDriftError listing every difference the policy forbids."""
    problems = []
    expected_schema = arrow_schema(contract)
    for f in expected_schema:
        if f.name not in live:
            problems.append(f"column {f.name!r} ({f.type}) is missing from the source")
        elif MYSQL_TO_ARROW.get(live[f.name]) != f.type:
            problems.append(f"column {f.name!r} changed type: contract {f.type}, source MySQL {live[f.name]}")
    expected = set(expected_schema.names)
    new = [name for name in live if name not in expected]
    if new and contract.on_new_column != "evolve":
        problems.append(f"new source column(s) {new} and the contract's policy is {contract.on_new_column!r}")
    if problems:
        raise SchemaDriftError(
            f"source table {contract.table!r} drifted from its contract:\n  - " + "\n  - ".join(problems)
        )
    evolved = [pa.field(name, MYSQL_TO_ARROW.get(live[name], pa.string())) for name in new]
    return SchemaCheck(schema=pa.schema(list(expected_schema) + evolved), new_columns=new)


def schema_json(schema: pa.Schema) -> list[dict]:
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]


def schema_hash(schema: pa.Schema) -> str:
    canonical = json.dumps(schema_json(schema), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
