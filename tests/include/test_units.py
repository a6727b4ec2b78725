"""Pure logic of include/: schema contract, reconciliation, Databricks run JSON. No services."""

from __future__ import annotations

import importlib

import pyarrow as pa
import pytest

from include import settings
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


# What a real workspace configures differently from the local stack (docs/production.md); the local
# .env sets none of these, so the local run is built from the defaults.
WORKSPACE_ENV = {
    "LANDING_BUCKET": "acme-landing",
    "LAKEHOUSE_BUCKET": "acme-lakehouse",
    "DATABRICKS_SPARK_VERSION": "17.3.x-scala2.13",
    "DATABRICKS_NODE_TYPE": "r6gd.xlarge",
    "DATABRICKS_MAX_WORKERS": "8",
    "DATABRICKS_POLICY_ID": "ABC123",
    "DATABRICKS_SPARK_CONF": '{"spark.sql.shuffle.partitions": "64"}',
    "DATABRICKS_TAGS": '{"cost_center": "data-platform"}',
    "DATABRICKS_RUN_TIMEOUT_SECONDS": "5400",
}
SETTINGS_ENV = ["SPARK_JOBS_ROOT", "DATABRICKS_COMPUTE", "DATABRICKS_EXISTING_CLUSTER_ID",
                "DATABRICKS_MIN_WORKERS", *WORKSPACE_ENV]


def leaves(value, path=()) -> dict[tuple, object]:
    if isinstance(value, dict):
        return {p: v for key, item in value.items() for p, v in leaves(item, (*path, key)).items()}
    if isinstance(value, list):
        return {p: v for i, item in enumerate(value) for p, v in leaves(item, (*path, i)).items()}
    return {path: value}


def member_merge_run_under(env: dict[str, str]) -> dict:
    """The run the DAG builds when its process has exactly these settings (include.settings re-read)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in SETTINGS_ENV:
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        importlib.reload(settings)
        try:
            return member_merge_run("extract_date=2026-11-26")
        finally:
            mp.undo()
            importlib.reload(settings)


def test_run_json_local_and_workspace_differ_only_by_configuration():
    local, workspace = leaves(member_merge_run_under({})), leaves(member_merge_run_under(WORKSPACE_ENV))
    diff = {path: (local.get(path), workspace.get(path)) for path in local.keys() | workspace.keys()
            if local.get(path) != workspace.get(path)}
    task = ("tasks", 0)
    cluster, params = (*task, "new_cluster"), (*task, "spark_python_task", "parameters")
    batch = "member/extract_date=2026-11-26"
    assert diff == {
        ("timeout_seconds",): (3000, 5400),
        (*cluster, "spark_version"): ("16.4.x-scala2.12", "17.3.x-scala2.13"),
        (*cluster, "node_type_id"): ("m6gd.large", "r6gd.xlarge"),
        (*cluster, "autoscale", "max_workers"): (4, 8),
        (*cluster, "policy_id"): (None, "ABC123"),
        (*cluster, "apply_policy_default_values"): (None, True),
        (*cluster, "spark_conf", "spark.sql.shuffle.partitions"): (None, "64"),
        (*cluster, "custom_tags", "cost_center"): (None, "data-platform"),
        (*params, 1): (f"s3://landing/{batch}/_manifest.json", f"s3://acme-landing/{batch}/_manifest.json"),
        (*params, 3): ("s3://lakehouse/delta/member", "s3://acme-lakehouse/delta/member"),
        (*params, 5): ("s3://lakehouse/delta/member_quarantine",
                       "s3://acme-lakehouse/delta/member_quarantine"),
        (*params, 7): (f"s3://lakehouse/_results/{batch}.json", f"s3://acme-lakehouse/_results/{batch}.json"),
    }, "\n".join(f"{'.'.join(map(str, p))}: {a!r} -> {b!r}" for p, (a, b) in sorted(diff.items(), key=str))
    # the same code path: python file, libraries and every other field are identical
    assert local[(*task, "spark_python_task", "python_file")] == \
        "/Workspace/Shared/lakehouse-ref/files/spark_jobs/member_merge.py"
