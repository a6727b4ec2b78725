"""The DAG's check of a merged batch: what landed, what the job says it did, and what its Delta commit
records must agree.

The upstream task states are not trusted alone (a killed task has been reported as a success before),
and neither is the job's own summary: the commit's operation metrics are read from the Delta log itself
(`_delta_log/<version>.json`, a small JSON file on S3), and the commit must carry the tag the job put on
it, so a result file pointing at some other commit, or counts that do not match the commit, fail the run.
"""

from __future__ import annotations

import json

from lakehouse_jobs.manifest import BatchManifest


class ReconciliationError(RuntimeError):
    """The batch's numbers disagree; the message lists every difference."""


def commit_info(delta_log_json: bytes | str) -> dict:
    """The `commitInfo` action of one Delta commit file (newline-delimited JSON actions)."""
    for line in (delta_log_json.decode() if isinstance(delta_log_json, bytes) else delta_log_json).splitlines():
        action = json.loads(line) if line.strip() else {}
        if "commitInfo" in action:
            return action["commitInfo"]
    raise ReconciliationError("the Delta commit file has no commitInfo action")


def reconcile_batch(manifest: BatchManifest, result: dict, commit: dict) -> dict:
    """The batch's counts, or ReconciliationError naming every check that fails.

    manifest: the published batch. result: the member_merge job's result JSON. commit: the commitInfo of
    the Delta version the result names (commit_info()). Checks: landed rows = valid + quarantined; the
    commit is a MERGE carrying the job's commit_tag; its source rows, inserted, updated and deleted rows
    (Delta's operationMetrics) agree with the result and with the table's row counts before and after it;
    the table holds each member id once; and after a snapshot it holds no member absent from the snapshot.
    """
    landed = manifest.row_count
    metrics = {k: int(v) for k, v in (commit.get("operationMetrics") or {}).items()}
    inserted = metrics.get("numTargetRowsInserted", 0)
    updated = metrics.get("numTargetRowsUpdated", 0)
    deleted = metrics.get("numTargetRowsDeleted", 0)
    problems = []

    def check(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    check(result.get("batch_id") == manifest.batch_id,
          f"result file is for batch {result.get('batch_id')!r}, manifest for {manifest.batch_id!r}")
    check(result["manifest_rows"] == landed,
          f"the job read {result['manifest_rows']} rows, the manifest lists {landed}")
    check(sum(result["quarantine_reasons"].values()) == result["quarantined_rows"],
          f"quarantine reasons {result['quarantine_reasons']} do not add up to {result['quarantined_rows']}")
    check(result["valid_rows"] + result["quarantined_rows"] == landed,
          f"valid {result['valid_rows']} + quarantined {result['quarantined_rows']} != landed {landed}")
    check(commit.get("operation") == "MERGE" and commit.get("userMetadata") == result["commit_tag"],
          f"Delta version {result['delta_version']} is a {commit.get('operation')} tagged "
          f"{commit.get('userMetadata')!r}, not this job's MERGE {result['commit_tag']!r}")
    check(metrics.get("numSourceRows") == result["merge_source_rows"],
          f"the commit merged {metrics.get('numSourceRows')} source rows, the job says {result['merge_source_rows']}")
    check(result["valid_rows"] <= result["merge_source_rows"] <= result["valid_rows"] + result["quarantined_rows"],
          f"merge source rows {result['merge_source_rows']} must be the valid rows plus at most one key per "
          "quarantined row")
    check(inserted + updated <= result["valid_rows"],
          f"inserted {inserted} + updated {updated} > valid rows {result['valid_rows']}")
    check(result["rows_after"] == result["rows_before"] + inserted - deleted,
          f"table rows {result['rows_before']} -> {result['rows_after']}, but the commit inserted {inserted} "
          f"and deleted {deleted}")
    check(result["duplicate_keys"] == 0, f"{result['duplicate_keys']} member ids appear more than once in the table")
    if manifest.mode == "snapshot":
        check(result.get("rows_absent_from_snapshot") == 0,
              f"{result.get('rows_absent_from_snapshot')} table rows are absent from the snapshot")
    if problems:
        raise ReconciliationError(f"batch {manifest.batch_id} does not reconcile: " + "; ".join(problems))
    return {
        "batch_id": manifest.batch_id,
        "landed_rows": landed,
        "valid_rows": result["valid_rows"],
        "quarantined_rows": result["quarantined_rows"],
        "quarantine_reasons": result["quarantine_reasons"],
        "inserted_rows": inserted,
        "updated_rows": updated,
        "deleted_rows": deleted,
        "delta_rows": result["rows_after"],
        "delta_version": result["delta_version"],
    }


def read_json(s3, bucket: str, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
