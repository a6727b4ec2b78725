"""What the extract expects of a source table, and the check of the live MySQL schema against it.

The contract is the Parquet schema consumers rely on. At every run the live columns (information_schema)
are compared with it: a dropped column or a changed type fails the run with the difference spelled out;
a new column follows the declared policy ("fail", or "evolve": extract it too, typed from MySQL, and say
so in the manifest). Nothing is published when the check fails.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import pyarrow as pa

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


@dataclass(frozen=True)
class TableContract:
    table: str
    key: str
    columns: tuple[pa.Field, ...]
    on_new_column: str = "fail"  # or "evolve"
    # a column that grows on every insert and update (e.g. updated_at): enables incremental extracts
    watermark_column: str | None = None

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(self.columns)

    def select_sql(self, schema: pa.Schema | None = None, where: str | None = None) -> str:
        names = ", ".join(f"`{f.name}`" for f in (schema or self.schema))
        return f"SELECT {names} FROM `{self.table}`" + (f" WHERE {where}" if where else "")


MEMBER = TableContract(
    table="member",
    key="member_id",
    columns=(
        pa.field("member_id", pa.string(), nullable=False),
        pa.field("first_name", pa.string()),
        pa.field("last_name", pa.string()),
        pa.field("email", pa.string()),
        pa.field("phone_number", pa.string()),
        pa.field("address", pa.string()),
        pa.field("city", pa.string()),
        pa.field("country", pa.string()),
        pa.field("registration_date", pa.date32()),
    ),
)


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


def check_schema(contract: TableContract, live: dict[str, str]) -> SchemaCheck:
    problems = []
    for f in contract.columns:
        if f.name not in live:
            problems.append(f"column {f.name!r} ({f.type}) is missing from the source")
        elif MYSQL_TO_ARROW.get(live[f.name]) != f.type:
            problems.append(f"column {f.name!r} changed type: contract {f.type}, source MySQL {live[f.name]}")
    expected = {f.name for f in contract.columns}
    new = [name for name in live if name not in expected]
    if new and contract.on_new_column != "evolve":
        problems.append(f"new source column(s) {new} and the contract's policy is {contract.on_new_column!r}")
    if problems:
        raise SchemaDriftError(
            f"source table {contract.table!r} drifted from its contract:\n  - " + "\n  - ".join(problems)
        )
    evolved = [pa.field(name, MYSQL_TO_ARROW.get(live[name], pa.string())) for name in new]
    return SchemaCheck(schema=pa.schema(list(contract.columns) + evolved), new_columns=new)


def schema_json(schema: pa.Schema) -> list[dict]:
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]


def schema_hash(schema: pa.Schema) -> str:
    canonical = json.dumps(schema_json(schema), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
