"""The DAG's check of a merged batch: what landed, what the job says it did, and what its Delta commit
records must agree.

The upstream task states are not trusted alone (a killed task has been reported as a success before),
and neither is the job's own summary: the commit's operation metrics are read from the Delta log itself
(`_delta_log/<version>.json`, a small JSON file on S3), and each commit must carry the tag the job put
on it, so a result file pointing at some other commit, or counts that do not match the commit, fail the
run. A batch that changed nothing committed nothing: its result names no version, and the counts must
say so.
"""

from __future__ import annotations

import json
from typing import TypeVar

from include import layout
from include.landing.manifest_io import read_manifest
from lakehouse_jobs.manifest import BatchManifest
from lakehouse_jobs.results import InvoiceLoadResult, JobResult, MemberMergeResult

R = TypeVar("R", bound=JobResult)


class ReconciliationError(RuntimeError):
    """The batch's numbers disagree; the message lists every difference."""


def commit_info(delta_log_json: bytes | str) -> dict:
    """The `commitInfo` action of one Delta commit file (newline-delimited JSON actions)."""
    for line in (delta_log_json.decode() if isinstance(delta_log_json, bytes) else delta_log_json).splitlines():
        action = json.loads(line) if line.strip() else {}
        if "commitInfo" in action:
            return action["commitInfo"]
    raise ReconciliationError("the Delta commit file has no commitInfo action")


