"""The Delta table declarations (lakehouse_jobs.tables) against the tables ensure_table creates and against
their CREATE TABLE statements (read back by sqlglot's Databricks dialect), and the contract's PII classes
against what the tables keep in plaintext."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlglot
from delta.tables import DeltaTable
from sqlglot import exp

from lakehouse_jobs.contracts import MEMBER
from lakehouse_jobs.delta import TableDeclarationError, ensure_table
from lakehouse_jobs.tables import TABLES, Field, TableSpec


def identity_columns(path: str) -> list[str]:
    """Columns generated as identity, from the schema in the table's first commit (DataFrame schemas drop
    the identity metadata)."""
    first = (Path(path) / "_delta_log" / f"{0:020d}.json").read_text().splitlines()
    schema = next(json.loads(line)["metaData"]["schemaString"] for line in first if '"metaData"' in line)
    return [f["name"] for f in json.loads(schema)["fields"] if "delta.identity.start" in f["metadata"]]


def describe(spark, path: str) -> dict:
    """What a created table declares about itself, in TableSpec's terms."""
    table = DeltaTable.forPath(spark, path)
    detail = table.detail().first()
    schema = table.toDF().schema
    properties = detail["properties"]
    return {
        "columns": [(f.name, f.dataType.simpleString(), f.nullable, f.metadata.get("comment", ""))
                    for f in schema.fields],
        "identity": identity_columns(path),
        "constraints": {k.removeprefix("delta.constraints."): v for k, v in properties.items()
                        if k.startswith("delta.constraints.")},
        "properties": {k: v for k, v in properties.items() if not k.startswith("delta.constraints.")},
        "clustering": list(detail["clusteringColumns"]),
        "description": detail["description"],
    }


def declared(spec: TableSpec) -> dict:
    types = {"STRING": "string", "BINARY": "binary", "DATE": "date", "TIMESTAMP": "timestamp",
             "BIGINT": "bigint", "BOOLEAN": "boolean"}
    return {
        "columns": [(f.name, types[f.type], f.nullable, f.comment) for f in spec.fields],
        "identity": [f.name for f in spec.fields if f.identity],
        "constraints": {name.lower(): expr for name, expr in spec.constraints.items()},
        "properties": spec.table_properties,
        "clustering": list(spec.cluster_by),
        "description": spec.description,
    }


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(TABLES))
def test_created_table_is_what_is_declared(spark, tmp_path, name):
    spec = TABLES[name]
    path = str(tmp_path / name)

    ensure_table(spark, spec, path)

    got = describe(spark, path)
    expected = declared(spec)
    # Delta may add properties of its own (feature flags); every declared one must be there as declared
    assert got["properties"] | expected["properties"] == got["properties"]
    assert {k: v for k, v in got.items() if k != "properties"} == {
        k: v for k, v in expected.items() if k != "properties"}


def read_back(sql: str) -> dict:
    """A CREATE TABLE statement as sqlglot's Databricks dialect parses it, in TableSpec's terms."""
    tree = sqlglot.parse_one(sql, dialect="databricks")
    assert isinstance(tree, exp.Create) and tree.kind == "TABLE" and tree.args["exists"], sql
    properties = tree.args["properties"].expressions
    assert {type(p) for p in properties} <= {
        exp.FileFormatProperty, exp.ClusterProperty, exp.SchemaCommentProperty, exp.Property}, sql
    clustering = [p for p in properties if isinstance(p, exp.ClusterProperty)]
    return {
        "name": tree.this.this.sql("databricks"),
        "columns": [(c.name, c.kind.sql("databricks").replace(" ", ""), not c.find(exp.NotNullColumnConstraint),
                     bool(c.find(exp.GeneratedAsIdentityColumnConstraint)),
                     comment.this.this if (comment := c.find(exp.CommentColumnConstraint)) else "")
                    for c in tree.this.expressions],
        "format": [p.this.name for p in properties if isinstance(p, exp.FileFormatProperty)],
        "clustering": [c.name for c in clustering[0].expressions] if clustering else [],
        "description": next(p.this.this for p in properties if isinstance(p, exp.SchemaCommentProperty)),
        "properties": {p.this.this: p.args["value"].this for p in properties if type(p) is exp.Property},
    }


def sql_declared(spec: TableSpec, name: str) -> dict:
    """What `spec.create_table_sql(name)` must read back as."""
    return {
        "name": name,
        "columns": [(f.name, f.type, f.nullable, f.identity, f.comment) for f in spec.fields],
        "format": ["DELTA"],
        "clustering": list(spec.cluster_by),
        "description": spec.description,
        # CHECK constraints as ensure_table declares them at creation
        "properties": spec.table_properties | {
            f"delta.constraints.{n.lower()}": e for n, e in spec.constraints.items()},
    }


# quotes and backslashes in every literal (Spark reads 'a''b' as "ab"), clustering, a three-level name
ODD = TableSpec(
    name="odd", description="it's a \\ table",
    fields=(Field("id", "BIGINT", nullable=False, identity=True, comment="the 'key'"),
            Field("day", "DATE", comment="a \\ and a ' together"), Field("amount", "DECIMAL(18,2)")),
    constraints={"Day_Set": "day IS NOT NULL OR id RLIKE '^\\\\d+$'"}, stats_columns=("day",), cluster_by=("day", "id"))


@pytest.mark.unit
@pytest.mark.parametrize(("spec", "name"), [(t, None) for t in TABLES.values()] + [(ODD, "main.lake.odd")],
                         ids=[*TABLES, "odd"])
def test_create_table_sql_reads_back_as_declared(spec, name):
    assert read_back(spec.create_table_sql(name)) == sql_declared(spec, name or spec.name)


@pytest.mark.integration
def test_a_table_that_differs_from_its_declaration_is_refused(spark, tmp_path):
    path = str(tmp_path / "member")
    spark.createDataFrame([("x",)], "member_id string").write.format("delta").save(path)
    with pytest.raises(TableDeclarationError, match="does not match the declaration of member"):
        ensure_table(spark, TABLES["member"], path)


@pytest.mark.unit
def test_no_direct_identifier_is_stored_in_plaintext():
    """Every contract column of PII class "direct" is kept only as `<name>_enc` ciphertext (BINARY), in
    every table; every plaintext column is of another class."""
    direct = {c.name for c in MEMBER.columns if c.pii == "direct"} | {"phone_e164"}
    for spec in TABLES.values():
        for field in spec.fields:
            assert field.name not in direct, f"{spec.name}.{field.name} holds a direct identifier in plaintext"
            if field.pii == "direct":
                assert field.type == "BINARY" and field.name.endswith("_enc"), f"{spec.name}.{field.name}"
    for name in direct - {"phone_e164"}:
        assert any(f.name == f"{name}_enc" for f in TABLES["member"].fields), name
