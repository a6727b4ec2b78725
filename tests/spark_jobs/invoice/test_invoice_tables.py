"""The invoice star schema's declarations (lakehouse_jobs.invoice.tables) against the tables ensure_table
creates, and against docs/invoice-star-schema.md: its per-table column lists (names, types, nullability,
keys), CHECK constraints and statistics columns, and its Mermaid ER diagram (entities, attributes, key
markers, one relationship per foreign key)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from delta.tables import DeltaTable

from lakehouse_jobs.delta import ensure_table
from lakehouse_jobs.invoice.constraints import FOREIGN_KEYS, PRIMARY_KEYS, UNIQUE_KEYS, informational_constraints_ddl
from lakehouse_jobs.invoice.document import check_arithmetic
from lakehouse_jobs.invoice.tables import ARITHMETIC_REASONS, INVOICE_TABLES, QUARANTINE_REASONS
from lakehouse_jobs.invoice.text_layer import REASONS
from lakehouse_jobs.tables import DIM_MEMBER, TABLES
from tests.conftest import REPO_ROOT
from tests.spark_jobs.test_tables import describe

DOC = REPO_ROOT / "docs" / "invoice-star-schema.md"


def spark_type(sql_type: str) -> str:
    """A declared type as Spark's simpleString() writes it."""
    return {"INT": "int", "BIGINT": "bigint"}.get(sql_type, sql_type.lower())


def declared(spec) -> dict:
    return {
        "columns": [(f.name, spark_type(f.type), f.nullable, f.comment) for f in spec.fields],
        "identity": [f.name for f in spec.fields if f.identity],
        "constraints": {name.lower(): expr for name, expr in spec.constraints.items()},
        "properties": spec.table_properties,
        "clustering": list(spec.cluster_by),
        "description": spec.description,
    }


@pytest.fixture(scope="module")
def created(spark, tmp_path_factory) -> Path:
    """Every invoice table, created once from its declaration."""
    root = tmp_path_factory.mktemp("invoice_tables")
    for spec in INVOICE_TABLES.values():
        ensure_table(spark, spec, str(root / spec.name))
    return root


@pytest.mark.integration
@pytest.mark.parametrize("name", list(INVOICE_TABLES))
def test_created_table_is_what_is_declared(spark, created, name):
    got = describe(spark, str(created / name))
    expected = declared(INVOICE_TABLES[name])
    assert got["properties"] | expected["properties"] == got["properties"]
    assert {k: v for k, v in got.items() if k != "properties"} == {
        k: v for k, v in expected.items() if k != "properties"}


@pytest.mark.integration
def test_declared_decimals_keep_precision_and_scale(spark, created):
    schema = DeltaTable.forPath(spark, str(created / "fact_invoice")).toDF().schema
    assert schema["subtotal"].dataType.simpleString() == "decimal(18,2)"
    assert schema["discount_rate"].dataType.simpleString() == "decimal(9,6)"
    assert DeltaTable.forPath(spark, str(created / "fact_invoice_line")).toDF().schema[
        "quantity"].dataType.simpleString() == "decimal(18,6)"


@pytest.mark.unit
def test_keys_name_declared_columns():
    tables = INVOICE_TABLES | {"dim_member": DIM_MEMBER}
    for name, columns in (PRIMARY_KEYS | UNIQUE_KEYS).items():
        spec = INVOICE_TABLES[name]
        assert set(columns) <= set(spec.column_names), name
        assert all(not spec.field(c).nullable for c in columns), f"{name}: a key column may be null"
    assert set(PRIMARY_KEYS) == set(INVOICE_TABLES)
    for name, keys in FOREIGN_KEYS.items():
        for column, (ref_table, ref_column) in keys.items():
            assert column in INVOICE_TABLES[name].column_names
            referenced = tables[ref_table]
            assert ref_column in referenced.column_names
            assert referenced.field(ref_column).type == INVOICE_TABLES[name].field(column).type, (name, column)


@pytest.mark.unit
def test_no_personal_data_in_plaintext_and_no_name_clash_with_member_tables():
    assert not set(INVOICE_TABLES) & set(TABLES)
    for spec in INVOICE_TABLES.values():
        for f in spec.fields:
            if f.pii == "direct":
                assert f.type == "BINARY" and f.name.endswith("_enc"), f"{spec.name}.{f.name}"
        # the log's statistics outlive an erasure: never on a column that identifies somebody
        assert not {f.name for f in spec.fields if f.pii != "none"} & set(spec.stats_columns or ()) - {
            "country_code"}, spec.name


@pytest.mark.unit
def test_quarantine_reasons_cover_the_parser_and_the_arithmetic_checks():
    assert set(REASONS) <= set(QUARANTINE_REASONS)
    assert set(ARITHMETIC_REASONS) <= set(QUARANTINE_REASONS)
    # every code check_arithmetic's docstring names is declared
    codes = set(re.findall(r"``([a-z]+(?:_[a-z]+)+)(?::<[^>]+>)?``", check_arithmetic.__doc__))
    assert codes <= set(ARITHMETIC_REASONS)


