"""The invoice DAG's check of the job's result (include/reconcile.check_invoice_load)."""

from __future__ import annotations

import re

import pytest

from include.reconcile import ReconciliationError, check_invoice_load
from lakehouse_jobs.results import InvoiceLoadResult

pytestmark = pytest.mark.unit

CLAIMED = {"batch_id": "ingest_ts=20261130T100000", "batch_files": 10}
RESULT = {
    "batch_id": "ingest_ts=20261130T100000", "files_seen": 10, "files_skipped_already_processed": 2,
    "files_skipped_same_content": 1, "files_deferred": 0, "files_parsed": 7, "files_changed_during_run": 0,
    "invoices_loaded": 5, "invoices_new": 4, "invoices_replaced": 1, "invoices_unchanged": 0,
    "invoices_superseded": 0, "lines_loaded": 9, "lines_deleted": 1, "quarantined": 2,
    "quarantine_reasons": {"not_pdf": 1, "total_mismatch": 1}, "member_resolution": {"resolved": 5},
    "members_fixed_up": {}, "commit_tag": "invoice_load x 1", "lines_inserted": 8, "lines_updated": 1,
    "versions": {"fact_invoice": 3},
}


def test_a_consistent_result_passes_and_is_summarised():
    summary = check_invoice_load(CLAIMED, InvoiceLoadResult.from_dict(RESULT))
    assert summary["invoices_loaded"] == 5 and summary["quarantine_reasons"] == {"not_pdf": 1, "total_mismatch": 1}


@pytest.mark.parametrize("change,message", [
    ({"batch_id": "ingest_ts=other"}, "result file is for batch"),
    ({"files_seen": 9, "files_parsed": 6, "invoices_loaded": 4}, "the job saw 9 files, the batch holds 10"),
    ({"files_parsed": 8}, "files seen 10 != skipped 3 + deferred 0 + parsed 8"),
    ({"invoices_loaded": 6}, "files parsed 7 != loaded 6"),
    ({"quarantine_reasons": {"not_pdf": 1}}, "do not add up to 2"),
    ({"lines_loaded": 3}, "4 new invoices written with only 3 lines"),
])
def test_each_inconsistency_is_named(change, message):
    with pytest.raises(ReconciliationError, match=re.escape(message)):
        check_invoice_load(CLAIMED, InvoiceLoadResult.from_dict(RESULT | change))
