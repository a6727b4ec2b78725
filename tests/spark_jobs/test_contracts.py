"""The member contract (lakehouse_jobs.contracts) and every form derived from it."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa
import pytest
from pyspark.sql import types as T

from dev.seed_members import COLUMNS, MEMBER_DDL, setup_schema
from lakehouse_jobs.contracts import MEMBER, Column, SourceContract, arrow_schema, mysql_ddl, raw_columns, spark_schema

DB = "contracts_test"
BRIEF_COLUMNS = ["member_id", "first_name", "last_name", "email", "phone_number", "address", "city", "country",
                 "registration_date"]  # ../shared/seed/brief.md, "Part 1 - Data"


@pytest.mark.unit
def test_contract_imports_without_pyspark_or_pyarrow():
    """The Airflow side imports the contract and the manifest model; neither may pull in Spark."""
    code = ("import sys, lakehouse_jobs.contracts, lakehouse_jobs.manifest; "
            "print(sorted(m for m in ('pyspark', 'pyarrow', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.unit
def test_derived_schemas_follow_the_contract():
    assert MEMBER.column_names == BRIEF_COLUMNS
    assert arrow_schema(MEMBER) == pa.schema(
        [pa.field("member_id", pa.string(), nullable=False)]
        + [pa.field(c, pa.string()) for c in BRIEF_COLUMNS[1:-1]]
        + [pa.field("registration_date", pa.date32())]
    )
    assert spark_schema(MEMBER) == T.StructType(
        [T.StructField("member_id", T.StringType(), nullable=False)]
        + [T.StructField(c, T.StringType()) for c in BRIEF_COLUMNS[1:-1]]
        + [T.StructField("registration_date", T.DateType())]
    )
    assert MEMBER_DDL == mysql_ddl(MEMBER) and list(COLUMNS) == BRIEF_COLUMNS


@pytest.mark.unit
def test_landed_batches_add_a_raw_text_column_per_date_or_timestamp_column_and_the_row_hash():
    assert arrow_schema(MEMBER, landed=True) == arrow_schema(MEMBER).append(
        pa.field("registration_date_raw", pa.string())).append(pa.field("_row_hash", pa.binary(32), nullable=False))
    assert spark_schema(MEMBER, landed=True) == T.StructType(
        spark_schema(MEMBER).fields + [T.StructField("registration_date_raw", T.StringType()),
                                       T.StructField("_row_hash", T.BinaryType(), nullable=False)])
    events = SourceContract("event", "id", (Column("id", "string", nullable=False, max_length=10),
                                            Column("day", "date", pii="quasi"), Column("note", "string"),
                                            Column("at", "timestamp", nullable=False)))
    raw = raw_columns(events)
    assert {name: (c.name, c.type, c.nullable, c.pii) for name, c in raw.items()} == {
        "day": ("day_raw", "string", True, "quasi"), "at": ("at_raw", "string", True, "none")}
    landed = arrow_schema(events, landed=True)
    assert landed.names == ["id", "day", "note", "at", "day_raw", "at_raw"]
    assert landed.field("at").nullable and not landed.field("id").nullable  # a zero "at" lands as null


@pytest.mark.unit
def test_every_column_has_a_pii_class():
    assert MEMBER.columns_of_class("direct") == ["first_name", "last_name", "email", "phone_number", "address"]
    assert MEMBER.columns_of_class("quasi") == ["city", "country", "registration_date"]
    assert MEMBER.columns_of_class("none") == ["member_id"]


@pytest.mark.integration
def test_seeded_mysql_table_is_the_contract(mysql_root, mysql_env):
    """The table `make up` seeds (setup_schema, from mysql_ddl) has the contract's columns, types, lengths and
    key. In a database of its own: the end-to-end tests drop and re-create the test profile's meanwhile."""
    cur = mysql_root.cursor()
    setup_schema(mysql_root, DB, mysql_env["MYSQL_EXTRACT_USER"], mysql_env["MYSQL_EXTRACT_PASSWORD"])
    try:
        cur.execute(
            "SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, IS_NULLABLE, COLUMN_KEY "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'member' "
            "ORDER BY ORDINAL_POSITION", (DB,))
        live = [(name, dtype, length, nullable == "YES", key == "PRI") for name, dtype, length, nullable, key
                in cur.fetchall()]
    finally:
        cur.execute(f"DROP DATABASE `{DB}`")
    expected = [(c.name, "varchar" if c.type == "string" else c.type, c.max_length, c.nullable,
                 c.name == MEMBER.key) for c in MEMBER.columns]
    assert live == expected


def _pins() -> dict[str, str]:
    """The jobs wheel's pinned dependencies (spark_jobs/pyproject.toml, the one place they are declared)."""
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[2] / "spark_jobs" / "pyproject.toml").read_text())["project"]
    return dict(dep.split("==") for dep in project["dependencies"])


def test_the_effective_rules_version_names_each_rule_librarys_pinned_version():
    """Issue 23 item 6: moving a pin (and installing it) moves the version change detection hashes with, so
    every row is standardised again by the new library; a pin moved without an install fails here."""
    pins = _pins()
    effective = MEMBER.effective_rules_version
    assert effective.startswith(MEMBER.rules_version + "+")
    for library in MEMBER.rule_libraries:
        assert f"+{library}=={pins[library]}" in effective, f"{library} is installed at another version than its pin"


def test_every_library_the_rules_import_is_a_rule_library():
    """A library lakehouse_jobs.standardise calls (a wheel dependency, not the runtime's pandas) decides answers:
    adding one without listing it in MEMBER.rule_libraries would leave its upgrades unnoticed."""
    import ast
    from importlib.metadata import packages_distributions

    import lakehouse_jobs.standardise as rules

    tree = ast.parse(open(rules.__file__).read())
    modules = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    distributions = {d for m in modules for d in packages_distributions().get(m, [])}
    wheel_dependencies = {d for d in distributions if d.lower() in {p.lower() for p in _pins()}}
    assert wheel_dependencies == set(MEMBER.rule_libraries)


def test_an_upgrade_of_a_rule_library_changes_every_row_hash(monkeypatch):
    from lakehouse_jobs import contracts
    from lakehouse_jobs.change_hash import row_hashes

    rows = pa.table({"member_id": ["m1"], "email": ["a@example.com"]})
    before = row_hashes(rows, ["member_id", "email"], MEMBER.effective_rules_version, b"k" * 32)
    monkeypatch.setattr(contracts, "_installed_version", lambda name: "99.0" if name == "phonenumbers" else "1")
    assert "+phonenumbers==99.0" in MEMBER.effective_rules_version
    assert row_hashes(rows, ["member_id", "email"], MEMBER.effective_rules_version, b"k" * 32) != before