def reconcile_batch(manifest: BatchManifest, result: MemberMergeResult, commit: dict | None,
                    dim_commit: dict | None = None) -> dict:
    """The batch's counts, or ReconciliationError naming every check that fails.

    manifest: the published batch. result: the member_merge job's result. commit / dim_commit: the
    commitInfo (commit_info()) of the member and dim_member versions the result names, None where it names
    none (nothing changed, nothing committed). Checks: landed rows = unchanged + valid + quarantined; each
    commit is a MERGE carrying the job's commit_tag; the member commit's source, inserted, updated and
    deleted rows (Delta's operationMetrics) agree with the result and with the table's row counts before
    and after it; dim_member closed no more versions than members changed or deleted; the table holds
    each member id once; and after a snapshot it holds no member absent from the snapshot.
    """
    landed = manifest.row_count
    metrics = _metrics(commit)
    inserted = metrics.get("numTargetRowsInserted", 0)
    updated = metrics.get("numTargetRowsUpdated", 0)
    deleted = metrics.get("numTargetRowsDeleted", 0)
    dim_metrics = _metrics(dim_commit)
    opened = dim_metrics.get("numTargetRowsInserted", 0)
    closed = dim_metrics.get("numTargetRowsUpdated", 0)
    problems = []

    def check(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    check(result.batch_id == manifest.batch_id,
          f"result file is for batch {result.batch_id!r}, manifest for {manifest.batch_id!r}")
    check(result.manifest_rows == landed,
          f"the job read {result.manifest_rows} rows, the manifest lists {landed}")
    check(sum(result.quarantine_reasons.values()) == result.quarantined_rows,
          f"quarantine reasons {result.quarantine_reasons} do not add up to {result.quarantined_rows}")
    check(result.unchanged_rows + result.valid_rows + result.quarantined_rows == landed,
          f"unchanged {result.unchanged_rows} + valid {result.valid_rows} + quarantined "
          f"{result.quarantined_rows} != landed {landed}")
    for name, version, info in (("member", result.delta_version, commit),
                                ("dim_member", result.dim_member_version, dim_commit)):
        if version is None:
            check(info is None, f"the result names no {name} commit, but one was given")
            continue
        info = info or {}
        check(info.get("operation") == "MERGE" and info.get("userMetadata") == result.commit_tag,
              f"{name} version {version} is a {info.get('operation')} tagged "
              f"{info.get('userMetadata')!r}, not this job's MERGE {result.commit_tag!r}")
    # without a commit (the MERGE found nothing to change, or had an empty source) there are no metrics
    check(commit is None or metrics.get("numSourceRows", 0) == result.merge_source_rows,
          f"the commit merged {metrics.get('numSourceRows', 0)} source rows, "
          f"the job says {result.merge_source_rows}")
    check(result.merge_source_rows == result.valid_rows + result.deleted_rows,
          f"merge source rows {result.merge_source_rows} != valid changes {result.valid_rows} + deletions "
          f"{result.deleted_rows}")
    check(inserted + updated <= result.valid_rows,
          f"inserted {inserted} + updated {updated} > valid rows {result.valid_rows}")
    check(deleted == result.deleted_rows,
          f"the commit deleted {deleted} rows, the job planned {result.deleted_rows} deletions")
    check(result.rows_after == result.rows_before + inserted - deleted,
          f"table rows {result.rows_before} -> {result.rows_after}, but the commit inserted {inserted} "
          f"and deleted {deleted}")
    check(closed <= opened + result.deleted_rows and opened <= result.valid_rows,
          f"dim_member opened {opened} and closed {closed} versions for {result.valid_rows} changed and "
          f"{result.deleted_rows} deleted members")
    check(result.dim_member_current_rows == result.rows_after,
          f"dim_member has {result.dim_member_current_rows} current versions for {result.rows_after} members")
    check(result.duplicate_keys == 0, f"{result.duplicate_keys} member ids appear more than once in the table")
    if manifest.mode == "snapshot":
        check(result.rows_absent_from_snapshot == 0,
              f"{result.rows_absent_from_snapshot} table rows are absent from the snapshot")
    if problems:
        raise ReconciliationError(f"batch {manifest.batch_id} does not reconcile: " + "; ".join(problems))
    return {
        "batch_id": manifest.batch_id,
        "landed_rows": landed,
        "unchanged_rows": result.unchanged_rows,
        "valid_rows": result.valid_rows,
        "quarantined_rows": result.quarantined_rows,
        "quarantine_reasons": result.quarantine_reasons,
        "inserted_rows": inserted,
        "updated_rows": updated,
        "deleted_rows": deleted,
        "delta_rows": result.rows_after,
        "delta_version": result.delta_version,
        "dim_member_versions_opened": opened,
        "dim_member_versions_closed": closed,
        "dim_member_version": result.dim_member_version,
        "dim_member_rows": result.dim_member_rows,
        "dim_member_current_rows": result.dim_member_current_rows,
        # "change set", or "full snapshot: <why>": whether the daily run paid only for what changed
        "change_detection": result.change_detection,
    }


def _metrics(commit: dict | None) -> dict[str, int]:
    return {k: int(v) for k, v in ((commit or {}).get("operationMetrics") or {}).items()}


def read_result(s3, bucket: str, key: str, result_type: type[R]) -> R:
    """The job's result file at s3://`bucket`/`key`, parsed as `result_type`; ResultError (a ValueError)
    naming the file and every missing or mistyped key, botocore's ClientError when it is absent."""
    return result_type.from_json(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), source=f"s3://{bucket}/{key}")


def reconcile_member_batch(s3, batch_id: str, *, landing_bucket: str, lakehouse_bucket: str) -> dict:
    """reconcile_batch for one landed member batch, reading what it needs from S3 (`s3`, a boto3 client):
    the batch's manifest, the job's result file, and the Delta commits the result names (none for a table
    the batch did not change). Raises ReconciliationError, or botocore's ClientError for a missing object."""
    manifest = read_manifest(s3, landing_bucket, "member", batch_id)
    result = read_result(s3, lakehouse_bucket, layout.result_key("member", batch_id), MemberMergeResult)

    def commit(table: str, version: int | None) -> dict | None:
        if version is None:  # the batch changed nothing in this table: nothing was committed
            return None
        key = layout.delta_commit_key(table, version)
        return commit_info(s3.get_object(Bucket=lakehouse_bucket, Key=key)["Body"].read())

    return reconcile_batch(manifest, result, commit("member", result.delta_version),
                           commit("dim_member", result.dim_member_version))


