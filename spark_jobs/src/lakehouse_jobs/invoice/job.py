"""Load retail invoice PDFs into the invoice star schema (lakehouse_jobs.invoice.tables,
docs/invoice-star-schema.md).

Entry point `invoice_load` of the jobs wheel (a Databricks `python_wheel_task`; ``main``, the steps are the
modules of lakehouse_jobs.invoice):

    invoice_load --manifest s3://<landing>/invoices/batches/<batch>/_files.json
                 --member-cards s3://<landing>/member_card/.../_manifest.json
                 --tables-root s3://<lakehouse>/delta --result-path s3://<lakehouse>/_results/invoice/<run>.json

Steps, in ``load``; each a function of its module of lakehouse_jobs.invoice (files, parse, dimensions,
members, facts, ledger; shapes in their docstrings):
1. ``list_files``: the files a ``--manifest`` lists (lakehouse_jobs.manifest.FileList, written by the DAG's
   claim), every one of them, or every file under ``--incoming`` (recursively; for local use: Spark hides
   names starting with ``_`` or ``.`` and zero-byte files): path, size and modification time, without
   reading a byte of content. Not only ``*.pdf``: a mislabelled or empty upload is quarantined as
   ``not_pdf`` rather than ignored.
2. ``unseen_files``: files the ledger holds with the same path, size and modification time were processed
   before; nothing of them is read again (originals stay where they are, so the prefix keeps every file
   ever received, and only the new ones cost a read).
3. ``hash_files`` and ``plan_files``: a file over ``--max-file-bytes`` (64 MiB) is quarantined ``too_large``
   from its listed size and never read (``too_large_rows``); the rest are read and hashed in Spark (SHA-256
   of the bytes); content already in the ledger is skipped (the same PDF under another name), and content
   present twice in this run is processed once (its first path by name).
4. ``parse_files``: the files to parse, repartitioned to about FILES_PER_TASK files per task, are parsed in
   parallel on the executors (``mapInArrow`` over ``parse_invoice_file``: lakehouse_jobs.invoice.pdf's
   parser, document.check_arithmetic, then allocate_adjustments), each file within ``--parse-seconds``
   (lakehouse_jobs.invoice.budget: a file that hangs the parser is quarantined ``parse_timeout``).
5. ``decide``: unreadable or unbalanced invoices are quarantined; of valid files with one invoice number in
   a run, the one that arrived last (the file list's arrival time, else its modification time; then the
   last path) is loaded and the others are ``superseded``: arrival order is taken as issue order, as it is
   across runs.
6. Dimensions: ``seed_dim_date`` and ``seed_dim_currency`` (generated), then ``insert_new_keys`` for products,
   payment methods, payment terms (a junk dimension), sellers and bill-to/ship-to parties (names and
   addresses encrypted, lakehouse_jobs.pii).
7. ``resolve_members``: the invoice's member number -> member_card -> dim_member version in effect at the
   invoice date, or NULL with the reason in ``member_resolution``.
8. ``merge_fact_invoice``, then ``merge_fact_invoice_line``: MERGE on invoice_number (+ line_number). A new
   content (source_sha256) of a known invoice number is a corrected re-issue: its header is replaced, its
   lines updated, inserted or deleted so that exactly the re-issue's lines remain. Content already loaded
   changes nothing and commits nothing.
9. ``write_quarantine``: one row per quarantined content, with a stable reason code.
10. ``fix_up_members``: every run re-resolves facts whose member was unresolved (unknown card, card of a
    member not yet in dim_member): the late-arriving dimension rows are picked up when they arrive.
11. ``write_ledger`` last: a run that fails before it leaves the files unrecorded, so the next run processes
    them again, and every step above is idempotent for content it already applied.
12. The result JSON (counts and commit versions), written to ``--result-path`` last.

Member mapping: the invoice's "Member No." is a membership card number. ``--member-cards`` is the
member_card table as Parquet (a file, a directory, or a landing batch's ``_manifest.json``, whose files are
read exactly) with ``card_number`` (text, compared with the printed digits exactly) and ``member_id``; the
member dimension is ``<tables-root>/dim_member`` (written by member_merge; an absent table counts as empty).

Quarantine reasons (codes.QUARANTINE_REASONS): the parser's (pdf.REASONS: not_pdf,
truncated, encrypted, no_text_layer, ...), check_arithmetic's first code without its ``:<where>`` suffix
(line_amount_mismatch, subtotal_mismatch, total_mismatch, balance_mismatch, ...; the detail lists every
code), date_out_of_range (a date outside dim_date), amount_out_of_range (a number too large for its
column), parser_error (an unforeseen exception: a bug, named in the detail, or the parser's process died),
too_large, parse_timeout.

Needs a classic cluster (``spark._jvm`` for the result file), like member_merge.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse_jobs import hadoop_fs, pii
from lakehouse_jobs.delta import ensure_table
from lakehouse_jobs.entry import TablePaths, run_job
from lakehouse_jobs.invoice.dimensions import (
    currency_rows,
    dimension_keys,
    insert_new_keys,
    invoice_terms_rows,
    party_hash,
    party_rows,
    payment_method_rows,
    product_rows,
    seed_dim_date,
    seller_hash,
    seller_rows,
    terms_hash,
    upsert_changed,
)
from lakehouse_jobs.invoice.exchange_rates import check_reporting_currency
from lakehouse_jobs.invoice.facts import header_rows, line_rows, merge_fact_invoice, merge_fact_invoice_line
from lakehouse_jobs.invoice.files import Listed, decide, hash_files, list_files, listed_files, plan_files, unseen_files
from lakehouse_jobs.invoice.ledger import insert_absent, ledger_rows, quarantine_rows
from lakehouse_jobs.invoice.members import fix_up_members, member_versions, read_member_cards, resolve_members
from lakehouse_jobs.invoice.parse import parse_files, too_large_rows
from lakehouse_jobs.invoice.tables import INVOICE_TABLES
from lakehouse_jobs.manifest import FileList
from lakehouse_jobs.results import InvoiceLoadParams, InvoiceLoadResult
from lakehouse_jobs.steps import materialise, timed

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None, spark: SparkSession | None = None) -> InvoiceLoadResult:
    """The entry point: run_job(InvoiceLoadParams, load); `spark` for tests (lakehouse_jobs.entry)."""
    return run_job(InvoiceLoadParams, load, argv, spark)


def load(spark: SparkSession, params: InvoiceLoadParams, paths: TablePaths) -> InvoiceLoadResult:
    """The job (module docstring): arguments from `argv` (default sys.argv), the session from the cluster
    unless `spark` is given. PII keys from the environment (pii.PiiKeys.from_env).

    Returns (run_job writes it to --result-path, last): batch_id, commit_tag; files_seen,
    files_skipped_already_processed
    (by path, size and time, or by content), files_skipped_same_content (a copy within this run),
    files_changed_during_run, files_deferred (beyond --max-files), files_parsed; invoices_loaded (= invoices_new
    + invoices_replaced + invoices_unchanged: content loaded before a failed run recorded it), invoices_superseded;
    lines_loaded (= lines_inserted + lines_updated), lines_deleted; quarantined and quarantine_reasons
    {reason: files}; member_resolution {code: invoices of this run}; members_fixed_up {new code: older
    invoices re-resolved}; versions {table: the last version this run committed, or null}.
    Raises PiiKeyError without usable keys; Spark's AnalysisException for a missing --incoming, listed file
    or --member-cards; ManifestError (a ValueError) for an invalid --manifest; ValueError for a listed file
    Spark hides, member cards without their columns, or a --reporting-currency without ECB rates.
    """
    keys = pii.PiiKeys.from_env()
    check_reporting_currency(params.reporting_currency)
    batch_id = params.batch_id or f"invoice_load-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}"
    commit_tag = f"invoice_load {batch_id} {uuid.uuid4()}"
    versions: dict[str, int | None] = dict.fromkeys(INVOICE_TABLES)

    with timed("ensure_tables", log):
        for spec in INVOICE_TABLES.values():
            ensure_table(spark, spec, paths[spec.name])
        versions["dim_date"] = seed_dim_date(spark, paths["dim_date"], commit_tag)
        versions["dim_currency"] = upsert_changed(
            spark, paths["dim_currency"], currency_rows(spark, batch_id), ["currency_code"],
            ["currency_name", "numeric_code", "minor_unit", "printed_prefix"], commit_tag)

    with timed("list_files", log):
        ledger = spark.read.format("delta").load(paths["invoice_ledger"])
        listed: Listed = {}
        if params.manifest:
            file_list = FileList.from_json(hadoop_fs.read_text(spark, params.manifest), source=params.manifest)
            listed = listed_files(spark, file_list)
            listing = materialise(list_files(spark, paths=list(listed), listed=listed))
        else:
            listing = materialise(list_files(spark, incoming=params.incoming))
        files_seen = listing.count()
        if params.manifest and files_seen != len(listed):
            raise ValueError(f"{params.manifest}: Spark read {files_seen} of its {len(listed)} files (it hides names "
                             "starting with '_' or '.'; include/invoice_landing.claimed_name avoids them)")
        unseen = unseen_files(listing, ledger).orderBy("file_modified_at", "source_path").collect()
        deferred = max(0, len(unseen) - params.max_files)
        taken = unseen[:params.max_files]
        # judged from its listed size, never read: one huge upload must not fail the run, and every run after it
        too_large = [(r["source_path"], r["file_size"], r["file_modified_at"]) for r in taken
                     if r["file_size"] > params.max_file_bytes]
        unseen_paths = [r["source_path"] for r in taken if r["file_size"] <= params.max_file_bytes]
    with timed("hash_files", log):
        refused = too_large_rows(spark, too_large, params.max_file_bytes)
        planned = materialise(plan_files(hash_files(spark, unseen_paths, listed), ledger).unionByName(
            refused.select("source_path", "source_sha256").join(listing, "source_path")
            .withColumn("_action", F.lit("too_large"))))
        actions = {r["_action"]: r["count"] for r in planned.groupBy("_action").count().collect()}
        to_parse = [r["source_path"] for r in planned.where("_action = 'parse'").select("source_path").collect()]
    log.info("%d files listed, %d new by path, %d to parse (%s)", files_seen, len(unseen), len(to_parse), actions)

    with timed("parse", log):
        parsed = parse_files(spark, to_parse, listed, seconds=params.parse_seconds,
                             reporting_currency=params.reporting_currency).unionByName(refused)
        decided = materialise(decide(parsed, planned))
        outcomes = {r["outcome"]: r["count"] for r in decided.groupBy("outcome").count().collect()}
        reasons = {r["reason"]: r["count"] for r in
                   decided.where("outcome = 'quarantined'").groupBy("reason").count().collect()}
    cards = materialise(read_member_cards(spark, params.member_cards))
    dim_member = member_versions(spark, paths["dim_member"])

    fact_counts: dict[str, int] = {"new": 0, "replaced": 0, "unchanged": 0}
    line_counts: dict[str, int] = {"inserted": 0, "updated": 0, "deleted": 0}
    resolutions: dict[str, int] = {}
    if outcomes.get("loaded"):
        with timed("dimensions", log):
            # the key columns are dropped before anything is kept on disk
            loaded = materialise(pii.drop_keys(pii.with_keys(spark, decided.where("outcome = 'loaded'"), keys).select(
                "*", terms_hash().alias("terms_hash"), seller_hash().alias("seller_hash"),
                party_hash("bill_to").alias("bill_to_hash"),
                party_hash("ship_to").alias("ship_to_hash"))))
            lines = loaded.select(F.explode("lines").alias("l")).select("l.*")
            versions["dim_product"] = insert_new_keys(spark, paths["dim_product"], product_rows(lines),
                                                      "product_nk", batch_id, commit_tag)
            versions["dim_payment_method"] = insert_new_keys(
                spark, paths["dim_payment_method"], payment_method_rows(loaded), "payment_method_nk", batch_id,
                commit_tag)
            versions["dim_invoice_terms"] = insert_new_keys(
                spark, paths["dim_invoice_terms"], invoice_terms_rows(loaded), "terms_hash", batch_id, commit_tag)
            versions["dim_seller"] = insert_new_keys(spark, paths["dim_seller"], seller_rows(loaded), "seller_hash",
                                                     batch_id, commit_tag)
            versions["dim_party_address"] = insert_new_keys(
                spark, paths["dim_party_address"], pii.drop_keys(party_rows(pii.with_keys(spark, loaded, keys))),
                "party_hash", batch_id, commit_tag)
            headers = materialise(dimension_keys(spark, paths, loaded))
        with timed("members", log):
            members = materialise(resolve_members(
                headers.select("invoice_number", "invoice_date", F.col("member_number").alias("member_card_number")),
                cards, dim_member))
            resolutions = {r["member_resolution"]: r["count"]
                           for r in members.groupBy("member_resolution").count().collect()}
        with timed("facts", log):
            facts = materialise(header_rows(headers, members, batch_id))
            products = spark.read.format("delta").load(paths["dim_product"]).select("product_key", "product_nk")
            fact_lines = materialise(line_rows(headers, facts, products, batch_id))
            versions["fact_invoice"], fact_counts = merge_fact_invoice(spark, paths["fact_invoice"], facts, commit_tag)
            versions["fact_invoice_line"], line_counts = merge_fact_invoice_line(
                spark, paths["fact_invoice_line"], fact_lines, commit_tag)
    if outcomes.get("quarantined"):
        with timed("quarantine", log):
            rows = pii.drop_keys(quarantine_rows(pii.with_keys(spark, decided, keys), batch_id))
            versions["invoice_quarantine"] = insert_absent(spark, paths["invoice_quarantine"], rows, commit_tag)
    with timed("member_fix_up", log):
        fixed_versions, fixed = fix_up_members(spark, paths, cards, dim_member, commit_tag)
        for name, version in fixed_versions.items():
            versions[name] = version if version is not None else versions[name]
    if sum(v for k, v in outcomes.items() if k != "changed"):
        with timed("ledger", log):
            versions["invoice_ledger"] = insert_absent(spark, paths["invoice_ledger"], ledger_rows(decided, batch_id),
                                                       commit_tag)

    result = InvoiceLoadResult(
        batch_id=batch_id,
        commit_tag=commit_tag,
        files_seen=files_seen,
        files_skipped_already_processed=files_seen - len(unseen) + actions.get("processed", 0),
        files_skipped_same_content=actions.get("same_content", 0),
        files_changed_during_run=outcomes.get("changed", 0),
        files_deferred=deferred,
        files_parsed=len(to_parse) + len(too_large),
        invoices_loaded=outcomes.get("loaded", 0),
        invoices_new=fact_counts["new"],
        invoices_replaced=fact_counts["replaced"],
        invoices_unchanged=fact_counts["unchanged"],
        invoices_superseded=outcomes.get("superseded", 0),
        lines_loaded=line_counts["inserted"] + line_counts["updated"],
        lines_inserted=line_counts["inserted"],
        lines_updated=line_counts["updated"],
        lines_deleted=line_counts["deleted"],
        quarantined=outcomes.get("quarantined", 0),
        quarantine_reasons=reasons,
        member_resolution=resolutions,
        members_fixed_up=fixed,
        versions=versions,
    )
    log.info("invoice_load %s: %s", batch_id, result)
    return result
