"""Counts that must agree after a batch is merged, checked from the files themselves.

The upstream task states are not trusted alone (a killed task has been reported as a success before):
the manifest says what landed, the Spark job's result file says what it merged and quarantined.
"""

from __future__ import annotations

import json

from lakehouse_jobs.manifest import BatchManifest


class ReconciliationError(RuntimeError):
    pass


def reconcile_batch(manifest: BatchManifest, result: dict) -> dict:
    """Return the batch's counts, or raise if landed rows != merged + quarantined rows."""
    if result.get("batch_id") != manifest.batch_id:
        raise ReconciliationError(
            f"result file is for batch {result.get('batch_id')!r}, manifest for {manifest.batch_id!r}"
        )
    landed = manifest.row_count
    counts = {
        "batch_id": manifest.batch_id,
        "landed_rows": landed,
        "valid_rows": result["valid_rows"],
        "quarantined_rows": result["quarantined_rows"],
        "delta_rows_total": result["delta_rows_total"],
        "delta_version": result["delta_version"],
    }
    problems = []
    if result["manifest_rows"] != landed:
        problems.append(f"the job read {result['manifest_rows']} rows, the manifest lists {landed}")
    if result["valid_rows"] + result["quarantined_rows"] != landed:
        problems.append(
            f"valid {result['valid_rows']} + quarantined {result['quarantined_rows']} != landed {landed}"
        )
    if problems:
        raise ReconciliationError(f"batch {manifest.batch_id} does not reconcile: " + "; ".join(problems))
    return counts


def read_json(s3, bucket: str, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
