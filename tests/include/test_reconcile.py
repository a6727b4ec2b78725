"""The DAG's reconciliation of a manifest with the job's result (include/reconcile.py)."""

from __future__ import annotations

import pytest

from include.reconcile import ReconciliationError, commit_info, reconcile_batch
from lakehouse_jobs.manifest import BatchManifest, FileEntry
from lakehouse_jobs.results import MemberMergeResult

pytestmark = pytest.mark.unit

MANIFEST = BatchManifest(
    table="member", batch_id="extract_date=2026-11-26", run_id="r", mode="snapshot", source_query="SELECT 1",
    row_count=10, schema=[], schema_hash="sha256:" + "0" * 64, created_at="2026-11-26T00:00:00+00:00",
    extracted_at="2026-11-26T00:00:00+00:00",
    files=[FileEntry(path="s3://landing/member/x/part-00000.parquet", rows=10, bytes=100, sha256="0" * 64)],
)


def result(**overrides):
    # 10 landed: 2 unchanged, 7 valid changes (4 new, 2 changed, 1 that equalled the table), 1 quarantined; one
    # member deleted; dim_member opened 6 versions and closed 3 (2 changed, 1 deleted)
    return {"batch_id": "extract_date=2026-11-26", "manifest_rows": 10, "unchanged_rows": 2, "valid_rows": 7,
            "quarantined_rows": 1, "quarantine_reasons": {"invalid_email": 1}, "deleted_rows": 1,
            "merge_source_rows": 8, "delta_version": 3, "dim_member_version": 4, "commit_tag": "member_merge x 1",
            "rows_before": 5, "rows_after": 8, "rows_absent_from_snapshot": 0, "duplicate_keys": 0,
            "dim_member_rows": 11, "dim_member_current_rows": 8, "change_detection": "change set", **overrides}


def reconcile(manifest, result_dict, *commits):
    """reconcile_batch of a result as its file holds it (parsed as the DAG parses it)."""
    return reconcile_batch(manifest, MemberMergeResult.from_dict(result_dict), *commits)


def commit(**metrics) -> dict:
    counts = {"numSourceRows": 8, "numTargetRowsInserted": 4, "numTargetRowsUpdated": 2,
              "numTargetRowsDeleted": 1, **metrics}
    return {"operation": "MERGE", "userMetadata": "member_merge x 1",
            "operationMetrics": {k: str(v) for k, v in counts.items()}}


def dim_commit(**metrics) -> dict:
    return commit(**{"numSourceRows": 9, "numTargetRowsInserted": 6, "numTargetRowsUpdated": 3,
                     "numTargetRowsDeleted": 0, **metrics})


def test_reconcile_accepts_matching_counts():
    counts = reconcile(MANIFEST, result(), commit(), dim_commit())
    assert [counts[k] for k in ("landed_rows", "unchanged_rows", "inserted_rows", "deleted_rows", "delta_rows",
                                "dim_member_versions_opened", "dim_member_versions_closed")] == [10, 2, 4, 1, 8, 6, 3]
    assert reconcile(MANIFEST, result(change_detection="full snapshot: no change state"), commit(),
                     dim_commit())["change_detection"] == "full snapshot: no change state"


def test_a_batch_that_changed_nothing_has_no_commit():
    unchanged = result(unchanged_rows=9, valid_rows=0, deleted_rows=0, merge_source_rows=0, delta_version=None,
                       dim_member_version=None, rows_before=8, rows_after=8)
    assert reconcile(MANIFEST, unchanged, None, None)["inserted_rows"] == 0
    with pytest.raises(ReconciliationError, match="table rows 8 -> 9, but the commit inserted 0"):
        reconcile(MANIFEST, unchanged | {"rows_after": 9}, None, None)
    with pytest.raises(ReconciliationError, match="names no member commit, but one was given"):
        reconcile(MANIFEST, unchanged, commit(), None)


@pytest.mark.parametrize(("bad_result", "bad_commit", "bad_dim", "error"), [
    ({"valid_rows": 6}, {}, {}, "unchanged 2 \\+ valid 6 \\+ quarantined 1 != landed 10"),
    ({"quarantine_reasons": {"invalid_email": 2}}, {}, {}, "do not add up to 1"),
    ({"manifest_rows": 11}, {}, {}, "the job read 11 rows"),
    ({"batch_id": "extract_date=2026-11-25"}, {}, {}, "result file is for batch"),
    ({"commit_tag": "member_merge y 2"}, {}, {}, "not this job's MERGE"),
    ({}, {"numSourceRows": 12}, {}, "the commit merged 12 source rows"),
    ({"merge_source_rows": 9}, {"numSourceRows": 9}, {}, "merge source rows 9 != valid changes 7 \\+ deletions 1"),
    ({"rows_after": 9}, {}, {}, "table rows 5 -> 9, but the commit inserted 4 and deleted 1"),
    ({}, {"numTargetRowsInserted": 9}, {}, "inserted 9 \\+ updated 2 > valid rows 7"),
    ({}, {"numTargetRowsDeleted": 2}, {}, "the commit deleted 2 rows, the job planned 1 deletions"),
    ({}, {}, {"numTargetRowsUpdated": 8}, "dim_member opened 6 and closed 8 versions"),
    ({"rows_absent_from_snapshot": 2}, {}, {}, "2 table rows are absent from the snapshot"),
    ({"duplicate_keys": 1}, {}, {}, "1 member ids appear more than once"),
    ({"dim_member_current_rows": 7}, {}, {}, "dim_member has 7 current versions for 8 members"),
])
def test_reconcile_rejects_mismatches(bad_result, bad_commit, bad_dim, error):
    with pytest.raises(ReconciliationError, match=error):
        reconcile(MANIFEST, result(**bad_result), commit(**bad_commit), dim_commit(**bad_dim))


def test_a_commit_that_is_not_a_merge_is_refused():
    with pytest.raises(ReconciliationError, match="is a DELETE tagged None"):
        reconcile(MANIFEST, result(), {"operation": "DELETE", "operationMetrics": {}}, dim_commit())


def test_commit_info_is_read_from_the_delta_log_lines():
    lines = '{"add": {"path": "x"}}\n{"commitInfo": {"operation": "MERGE"}}\n'
    assert commit_info(lines.encode()) == {"operation": "MERGE"}
    with pytest.raises(ReconciliationError, match="no commitInfo"):
        commit_info('{"add": {}}')
