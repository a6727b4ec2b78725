"""Pure logic of include/: schema contract, reconciliation, Databricks run JSON. No services."""

from __future__ import annotations

import pyarrow as pa
import pytest

from include.databricks_jobs import member_merge_run
from include.extract.contract import MEMBER, SchemaDriftError, TableContract, check_schema, schema_hash
from include.extract.s3_upload import sse_args
from include.reconcile import ReconciliationError, reconcile_batch

pytestmark = pytest.mark.unit

LIVE = {"member_id": "varchar", "first_name": "varchar", "last_name": "varchar", "email": "varchar",
        "phone_number": "varchar", "address": "varchar", "city": "varchar", "country": "varchar",
        "registration_date": "date"}


def test_matching_schema_passes():
    assert check_schema(MEMBER, LIVE).schema == MEMBER.schema


def test_dropped_column_fails_with_the_difference():
    live = {k: v for k, v in LIVE.items() if k != "email"}
    with pytest.raises(SchemaDriftError, match="column 'email' \\(string\\) is missing"):
        check_schema(MEMBER, live)


def test_type_change_fails_with_the_difference():
    with pytest.raises(SchemaDriftError, match="'registration_date' changed type: contract date32\\[day\\], source MySQL varchar"):
        check_schema(MEMBER, {**LIVE, "registration_date": "varchar"})


def test_new_column_fails_under_the_default_policy():
    with pytest.raises(SchemaDriftError, match=r"new source column\(s\) \['loyalty_tier'\]"):
        check_schema(MEMBER, {**LIVE, "loyalty_tier": "varchar"})


def test_new_column_is_extracted_under_evolve():
    evolving = TableContract(MEMBER.table, MEMBER.key, MEMBER.columns, on_new_column="evolve")
    checked = check_schema(evolving, {**LIVE, "points": "int"})
    assert checked.new_columns == ["points"]
    assert checked.schema.field("points").type == pa.int32()
    assert schema_hash(checked.schema) != schema_hash(MEMBER.schema)


def test_sse_arguments():
    assert sse_args("AES256") == {"ServerSideEncryption": "AES256"}
    assert sse_args("aws:kms", "key-1") == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "key-1"}
    with pytest.raises(ValueError):
        sse_args("none")


MANIFEST = {"batch_id": "extract_date=2026-11-26", "row_count": 10}


def result(**overrides):
    return {"batch_id": "extract_date=2026-11-26", "manifest_rows": 10, "valid_rows": 9,
            "quarantined_rows": 1, "delta_rows_total": 9, "delta_version": 3, **overrides}


def test_reconcile_accepts_matching_counts():
    assert reconcile_batch(MANIFEST, result())["landed_rows"] == 10


@pytest.mark.parametrize("bad", [{"valid_rows": 8}, {"manifest_rows": 11}, {"batch_id": "extract_date=2026-11-25"}])
def test_reconcile_rejects_mismatches(bad):
    with pytest.raises(ReconciliationError):
        reconcile_batch(MANIFEST, result(**bad))


def test_run_json_local_and_workspace_differ_only_by_configuration(monkeypatch):
    local = member_merge_run("extract_date=2026-11-26", env={})
    prod = member_merge_run("extract_date=2026-11-26", env={
        "DATABRICKS_SPARK_VERSION": "17.3.x-scala2.13", "DATABRICKS_NODE_TYPE": "r6gd.xlarge",
        "DATABRICKS_MAX_WORKERS": "8", "DATABRICKS_POLICY_ID": "ABC123"})
    assert local["tasks"][0]["spark_python_task"] == prod["tasks"][0]["spark_python_task"]
    assert prod["tasks"][0]["new_cluster"]["policy_id"] == "ABC123"
    assert {k: v for k, v in local["tasks"][0].items() if k != "new_cluster"} == \
        {k: v for k, v in prod["tasks"][0].items() if k != "new_cluster"}
    dev = member_merge_run("extract_date=2026-11-26", env={"DATABRICKS_EXISTING_CLUSTER_ID": "0101-abc"})
    assert dev["tasks"][0]["existing_cluster_id"] == "0101-abc" and "new_cluster" not in dev["tasks"][0]
    params = local["tasks"][0]["spark_python_task"]["parameters"]
    assert params[params.index("--manifest") + 1] == \
        "s3://landing/member/extract_date=2026-11-26/_manifest.json"