@pytest.mark.unit
def test_informational_constraints_ddl_names_every_key():
    ddl = informational_constraints_ddl("main.lakehouse")
    assert "ALTER TABLE main.lakehouse.fact_invoice_line ADD CONSTRAINT fact_invoice_line_pk PRIMARY KEY " \
           "(invoice_number, line_number)" in ddl
    assert ("ALTER TABLE main.lakehouse.fact_invoice ADD CONSTRAINT fact_invoice_member_sk_fk FOREIGN KEY "
            "(member_sk) REFERENCES main.lakehouse.dim_member (member_sk)") in ddl
    assert len(ddl) == len(PRIMARY_KEYS) + sum(len(k) for k in FOREIGN_KEYS.values())


# ------------------------------------------------------------------------------------- the document


def doc_sections() -> dict[str, str]:
    """Each table's section of the document: from its "### `name`" heading to the next heading."""
    text = DOC.read_text()
    parts = re.split(r"^#{2,3} ", text, flags=re.M)
    return {m[1]: part for part in parts if (m := re.match(r"`(\w+)`\n", part))}


def column_rows(section: str) -> list[dict[str, str]]:
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]
    return [{"column": c[0].strip("`"), "type": c[1], "null": c[2], "key": c[3]} for c in cells]


def expected_key_cell(table: str, column: str) -> str:
    keys = []
    if column in PRIMARY_KEYS.get(table, ()):
        keys.append("PK")
    if column in UNIQUE_KEYS.get(table, ()):
        keys.append("UK")
    if column in FOREIGN_KEYS.get(table, {}):
        keys.append("FK {}.{}".format(*FOREIGN_KEYS[table][column]))
    return ", ".join(keys)


@pytest.mark.unit
@pytest.mark.parametrize("name", list(INVOICE_TABLES))
def test_document_lists_the_declared_columns(name):
    spec = INVOICE_TABLES[name]
    section = doc_sections()[name]
    got = [(r["column"], r["type"], r["null"], r["key"]) for r in column_rows(section)]
    assert got == [(f.name, f.type, "yes" if f.nullable else "no", expected_key_cell(name, f.name))
                   for f in spec.fields]
    constraints = dict(re.findall(r"^  - `(\w+)`: `(.+)`$", section, flags=re.M))
    assert constraints == spec.constraints
    stats = re.search(r"statistics on (.+?)\.(?:\s|$)", " ".join(section.split()))
    assert stats and re.findall(r"`(\w+)`", stats[1]) == list(spec.stats_columns)


def mermaid_er() -> tuple[dict[str, list[tuple[str, str, str]]], list[tuple[str, str, str, str, str]]]:
    """({entity: [(type, name, keys)]}, [(left, left cardinality, right cardinality, right, label)]) of the
    document's erDiagram."""
    block = re.search(r"```mermaid\nerDiagram\n(.*?)```", DOC.read_text(), flags=re.S)[1]
    entities = {name: [(a[0], a[1], " ".join(a[2:])) for a in (line.split(maxsplit=2) for line in body.strip()
                                                                 .splitlines())]
                for name, body in re.findall(r"^\s+(\w+) \{\n(.*?)^\s+\}", block, flags=re.S | re.M)}
    relations = re.findall(r'^\s+(\w+) (\|\||\|o)--(o\{|\|\{|o\|) (\w+) : "(\w+)"$', block, flags=re.M)
    return entities, relations


@pytest.mark.unit
def test_document_er_diagram_matches_the_declarations():
    entities, relations = mermaid_er()
    assert set(entities) == set(INVOICE_TABLES) | {"dim_member"}
    for name, spec in INVOICE_TABLES.items():
        expected = []
        for f in spec.fields:
            keys = [k for k, on in (("PK", f.name in PRIMARY_KEYS[name]), ("FK", f.name in FOREIGN_KEYS.get(name, {})),
                                    ("UK", f.name in UNIQUE_KEYS.get(name, ()))) if on]
            expected.append((f.type.lower().split("(")[0], f.name, ", ".join(keys)))
        assert entities[name] == expected, name
    assert {a[1] for a in entities["dim_member"]} <= set(DIM_MEMBER.column_names)
    # one relationship per foreign key, "zero or one" on the dimension's side exactly when the key is nullable
    for table, keys in FOREIGN_KEYS.items():
        for column, (ref_table, _) in keys.items():
            nullable = INVOICE_TABLES[table].field(column).nullable
            assert (ref_table, "|o" if nullable else "||", "o{", table, column) in relations, (table, column)
    assert len(relations) == sum(len(k) for k in FOREIGN_KEYS.values()) + 2
