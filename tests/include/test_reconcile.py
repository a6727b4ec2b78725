"""The DAG's reconciliation of a manifest with the job's result (include/reconcile.py)."""

from __future__ import annotations

import pytest

from include.reconcile import ReconciliationError, reconcile_batch
from lakehouse_jobs.manifest import BatchManifest, FileEntry

pytestmark = pytest.mark.unit

MANIFEST = BatchManifest(
    table="member", batch_id="extract_date=2026-11-26", run_id="r", mode="snapshot", source_query="SELECT 1",
    row_count=10, schema=[], schema_hash="sha256:" + "0" * 64, created_at="2026-11-26T00:00:00+00:00",
    files=[FileEntry(path="s3://landing/member/x/part-00000.parquet", rows=10, bytes=100, sha256="0" * 64)],
)


def result(**overrides):
    return {"batch_id": "extract_date=2026-11-26", "manifest_rows": 10, "valid_rows": 9,
            "quarantined_rows": 1, "delta_rows_total": 9, "delta_version": 3, **overrides}


def test_reconcile_accepts_matching_counts():
    assert reconcile_batch(MANIFEST, result())["landed_rows"] == 10


@pytest.mark.parametrize("bad", [{"valid_rows": 8}, {"manifest_rows": 11}, {"batch_id": "extract_date=2026-11-25"}])
def test_reconcile_rejects_mismatches(bad):
    with pytest.raises(ReconciliationError):
        reconcile_batch(MANIFEST, result(**bad))
