"""The extract's schema-drift check and SELECT (include/extract/schema_drift.py) against the member contract."""

from __future__ import annotations

import pytest

from include.extract.schema_drift import SchemaDriftError, check_schema, select_sql
from lakehouse_jobs.contracts import MEMBER

pytestmark = pytest.mark.unit

LIVE = {"member_id": "varchar", "first_name": "varchar", "last_name": "varchar", "email": "varchar",
        "phone_number": "varchar", "address": "varchar", "city": "varchar", "country": "varchar",
        "registration_date": "date"}


def test_matching_schema_passes():
    check_schema(MEMBER, LIVE)
    check_schema(MEMBER, {**LIVE, "address": "text", "country": "enum"})  # other MySQL text types are strings


def test_dropped_column_fails_with_the_difference():
    live = {k: v for k, v in LIVE.items() if k != "email"}
    with pytest.raises(SchemaDriftError, match="column 'email' \\(string\\) is missing"):
        check_schema(MEMBER, live)


@pytest.mark.parametrize(("column", "mysql_type", "contract_type"), [
    ("registration_date", "varchar", "date"), ("registration_date", "datetime", "date"),
    ("first_name", "decimal", "string"), ("first_name", "int", "string"),
])
def test_type_change_fails_with_the_difference(column, mysql_type, contract_type):
    expected = f"'{column}' changed type: contract {contract_type}, source MySQL {mysql_type}"
    with pytest.raises(SchemaDriftError, match=expected):
        check_schema(MEMBER, {**LIVE, column: mysql_type})


def test_new_column_always_fails_and_every_difference_is_listed():
    with pytest.raises(SchemaDriftError) as err:
        check_schema(MEMBER, {**{k: v for k, v in LIVE.items() if k != "city"}, "loyalty_tier": "varchar"})
    assert "new source column(s) ['loyalty_tier']" in str(err.value)
    assert "column 'city' (string) is missing" in str(err.value)


def test_select_reads_every_contract_column_in_order_then_the_raw_date_text():
    plain = ", ".join(f"`{c}`" for c in LIVE if c != "registration_date")
    date = "`registration_date` + INTERVAL 0 DAY"
    assert select_sql(MEMBER, where="TRUE") == (
        f"SELECT {plain}, {date} AS `registration_date`, "
        f"IF({date} IS NULL, CAST(`registration_date` AS CHAR), NULL) AS `registration_date_raw` "
        "FROM `member` WHERE TRUE")