def confirm_unchanged_batch(s3, batch_id: str, *, landing_bucket: str, lakehouse_bucket: str) -> dict:
    """The check of a batch that changed nothing, for which no job ran: its change set says every landed row
    is settled (in the member table at its base version, or quarantined unchanged) and nothing is deleted,
    and the table still holds that version's data (include/extract/change_set.stale_reason). Returns the
    batch's counts; raises ReconciliationError naming what disagrees (then the batch needs its Databricks run
    after all)."""
    from include.extract.change_set import stale_reason

    manifest = read_manifest(s3, landing_bucket, "member", batch_id)
    change_set = manifest.change_set
    if change_set is None or not change_set.is_empty:
        raise ReconciliationError(f"batch {batch_id} is not an unchanged day: its change set is "
                                  f"{change_set and change_set.counts}")
    problems = []
    if change_set.counts["unchanged"] != manifest.row_count:
        problems.append(f"{manifest.row_count} rows landed, {change_set.counts['unchanged']} unchanged")
    if reason := stale_reason(s3, lakehouse_bucket, layout.delta_table_key("member") + "/", change_set.base_version):
        problems.append(f"the member table is no longer version {change_set.base_version}'s data: {reason}")
    if problems:
        raise ReconciliationError(f"batch {batch_id} does not reconcile as unchanged: " + "; ".join(problems))
    return {"batch_id": batch_id, "landed_rows": manifest.row_count, "unchanged_rows": manifest.row_count,
            "member_version": change_set.base_version, "no_changes": True}


def check_invoice_load(claimed: dict, result: InvoiceLoadResult) -> dict:
    """The invoice batch's counts, or ReconciliationError naming every check that fails.

    claimed: include.invoice_landing.claim_incoming's result (``batch_files``: the files in the run's list).
    result: the invoice_load job's result. Every file of the batch is accounted for exactly once:
    seen = the batch's files = skipped (in the ledger already, or a copy within the batch) + deferred +
    parsed, and parsed = loaded + quarantined + superseded (an older version of an invoice in the same
    batch) + changed while the run read it; the quarantine reasons add up; a new invoice has lines.
    """
    problems = []

    def check(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    r = result
    check(r.batch_id == claimed["batch_id"],
          f"result file is for batch {r.batch_id!r}, the run claimed {claimed['batch_id']!r}")
    check(r.files_seen == claimed["batch_files"],
          f"the job saw {r.files_seen} files, the batch holds {claimed['batch_files']}")
    skipped = r.files_skipped_already_processed + r.files_skipped_same_content
    check(r.files_seen == skipped + r.files_deferred + r.files_parsed,
          f"files seen {r.files_seen} != skipped {skipped} + deferred {r.files_deferred} + parsed "
          f"{r.files_parsed}")
    outcomes = r.invoices_loaded + r.quarantined + r.invoices_superseded + r.files_changed_during_run
    check(r.files_parsed == outcomes,
          f"files parsed {r.files_parsed} != loaded {r.invoices_loaded} + quarantined {r.quarantined} + "
          f"superseded {r.invoices_superseded} + changed during the run {r.files_changed_during_run}")
    check(sum(r.quarantine_reasons.values()) == r.quarantined,
          f"quarantine reasons {r.quarantine_reasons} do not add up to {r.quarantined}")
    # a re-issue may change only its header; a new invoice brings at least one line
    check(r.lines_loaded >= r.invoices_new,
          f"{r.invoices_new} new invoices written with only {r.lines_loaded} lines")
    if problems:
        raise ReconciliationError(f"invoice batch {claimed['batch_id']} does not reconcile: " + "; ".join(problems))
    summary = r.to_dict()
    return {k: summary[k] for k in (
        "batch_id", "files_seen", "files_skipped_already_processed", "files_skipped_same_content",
        "files_changed_during_run", "files_deferred", "files_parsed", "invoices_loaded", "invoices_new",
        "invoices_replaced", "invoices_superseded", "lines_loaded", "lines_deleted", "quarantined",
        "quarantine_reasons", "member_resolution", "members_fixed_up")}
