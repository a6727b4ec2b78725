"""The extract's schema-drift check (include/extract/schema_drift.py) against the member contract."""

from __future__ import annotations

import pyarrow as pa
import pytest

from include.extract.schema_drift import SchemaDriftError, check_schema, schema_hash, select_sql
from lakehouse_jobs.contracts import MEMBER, SourceContract, arrow_schema

pytestmark = pytest.mark.unit

LIVE = {"member_id": "varchar", "first_name": "varchar", "last_name": "varchar", "email": "varchar",
        "phone_number": "varchar", "address": "varchar", "city": "varchar", "country": "varchar",
        "registration_date": "date"}


def test_matching_schema_passes():
    assert check_schema(MEMBER, LIVE).schema == arrow_schema(MEMBER)


def test_dropped_column_fails_with_the_difference():
    live = {k: v for k, v in LIVE.items() if k != "email"}
    with pytest.raises(SchemaDriftError, match="column 'email' \\(string\\) is missing"):
        check_schema(MEMBER, live)


def test_type_change_fails_with_the_difference():
    expected = r"'registration_date' changed type: contract date32\[day\], source MySQL varchar"
    with pytest.raises(SchemaDriftError, match=expected):
        check_schema(MEMBER, {**LIVE, "registration_date": "varchar"})


def test_new_column_fails_under_the_default_policy():
    with pytest.raises(SchemaDriftError, match=r"new source column\(s\) \['loyalty_tier'\]"):
        check_schema(MEMBER, {**LIVE, "loyalty_tier": "varchar"})


def test_new_column_is_extracted_under_evolve():
    evolving = SourceContract(MEMBER.table, MEMBER.key, MEMBER.columns, on_new_column="evolve")
    checked = check_schema(evolving, {**LIVE, "points": "int"})
    assert checked.new_columns == ["points"]
    assert checked.schema.field("points").type == pa.int32()
    assert schema_hash(checked.schema) != schema_hash(arrow_schema(MEMBER))


def test_select_names_every_contract_column_in_order():
    assert select_sql(MEMBER) == "SELECT " + ", ".join(f"`{c}`" for c in LIVE) + " FROM `member`"
