"""Apply one published `member` batch to the Delta tables `member` (current state) and `dim_member` (SCD2).

Entry point `member_merge` of the jobs wheel (``main``): a Databricks `python_wheel_task`, run the same
way by the local runner (spark_jobs/README.md).

Steps, in ``apply_batch``; each is a function of its own module of lakehouse_jobs.member (change_tracking,
plan, clean, validate, quarantine, protect, merge_dim_member, merge_member, table_facts, batches):
1. ``read_manifest``: the batch's ``_manifest.json`` (docs/conventions.md), checked.
2. ``check_order``: refuse a batch extracted before the last one applied (history only moves forward).
3. Plan. ``change_set_refusal``: the batch's change set (the rows the extract found changed against the
   change state, include/extract/change_set.py) is trusted when its base version is still the member table's
   last data-changing commit; then ``read_batch`` reads only its files and ``plan_from_change_set`` takes
   its kinds (new, changed, duplicate, deleted) as they are: no row of the table is read. Otherwise
   ``read_batch`` reads the whole snapshot and ``plan_changes`` compares each row's hash (``_row_hash``,
   landed by the extract: lakehouse_jobs.change_hash) with the source_hash the member table kept, per
   member_id. Either way unchanged rows go no further, so the per-row Python work (email, phone, country)
   runs on what changed; the result says which way (``change_detection``).
4. ``clean_members``, ``flag_rows`` and ``split_flagged`` on the candidates: normalise the rows (rules
   below), give each bad row the first quarantine reason that applies, and split valid from quarantined.
5. ``write_quarantine``: replace this batch's verdicts on the rows it evaluated in the quarantine table
   (a rerun keeps those of the rows it did not evaluate again), direct identifiers encrypted.
6. Fail (BatchError, tables unchanged) when the quarantined share exceeds ``--max-quarantine-ratio`` or a
   snapshot would delete more than ``--max-delete-ratio`` of the table.
7. ``protect``: email_hash, attribute_hash, and direct identifiers encrypted (lakehouse_jobs.pii).
8. ``merge_dim_member``: SCD type 2. A member whose standardised attributes changed gets its current row
   closed at the batch's extraction time and a new current row; a new member gets its first row; a member
   deleted at the source gets its current row closed. Runs before the member table's MERGE, so that a
   retry after a failure between the two finds the change again (it is detected against the member table).
9. ``merge_members``: the current-state table, upserts and deletions on member_id. Nothing is committed
   when nothing changed, so an unchanged replay writes no file. Into an empty table (a first load) both
   MERGEs have their insert clause only (lakehouse_jobs.delta.is_empty).
10. ``write_change_state`` (with ``--change-state``): the member table's (member_id, source_hash) at the
   version just written, with the quarantined rows the source still holds, for the next extract; not
   rewritten when the batch changed nothing and the state is current.
11. ``record_batch`` in member_batches; ``apply_batch`` returns the result, which ``run_job``
   (lakehouse_jobs.entry) writes to ``--result-path`` last: counts for the DAG's reconciliation
   (manifest_rows = unchanged_rows + valid_rows + quarantined_rows).

Cleaning rules:
- All strings: leading/trailing whitespace trimmed; blank -> null. Nothing else is changed, so names in
  any script (CJK, emoji, combining accents) keep their exact bytes.
- member_id: lakehouse_jobs.keys.member_key (any Unicode white space trimmed, lower-cased), because UUID
  text is case-insensitive and the key must have one spelling everywhere, the erasures included.
- email: email-validator's normalised form (standardise.email_to_normalised: domain lower-cased and in
  Unicode, the local part's case kept but for role names like info@), internationalised addresses
  included. Null is allowed (the column is nullable); a non-null address the library rejects
  quarantines the row.
- country_code (new column): ISO 3166-1 alpha-2 code, or XK for Kosovo, resolved exactly
  (standardise.country_to_code), else null; the raw ``country`` is always kept.
- phone_e164 (new column): the phone number in E.164 (standardise.phone_to_e164: read in the member's
  exactly resolved country and as a US number; null when valid in neither or when the two readings
  differ), else null; the raw ``phone_number`` is kept. An unknown country or phone number is not a
  quarantine reason.

Quarantine reasons, in the order checked (a row gets the first that applies):
missing_member_id, invalid_member_id (not a UUID), duplicate_member_id (the id appears with different
contents more than once in the batch: every copy is quarantined), duplicate_row (an extra exact copy of
a row that is kept once), invalid_email, invalid_registration_date (the source held a date with no
calendar equivalent, such as MySQL's 0000-00-00: it landed as null with its text in
registration_date_raw), missing_registration_date, registration_date_in_future (after the run's UTC
date), registration_date_too_old (before 1900-01-01).
Quarantine rows keep the source columns as read (direct identifiers encrypted), plus quarantine_reason
(one of the codes above), quarantine_detail (for invalid_email, email-validator's message with the
address's own parts replaced by placeholders, such as "An email address must have an @-sign."; for
invalid_registration_date, the source text; else null), batch_id, quarantined_at.

Tables (declared in lakehouse_jobs.tables, created on first use) live under ``--tables-root``:
member, dim_member, member_quarantine and member_batches.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse_jobs import pii
from lakehouse_jobs.batch import BatchError, read_batch, read_manifest
from lakehouse_jobs.change_state import state_rules_version
from lakehouse_jobs.contracts import MEMBER
from lakehouse_jobs.delta import ensure_table
from lakehouse_jobs.entry import TablePaths, run_job
from lakehouse_jobs.member.batches import check_order, record_batch
from lakehouse_jobs.member.change_tracking import change_set_refusal, current_state, write_change_state
from lakehouse_jobs.member.clean import clean_members
from lakehouse_jobs.member.merge_dim_member import merge_dim_member
from lakehouse_jobs.member.merge_member import merge_members
from lakehouse_jobs.member.plan import plan_changes, plan_from_change_set, with_source_hash
from lakehouse_jobs.member.protect import protect, protect_quarantine
from lakehouse_jobs.member.quarantine import write_quarantine
from lakehouse_jobs.member.table_facts import table_facts
from lakehouse_jobs.member.validate import flag_rows, split_flagged
from lakehouse_jobs.results import MemberMergeParams, MemberMergeResult
from lakehouse_jobs.steps import materialise, timed
from lakehouse_jobs.tables import DIM_MEMBER, MEMBER_QUARANTINE, MEMBER_TABLE

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None, spark: SparkSession | None = None) -> MemberMergeResult:
    """The entry point: run_job(MemberMergeParams, apply_batch); `spark` for tests (lakehouse_jobs.entry)."""
    return run_job(MemberMergeParams, apply_batch, argv, spark)


def apply_batch(spark: SparkSession, params: MemberMergeParams, paths: TablePaths) -> MemberMergeResult:
    """The job, steps 1-11 of the module docstring. The PII keys come from the environment
    (lakehouse_jobs.pii.PiiKeys.from_env); a session setting carries the commit tag, so concurrent jobs
    need sessions of their own.

    Returns the facts the DAG reconciles: the batch's row counts, the versions and tag of the MERGE commits,
    and the member table's rows before and after (run_job writes them to --result-path, last).
    Raises PiiKeyError without a usable key, and BatchError, leaving the tables unchanged (the quarantine
    table aside), for an unusable or out-of-order batch, too many quarantined rows, or a snapshot that would
    delete more than --max-delete-ratio of the table.
    """
    keys = pii.PiiKeys.from_env()
    manifest = read_manifest(spark, params.manifest, MEMBER)
    batch_id = manifest.batch_id
    manifest_rows = manifest.row_count
    snapshot = manifest.mode == "snapshot"
    extracted_at = datetime.fromisoformat(manifest.extracted_at)
    log.info("batch %s: %d rows in %d files (%s)", batch_id, manifest_rows, len(manifest.files), manifest.mode)
    with timed("check_order", log):
        check_order(spark, paths["member_batches"], batch_id, extracted_at)
        for spec in (MEMBER_TABLE, DIM_MEMBER, MEMBER_QUARANTINE):
            ensure_table(spark, spec, paths[spec.name])

    with timed("plan_changes", log):
        table_version = DeltaTable.forPath(spark, paths["member"]).history(1).first()["version"]
        rules = state_rules_version(MEMBER.effective_rules_version)
        previous = current_state(spark, params.change_state) if params.change_state else None
        # a new rule library (or rules_version) answers every row anew: each is compared, cleaned and hashed again
        rules_change = previous is not None and previous.rules_version != rules and (
            f"the rules changed from {previous.rules_version} to {rules}: every row is standardised again")
        refusal = rules_change or change_set_refusal(spark, manifest.change_set, paths["member"], table_version)
        if refusal is None:
            change_set = manifest.change_set
            batch = with_source_hash(read_batch(spark, manifest, MEMBER, change_set.files,
                                                rows=sum(f.rows for f in change_set.files)))
            plan = plan_from_change_set(spark, change_set, [f.path for f in manifest.files], table_version)
            detection = "change set"
        else:
            log.info("batch %s: comparing the whole snapshot: %s", batch_id, refusal)
            batch = with_source_hash(read_batch(spark, manifest, MEMBER))
            table = spark.read.format("delta").option("versionAsOf", table_version).load(paths["member"])
            plan = plan_changes(batch, table, table_version, snapshot)
            detection = f"full snapshot: {refusal}"
        rows_before = plan.table_rows
    deleted_rows = plan.counts.get("deleted", 0)
    log.info("batch %s: rows by change %s (%s)", batch_id, plan.counts, detection)
    with timed("clean", log):
        cleaned = materialise(clean_members(plan.candidates(batch)))
    with timed("validate", log):
        flagged = materialise(flag_rows(cleaned, today=datetime.now(timezone.utc).date()))
    valid, quarantine = split_flagged(flagged)
    with timed("quarantine", log):
        write_quarantine(spark, protect_quarantine(pii.with_keys(spark, quarantine, keys)),
                         flagged.select("member_id"), paths["member_quarantine"], batch_id)
        by_reason = quarantine.groupBy("quarantine_reason").count().collect()
        reasons = {r["quarantine_reason"]: r["count"] for r in by_reason}
        quarantined_rows = sum(reasons.values())
        valid_rows = valid.count()
    log.info("batch %s: %d unchanged, %d valid changes, %d quarantined, %d deletions", batch_id,
             plan.counts.get("unchanged", 0), valid_rows, quarantined_rows, deleted_rows)

    if manifest_rows and quarantined_rows / manifest_rows > params.max_quarantine_ratio:
        raise BatchError(
            f"batch {batch_id}: {quarantined_rows} of {manifest_rows} rows quarantined, more than "
            f"--max-quarantine-ratio {params.max_quarantine_ratio}; see {paths['member_quarantine']} "
            f"where batch_id = '{batch_id}'. The member tables were not changed."
            + (f" This batch is the first since {rules_change.split(':')[0]}: compare its reasons with the last "
               "batch's before raising the limit for one run (the DAG's max_quarantine_ratio)."
               if rules_change else "")
        )
    if rows_before and deleted_rows / rows_before > params.max_delete_ratio:
        raise BatchError(
            f"batch {batch_id}: the snapshot would delete {deleted_rows} of {rows_before} members, more than "
            f"--max-delete-ratio {params.max_delete_ratio}; an empty or partial extract is likelier than "
            "a mass deletion. The member tables were not changed."
        )
    with timed("protect", log):
        changes = materialise(pii.drop_keys(protect(pii.with_keys(spark, valid, keys))))
    deleted = plan.deleted_keys()
    commit_tag = f"member_merge {batch_id} {uuid.uuid4()}"
    with timed("merge_dim_member", log):
        dim_version, attributes_changed = merge_dim_member(spark, changes, deleted, paths["dim_member"], batch_id,
                                       extracted_at, commit_tag)
    with timed("merge_members", log):
        version, source_rows = merge_members(spark, changes, deleted, paths["member"], batch_id,
                                             commit_tag)
    with timed("table_facts", log):
        facts = table_facts(spark, paths["member"], version, plan, snapshot)
        dim = spark.read.format("delta").load(paths["dim_member"]).agg(
            F.count(F.lit(1)).alias("rows"), F.count(F.when(F.col("is_current"), 1)).alias("current")).first()
        facts |= {"dim_member_rows": dim["rows"], "dim_member_current_rows": dim["current"]}

    if params.change_state:
        with timed("change_state", log):
            state_version = table_version if version is None else version
            state = current_state(spark, params.change_state)  # again: a run outside Airflow may have written one
            current = state is not None and (state.table_version, state.rules_version) == (state_version, rules)
            if not (current and plan.is_empty):
                from_change_set = refusal is None and state is not None and (
                    state.table_version == manifest.change_set.base_version)
                write_change_state(spark, paths["member"], params.change_state, state_version,
                                   facts["rows_after"], facts["duplicate_keys"], quarantine,
                                   carried=state if from_change_set else None,
                                   touched=plan.statuses.select("_key") if from_change_set else None)

    result = MemberMergeResult(
        batch_id=batch_id, manifest_rows=manifest_rows, unchanged_rows=plan.counts.get("unchanged", 0),
        valid_rows=valid_rows, quarantined_rows=quarantined_rows, quarantine_reasons=reasons,
        deleted_rows=deleted_rows, merge_source_rows=source_rows, delta_version=version,
        dim_member_version=dim_version, commit_tag=commit_tag, change_detection=detection,
        attributes_changed=attributes_changed, **facts,
    )
    with timed("record_batch", log):
        record_batch(spark, paths["member_batches"], extracted_at, result)
    log.info("batch %s applied: %s", batch_id, result)
    return result
