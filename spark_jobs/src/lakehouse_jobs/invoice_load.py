"""Load retail invoice PDFs into the invoice star schema (lakehouse_jobs.invoice_tables,
docs/invoice-star-schema.md).

Entry point `invoice_load` of the jobs wheel (a Databricks `python_wheel_task`):

    invoice_load --manifest s3://<landing>/invoices/batches/<batch>/_files.json
                 --member-cards s3://<landing>/member_card/.../_manifest.json
                 --tables-root s3://<lakehouse>/delta --result-path s3://<lakehouse>/_results/invoice/<run>.json

Steps, each a function below (shapes in their docstrings):
1. ``list_files``: the files a ``--manifest`` lists (lakehouse_jobs.manifest.FileList, written by the DAG's
   claim), every one of them, or every file under ``--incoming`` (recursively; for local use: Spark hides
   names starting with ``_`` or ``.`` and zero-byte files): path, size and modification time, without
   reading a byte of content. Not only ``*.pdf``: a mislabelled or empty upload is quarantined as
   ``not_pdf`` rather than ignored.
2. ``unseen_files``: files the ledger holds with the same path, size and modification time were processed
   before; nothing of them is read again (originals stay where they are, so the prefix keeps every file
   ever received, and only the new ones cost a read).
3. ``hash_files`` and ``plan_files``: the rest are read and hashed in Spark (SHA-256 of the bytes); content
   already in the ledger is skipped (the same PDF under another name), and content present twice in this
   run is processed once (its first path by name).
4. ``parse_files``: the files to parse, repartitioned to about FILES_PER_TASK files per task, are parsed in
   parallel on the executors (``mapInArrow`` over ``parse_invoice_file``: lakehouse_jobs.invoice_pdf's
   parser, invoice_document.check_arithmetic, then allocate_adjustments).
5. ``decide``: unreadable or unbalanced invoices are quarantined; of valid files with one invoice number in
   a run, the one that arrived last (the file list's arrival time, else its modification time; then the
   last path) is loaded and the others are ``superseded``: arrival order is taken as issue order, as it is
   across runs.
6. Dimensions: ``seed_dim_date`` and ``seed_dim_currency`` (generated), then ``insert_new_keys`` for products,
   payment methods, sellers and bill-to/ship-to parties (names and addresses encrypted, lakehouse_jobs.pii).
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
read exactly) with ``card_number`` (bigint or digits as text, compared as numbers) and ``member_id``; the
member dimension is ``<tables-root>/dim_member`` (written by member_merge; an absent table counts as empty).

Quarantine reasons (invoice_tables.QUARANTINE_REASONS): the parser's (invoice_pdf.REASONS: not_pdf,
truncated, encrypted, no_text_layer, ...), check_arithmetic's first code without its ``:<where>`` suffix
(line_amount_mismatch, subtotal_mismatch, total_mismatch, balance_mismatch, ...; the detail lists every
code), date_out_of_range (a date outside dim_date), amount_out_of_range (a number too large for its
column), parser_error (an unforeseen exception: a bug, named in the detail).

Needs a classic cluster (``spark._jvm`` for the result file), like member_merge.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import logging
import math
import os
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pycountry
from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse_jobs import hadoop_fs, pii
from lakehouse_jobs.delta import ensure_table, retry_on_conflict, tagged_commit
from lakehouse_jobs.invoice_document import (
    ADJUSTMENT_SIGNS,
    CURRENCY_EXPONENTS,
    InvoiceDocument,
    Party,
    allocate_adjustments,
    check_arithmetic,
)
from lakehouse_jobs.invoice_pdf import CURRENCY_PREFIXES, InvoiceParseError, parse_invoice_pdf
from lakehouse_jobs.invoice_tables import (
    DIM_DATE,
    FACT_INVOICE,
    FACT_INVOICE_LINE,
    FIRST_DATE,
    INVOICE_LEDGER,
    INVOICE_QUARANTINE,
    INVOICE_TABLES,
    LAST_DATE,
    RESOLVED,
    UNRESOLVED,
)
from lakehouse_jobs.manifest import MANIFEST_NAME, BatchManifest, FileList
from lakehouse_jobs.steps import materialise, timed

log = logging.getLogger(__name__)

# files per parse task: ~30 ms per page (benchmarks/invoice_parse_bench.py), so a task takes about a second,
# long beside Spark's per-task overhead and short enough to spread a batch over every core
FILES_PER_TASK = 16
# a run reads at most this many new files (oldest first); the rest wait for the next run (result: files_deferred)
MAX_FILES = 50_000
# part of the parties' keyed hashes: change it when the normalisation below changes
PARTY_HASH_VERSION = "invoice-party-1"
# the largest magnitudes DECIMAL(18,2) and DECIMAL(18,6) hold
MONEY_LIMIT = Decimal(10) ** 16
QUANTITY_LIMIT = Decimal(10) ** 12
_FIRST, _LAST = dt.date.fromisoformat(FIRST_DATE), dt.date.fromisoformat(LAST_DATE)

# payment methods (invoice_pdf.PAYMENT_METHODS, casefolded) -> dim_payment_method.payment_category
PAYMENT_CATEGORY = {
    **dict.fromkeys(("visa", "mastercard", "american express", "unionpay", "jcb", "diners club", "discover",
                     "credit card", "debit card"), "card"),
    "cash": "cash", "cheque": "cheque", "check": "cheque",
    **dict.fromkeys(("bank transfer", "wire transfer", "fps"), "bank_transfer"),
    **dict.fromkeys(("paypal", "alipay", "wechat pay", "apple pay", "google pay"), "e_wallet"),
    "octopus": "stored_value",
}


# ------------------------------------------------------------------------------------------ helpers


def _types(spec) -> dict[str, str]:
    return {f.name: f.type for f in spec.fields}


def normalised(text: Column) -> Column:
    """Trimmed, every run of whitespace one space, upper case: how a printed text becomes a natural key."""
    return F.upper(F.regexp_replace(F.trim(text), r"\s+", " "))


def date_key(d: Column) -> Column:
    """dim_date's key of a date: yyyymmdd as an int (20240101); null for null."""
    return (F.year(d) * 10000 + F.month(d) * 100 + F.dayofmonth(d)).cast("int")


# ------------------------------------------------------------------------------------ parse (workers)

MONEY_T = T.DecimalType(18, 2)
LINE_TYPE = T.StructType([
    T.StructField("line_number", T.IntegerType()),
    T.StructField("description", T.StringType()),
    T.StructField("quantity", T.DecimalType(18, 6)),
    T.StructField("unit_price", MONEY_T),
    T.StructField("line_amount", MONEY_T),
    T.StructField("discount_amount", MONEY_T),
    T.StructField("tax_amount", MONEY_T),
    T.StructField("shipping_amount", MONEY_T),
    T.StructField("net_amount", MONEY_T),
])
_PARTY_FIELDS = [T.StructField(f"{role}_{part}", t) for role in ("seller", "bill_to", "ship_to")
                 for part, t in (("name", T.StringType()), ("address", T.ArrayType(T.StringType())),
                                 ("country_code", T.StringType()))]
# parse_files' rows: one per file. status "parsed" (every invoice field set) or "quarantined" (reason, detail
# and detail_full set; invoice_number when the file was read that far).
PARSED_SCHEMA = T.StructType([
    T.StructField("source_path", T.StringType()),
    T.StructField("source_sha256", T.StringType()),
    T.StructField("status", T.StringType()),
    T.StructField("reason", T.StringType()),
    T.StructField("detail", T.StringType()),        # quoted document text replaced by '…'
    T.StructField("detail_full", T.StringType()),   # as the parser said it: may quote personal data
    T.StructField("invoice_number", T.StringType()),
    T.StructField("invoice_date", T.DateType()),
    T.StructField("due_date", T.DateType()),
    T.StructField("currency", T.StringType()),
    T.StructField("payment_terms", T.StringType()),
    T.StructField("payment_method", T.StringType()),
    T.StructField("member_number", T.LongType()),
    T.StructField("po_number", T.StringType()),
    T.StructField("terms", T.StringType()),
    *_PARTY_FIELDS,
    T.StructField("subtotal", MONEY_T),
    *[T.StructField(f"{kind}_{part}", T.DecimalType(9, 6) if part == "rate" else MONEY_T)
      for kind in ADJUSTMENT_SIGNS for part in ("rate", "amount")],
    T.StructField("total", MONEY_T),
    T.StructField("amount_paid", MONEY_T),
    T.StructField("balance_due", MONEY_T),
    T.StructField("lines", T.ArrayType(LINE_TYPE)),
])

# a Python repr of a string, as the parser quotes the document's text in its details
_QUOTED = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\"""")


def redact(detail: str | None) -> str | None:
    """`detail` with every quoted text ('Chris Wong', "Jan 32, 2024") replaced by '…': the parser quotes the
    document, which may be a name or an address."""
    return None if detail is None else _QUOTED.sub("'…'", detail)


def _quarantined(reason: str, detail: str, invoice_number: str | None = None) -> dict:
    return {"status": "quarantined", "reason": reason, "detail": redact(detail), "detail_full": detail,
            "invoice_number": invoice_number}


def _country(party: Party | None) -> str | None:
    from lakehouse_jobs.standardise import country_to_code  # pandas and friends: only where parsing runs

    return country_to_code(party.address[-1]) if party and party.address else None


def _range_problem(doc: InvoiceDocument) -> tuple[str, str] | None:
    """(reason, detail) when a value does not fit its column or dim_date."""
    for name, value in (("invoice_date", doc.invoice_date), ("due_date", doc.due_date)):
        if value is not None and not _FIRST <= value <= _LAST:
            return "date_out_of_range", f"{name} {value.isoformat()} is outside dim_date ({FIRST_DATE}..{LAST_DATE})"
    amounts = {"subtotal": doc.subtotal, "total": doc.total, "balance_due": doc.balance_due,
               "amount_paid": doc.amount_paid,
               **{f"adjustment:{i}": a.amount for i, a in enumerate(doc.adjustments, 1)}}
    for line in doc.lines:
        amounts |= {f"line:{line.line_number}": line.amount, f"unit_price:{line.line_number}": line.unit_price}
        if abs(line.quantity) >= QUANTITY_LIMIT:
            return "amount_out_of_range", f"quantity of line {line.line_number} does not fit DECIMAL(18,6)"
    for name, value in amounts.items():
        if value is not None and abs(value) >= MONEY_LIMIT:
            return "amount_out_of_range", f"{name} does not fit DECIMAL(18,2)"
    return None


def parse_invoice_file(data: bytes) -> dict:
    """One file's row of PARSED_SCHEMA (without source_path and source_sha256), in plain Python.

    status "quarantined" with the parser's reason (InvoiceParseError), check_arithmetic's first code
    (the detail lists them all), date_out_of_range, amount_out_of_range, or parser_error for any other
    exception (a parser bug must not stop the other files of the run). Otherwise status "parsed": the
    document's fields, the header's adjustments summed per kind (a rate only when exactly one adjustment
    of the kind is printed), and the lines with their parts of each adjustment (allocate_adjustments:
    None for a kind the invoice does not print) and net amounts, which sum exactly to the total.
    """
    try:
        doc = parse_invoice_pdf(data)
    except InvoiceParseError as e:
        return _quarantined(e.reason, e.detail)
    except Exception as e:  # noqa: BLE001 - any other failure is a parser bug: quarantine the file, go on
        return _quarantined("parser_error", f"{type(e).__name__}: {e}")
    try:
        problems = check_arithmetic(doc)
        if problems:
            return _quarantined(problems[0].split(":")[0], "; ".join(problems), doc.invoice_number)
        if problem := _range_problem(doc):
            return _quarantined(*problem, doc.invoice_number)
        allocations = allocate_adjustments(doc)
        row: dict[str, Any] = {
            "status": "parsed", "invoice_number": doc.invoice_number, "invoice_date": doc.invoice_date,
            "due_date": doc.due_date, "currency": doc.currency, "payment_terms": doc.payment_terms,
            "payment_method": doc.payment_method, "member_number": doc.member_number, "po_number": doc.po_number,
            "terms": doc.terms, "subtotal": doc.subtotal, "total": doc.total, "amount_paid": doc.amount_paid,
            "balance_due": doc.balance_due,
        }
        for role in ("seller", "bill_to", "ship_to"):
            party: Party | None = getattr(doc, role)
            row[f"{role}_name"] = party.name if party else None
            row[f"{role}_address"] = list(party.address) if party else None
            row[f"{role}_country_code"] = _country(party)
        for kind in ADJUSTMENT_SIGNS:
            of_kind = [a for a in doc.adjustments if a.kind == kind]
            row[f"{kind}_amount"] = sum((a.amount for a in of_kind), Decimal("0.00")) if of_kind else None
            row[f"{kind}_rate"] = of_kind[0].rate if len(of_kind) == 1 else None
        row["lines"] = [
            {"line_number": line.line_number, "description": line.description, "quantity": line.quantity,
             "unit_price": line.unit_price, "line_amount": line.amount,
             **{f"{kind}_amount": allocation.part(kind) for kind in ADJUSTMENT_SIGNS},
             "net_amount": allocation.net_amount}
            for line, allocation in zip(doc.lines, allocations)
        ]
        return row
    except Exception as e:  # noqa: BLE001
        return _quarantined("parser_error", f"{type(e).__name__}: {e}", doc.invoice_number)


@functools.cache
def _parsed_arrow_schema() -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(PARSED_SCHEMA)


def parse_arrow_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: (source_path, source_sha256, content) batches -> PARSED_SCHEMA batches, one row per file.
    PDFium is not thread-safe: Spark's Python workers are processes, one file at a time each."""
    schema = _parsed_arrow_schema()
    for batch in batches:
        paths, hashes, contents = (batch.column(c) for c in ("source_path", "source_sha256", "content"))
        rows = [{"source_path": paths[i].as_py(), "source_sha256": hashes[i].as_py(),
                 **parse_invoice_file(contents[i].as_py())} for i in range(batch.num_rows)]
        yield pa.RecordBatch.from_pylist(rows, schema=schema)


# ------------------------------------------------------------------------------------- files (driver)

LISTING_COLUMNS = ["source_path", "file_size", "file_modified_at"]
# Hadoop expands these in a path given to a reader: "inv [2].pdf" would read "inv 2.pdf"
_GLOB_CHARACTERS = re.compile(r"([\[\]{}*?\\])")


def literal_paths(paths: list[str]) -> list[str]:
    """`paths` escaped for a Spark reader, so that each names exactly its file (no glob expansion)."""
    return [_GLOB_CHARACTERS.sub(r"\\\1", p) for p in paths]


# a listed file: (size in bytes, arrival time as a naive UTC datetime, or None to take the file system's)
Listed = dict[str, tuple[int, dt.datetime | None]]


def spark_path(path: str) -> str:
    """`path` as Spark's file sources name it: a local path gets "file:" (s3://... stays as it is)."""
    return path if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", path) else "file:" + os.path.abspath(path)


def listed_files(spark: SparkSession, file_list: FileList) -> Listed:
    """The files of `file_list`, by the path Spark names them with: their size, and their arrival time
    (``arrived_at``; for a zero-byte file without one, its modification time from the file system)."""
    listed: Listed = {}
    for f in file_list.files:
        arrived = (dt.datetime.fromisoformat(f.arrived_at).astimezone(dt.timezone.utc).replace(tzinfo=None)
                   if f.arrived_at else None)
        if f.bytes == 0 and arrived is None:
            arrived = hadoop_fs.modified_at(spark, f.path)
        listed[spark_path(f.path)] = (f.bytes, arrived)
    return listed


def read_files(spark: SparkSession, paths: list[str], listed: Listed | None = None) -> DataFrame:
    """binaryFile's rows (path, modificationTime, length, content) of exactly `paths`, with a listed file's
    arrival time as its modificationTime (the copy a claim made has the claim's time). Spark's file sources
    return no row for a zero-byte file (Spark 4.0: there is no split to read), so the listed zero-byte
    files get rows made here, with empty content. Raises Spark's AnalysisException for a path that does
    not exist."""
    listed = listed or {}
    empty = {p for p in paths if p in listed and listed[p][0] == 0}
    rows = spark.createDataFrame([(p, listed[p][1], 0, b"") for p in sorted(empty)],
                                 "path string, modificationTime timestamp, length bigint, content binary")
    if readable := [p for p in paths if p not in empty]:
        rows = spark.read.format("binaryFile").load(literal_paths(readable)).unionByName(rows)
    if arrived := [(p, listed[p][1]) for p in paths if p in listed and listed[p][1] is not None]:
        times = spark.createDataFrame(arrived, "path string, _arrived_at timestamp")
        rows = rows.join(F.broadcast(times), "path", "left").select(
            "path", F.coalesce("_arrived_at", "modificationTime").alias("modificationTime"), "length", "content")
    return rows


def list_files(spark: SparkSession, incoming: str | None = None, paths: list[str] | None = None,
               listed: Listed | None = None) -> DataFrame:
    """source_path (as Spark lists it: file:/..., s3://...), file_size (bytes), file_modified_at (timestamp) of
    every file under the prefix `incoming` (recursively; Spark hides names starting with "_" or "." and
    zero-byte files) or of `paths` (read_files: every one of them). Reads no content (binaryFile reads it
    only when the column is selected). Raises Spark's AnalysisException for a path that does not exist."""
    if incoming is not None:
        df = spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(incoming)
    else:
        df = read_files(spark, paths or [], listed)
    return df.select(F.col("path").alias("source_path"), F.col("length").alias("file_size"),
                     F.col("modificationTime").alias("file_modified_at"))


def unseen_files(listing: DataFrame, ledger: DataFrame) -> DataFrame:
    """list_files' rows the ledger does not hold with the same path, size and modification time."""
    return listing.join(ledger.select(*LISTING_COLUMNS), LISTING_COLUMNS, "left_anti")


def hash_files(spark: SparkSession, paths: list[str], listed: Listed | None = None) -> DataFrame:
    """LISTING_COLUMNS + source_sha256 (SHA-256 hex of the bytes, computed in Spark) of `paths` (read_files)."""
    return read_files(spark, paths, listed).select(
        F.col("path").alias("source_path"), F.col("length").alias("file_size"),
        F.col("modificationTime").alias("file_modified_at"), F.sha2("content", 256).alias("source_sha256"))


def plan_files(hashed: DataFrame, ledger: DataFrame) -> DataFrame:
    """hash_files' rows + ``_action``: ``processed`` (the content is in the ledger), ``same_content`` (a
    file of this run with the same content and an earlier path is processed instead) or ``parse``."""
    known = ledger.select("source_sha256").distinct().withColumn("_known", F.lit(True))
    first = F.row_number().over(Window.partitionBy("source_sha256").orderBy("source_path")) == 1
    return hashed.join(known, "source_sha256", "left").select(
        *LISTING_COLUMNS, "source_sha256",
        F.when(F.col("_known"), "processed").when(~first, "same_content").otherwise("parse").alias("_action"),
    )


def parse_files(spark: SparkSession, paths: list[str], listed: Listed | None = None) -> DataFrame:
    """PARSED_SCHEMA rows of `paths` (read_files): read again (the content is not kept between steps), hashed
    again (the hash of exactly the bytes parsed), spread over ceil(len(paths) / FILES_PER_TASK) tasks and
    parsed."""
    if not paths:
        return spark.createDataFrame([], PARSED_SCHEMA)
    files = read_files(spark, paths, listed).select(
        F.col("path").alias("source_path"), F.sha2("content", 256).alias("source_sha256"), "content")
    return files.repartition(max(1, math.ceil(len(paths) / FILES_PER_TASK))).mapInArrow(
        parse_arrow_batches, PARSED_SCHEMA)


def decide(parsed: DataFrame, planned: DataFrame) -> DataFrame:
    """parse_files' rows with the files' size and modification time and ``outcome``: ``quarantined``,
    ``loaded`` (the last modified valid file of its invoice number in this run, then the last path),
    ``superseded`` (an earlier one) or ``changed`` (the bytes parsed are not the bytes planned: the file was
    replaced during the run; it is neither loaded nor recorded, so the next run takes it)."""
    planned = planned.select(*LISTING_COLUMNS, F.col("source_sha256").alias("_planned_sha256"))
    latest = Window.partitionBy("invoice_number", "status", "_changed").orderBy(
        F.col("file_modified_at").desc(), F.col("source_path").desc())
    return (parsed.join(planned, "source_path")
            .withColumn("_changed", F.col("source_sha256") != F.col("_planned_sha256"))
            .withColumn("outcome", F.when(F.col("_changed"), "changed")
                        .when(F.col("status") == "quarantined", "quarantined")
                        .when(F.row_number().over(latest) == 1, "loaded")
                        .otherwise("superseded"))
            .drop("_planned_sha256", "_changed"))


# -------------------------------------------------------------------------------------- dimensions


def date_rows(spark: SparkSession) -> DataFrame:
    """dim_date's rows, FIRST_DATE to LAST_DATE (ISO 8601 weeks; English names)."""
    days = spark.sql(f"SELECT explode(sequence(DATE'{FIRST_DATE}', DATE'{LAST_DATE}', INTERVAL 1 DAY)) AS full_date")
    d = F.col("full_date")
    iso_dow = ((F.dayofweek(d) + 5) % 7 + 1)  # Spark: 1 = Sunday; ISO: 1 = Monday, 7 = Sunday
    return days.select(
        date_key(d).alias("date_key"), d,
        F.year(d).alias("year"), F.quarter(d).alias("quarter"), F.month(d).alias("month"),
        F.date_format(d, "MMMM").alias("month_name"), F.date_format(d, "yyyy-MM").alias("year_month"),
        F.dayofmonth(d).alias("day_of_month"), F.dayofyear(d).alias("day_of_year"),
        iso_dow.alias("day_of_week"), F.date_format(d, "EEEE").alias("day_name"),
        F.weekofyear(d).alias("iso_week"),
        F.year(F.date_add(d, 4 - iso_dow)).alias("iso_year"),  # the year of the week's Thursday (ISO 8601)
        (iso_dow >= 6).alias("is_weekend"),
        F.trunc(d, "month").alias("first_day_of_month"), F.last_day(d).alias("last_day_of_month"),
    ).select(*DIM_DATE.column_names)


def currency_rows(spark: SparkSession, batch_id: str) -> DataFrame:
    """dim_currency's rows: the parser's currencies (CURRENCY_EXPONENTS, their reviewed minor units), names
    and numeric codes from pycountry's ISO 4217 data, the prefix invoices print."""
    prefixes = {code: prefix for prefix, code in CURRENCY_PREFIXES.items()}
    rows = []
    for code, exponent in sorted(CURRENCY_EXPONENTS.items()):
        currency = pycountry.currencies.get(alpha_3=code)
        rows.append((code, currency.name, currency.numeric, exponent, prefixes.get(code)))
    return spark.createDataFrame(
        rows, "currency_code string, currency_name string, numeric_code string, minor_unit int, printed_prefix string",
    ).select("*", F.lit(batch_id).alias("_batch_id"), F.current_timestamp().alias("_updated_at"))


def upsert_changed(spark: SparkSession, path: str, rows: DataFrame, keys: list[str], compare: list[str],
                   commit_tag: str) -> int | None:
    """MERGE `rows` into the table at `path` on `keys`: insert new keys, update rows whose `compare` columns
    differ (SCD type 1). Commits nothing, and returns None, when nothing differs; else the version."""
    def merge() -> int | None:
        current = spark.read.format("delta").load(path).select(*keys, *compare)
        # set difference: nulls compare equal, as "unchanged" needs
        differing = rows.select(*keys, *compare).exceptAll(current)
        changed = materialise(rows.join(differing.select(*keys), keys, "left_semi"))
        if changed.isEmpty():
            return None
        on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        values = {c: f"s.{c}" for c in rows.columns}
        builder = (DeltaTable.forPath(spark, path).alias("t").merge(changed.alias("s"), on)
                   .whenMatchedUpdate(set=values).whenNotMatchedInsert(values=values))
        return tagged_commit(spark, builder, path, commit_tag)

    return retry_on_conflict(merge, f"MERGE into {path}")


def seed_dim_date(spark: SparkSession, path: str, commit_tag: str) -> int | None:
    """Insert dim_date's missing days (all of them on the first run); the version, or None when complete."""
    expected = (_LAST - _FIRST).days + 1
    if spark.read.format("delta").load(path).count() == expected:
        return None

    def merge() -> int | None:
        missing = date_rows(spark).join(spark.read.format("delta").load(path).select("date_key"), "date_key",
                                        "left_anti")
        builder = (DeltaTable.forPath(spark, path).alias("t").merge(missing.alias("s"), "t.date_key = s.date_key")
                   .whenNotMatchedInsertAll())
        return tagged_commit(spark, builder, path, commit_tag)

    return retry_on_conflict(merge, f"MERGE into {path}")


def insert_new_keys(spark: SparkSession, path: str, rows: DataFrame, key: str, batch_id: str,
                    commit_tag: str) -> int | None:
    """Insert the `rows` (one per `key`, a dimension's natural key) the dimension at `path` lacks; the
    identity column assigns their surrogate keys. Existing rows are kept as they are: every attribute these
    dimensions take from an invoice is its natural key's own content (a normalised form of it). Returns the
    version, or None when every key was there (nothing committed)."""
    def merge() -> int | None:
        new = materialise(rows.join(spark.read.format("delta").load(path).select(key), key, "left_anti"))
        if new.isEmpty():
            return None
        values = {c: f"s.{c}" for c in rows.columns} | {
            "_batch_id": F.lit(batch_id), "_updated_at": F.current_timestamp()}
        builder = (DeltaTable.forPath(spark, path).alias("t").merge(new.alias("s"), f"t.{key} = s.{key}")
                   .whenNotMatchedInsert(values=values))
        return tagged_commit(spark, builder, path, commit_tag)

    return retry_on_conflict(merge, f"MERGE into {path}")


def product_rows(lines: DataFrame) -> DataFrame:
    """dim_product's new-key candidates from exploded lines (``description``): product_nk, product_name
    (the first printed form, by sort order, for a deterministic choice)."""
    return (lines.select(normalised(F.col("description")).alias("product_nk"), "description")
            .groupBy("product_nk").agg(F.min("description").alias("product_name")))


def payment_method_rows(headers: DataFrame) -> DataFrame:
    """dim_payment_method's candidates from headers (``payment_method``): nk lower case, category by
    PAYMENT_CATEGORY (else other)."""
    categories = F.create_map(*[F.lit(x) for kv in PAYMENT_CATEGORY.items() for x in kv])
    return (headers.where(F.col("payment_method").isNotNull())
            .select(F.lower(normalised(F.col("payment_method"))).alias("payment_method_nk"), "payment_method")
            .groupBy("payment_method_nk").agg(F.min("payment_method").alias("payment_method_name"))
            .withColumn("payment_category",
                        F.coalesce(F.try_element_at(categories, F.col("payment_method_nk")), F.lit("other"))))


def _lines(column: str) -> Column:
    """Address lines joined with a line feed; null when there are none."""
    return F.when(F.size(column) > 0, F.array_join(column, "\n"))


def _party_key_text(role: str) -> Column:
    """The normalised name and address lines of a party, as JSON (unambiguous): what its hash is of."""
    return F.to_json(F.struct(normalised(F.col(f"{role}_name")).alias("name"),
                              F.transform(f"{role}_address", normalised).alias("address")))


def seller_hash() -> Column:
    """dim_seller's natural key: SHA-256 (hex) of the normalised seller; null without a seller. Unkeyed: a
    business's name and address are public."""
    return F.when(F.col("seller_name").isNotNull(), F.sha2(_party_key_text("seller"), 256))


def party_hash(role: str) -> Column:
    """dim_party_address's natural key of the bill_to or ship_to party: HMAC-SHA-256 of its normalised name and
    address (needs pii.with_keys' columns); null without that party."""
    return F.when(F.col(f"{role}_name").isNotNull(),
                  pii.keyed_hash(F.concat(F.lit(f"{PARTY_HASH_VERSION}|"), _party_key_text(role))))


def seller_rows(headers: DataFrame) -> DataFrame:
    """dim_seller's candidates from headers with ``seller_hash``."""
    return (headers.where(F.col("seller_hash").isNotNull())
            .groupBy("seller_hash").agg(F.min(F.struct(
                F.col("seller_name"), _lines("seller_address").alias("seller_address"),
                F.col("seller_country_code").alias("country_code"))).alias("s"))
            .select("seller_hash", "s.*"))


def party_rows(headers: DataFrame) -> DataFrame:
    """dim_party_address's candidates from headers (with pii.with_keys' columns, and ``bill_to_hash`` and
    ``ship_to_hash``): one row per party hash (party_hash, name_enc, address_enc, country_code), name and
    address encrypted; no key column in the output."""
    parties = None
    for role in ("bill_to", "ship_to"):
        part = headers.where(F.col(f"{role}_hash").isNotNull()).select(
            F.col(f"{role}_hash").alias("party_hash"), F.col(f"{role}_name").alias("_name"),
            _lines(f"{role}_address").alias("_address"),
            F.col(f"{role}_country_code").alias("country_code"),
            *[c for c in headers.columns if c.startswith("_pii_")])
        parties = part if parties is None else parties.unionByName(part)
    first = Window.partitionBy("party_hash").orderBy("_name", "_address")
    return (parties.withColumn("_n", F.row_number().over(first)).where("_n = 1")
            .select("party_hash", pii.encrypt("_name").alias("name_enc"), pii.encrypt("_address").alias("address_enc"),
                    "country_code"))


def dimension_keys(spark: SparkSession, paths: dict[str, str], headers: DataFrame) -> DataFrame:
    """Headers (with ``seller_hash``, ``bill_to_hash``, ``ship_to_hash``) + payment_method_key, seller_key,
    bill_to_key, ship_to_key: looked up by natural key in the dimensions as they are now (after
    insert_new_keys). NULL where the invoice prints no such element."""
    def dim(name: str, key: str, nk: str, alias_key: str, alias_nk: str) -> DataFrame:
        return spark.read.format("delta").load(paths[name]).select(
            F.col(key).alias(alias_key), F.col(nk).alias(alias_nk))

    out = headers.withColumn("_pm_nk", F.lower(normalised(F.col("payment_method"))))
    out = out.join(F.broadcast(dim("dim_payment_method", "payment_method_key", "payment_method_nk",
                                   "payment_method_key", "_pm_nk")), "_pm_nk", "left")
    out = out.join(dim("dim_seller", "seller_key", "seller_hash", "seller_key", "seller_hash"), "seller_hash", "left")
    for role in ("bill_to", "ship_to"):
        out = out.join(dim("dim_party_address", "party_key", "party_hash", f"{role}_key", f"{role}_hash"),
                       f"{role}_hash", "left")
    return out.drop("_pm_nk")


# ----------------------------------------------------------------------------------------- members


def read_member_cards(spark: SparkSession, path: str) -> DataFrame:
    """``card_number`` DECIMAL(20,0), ``member_id`` (trimmed, lower case) of the member_card extract at
    `path`: a Parquet file or directory, or a landing batch's _manifest.json, whose files are read exactly
    (a landing prefix also holds other attempts' files) and checked as batch.read_batch checks them (sizes,
    row count). card_number may be BIGINT or digits as text; text that is not a number reads as null and
    matches nothing. Raises ValueError when a column is missing, or the manifest is not member_card's or
    does not match its files (manifest.ManifestError, a ValueError, for an invalid manifest)."""
    if path.rstrip("/").endswith(MANIFEST_NAME):
        manifest = BatchManifest.from_json(hadoop_fs.read_text(spark, path), source=path)
        if manifest.table != "member_card":
            raise ValueError(f"{path} is a batch of {manifest.table!r}, not member_card")
        problems = []
        for entry in manifest.files:
            size = hadoop_fs.file_size(spark, entry.path)
            if size != entry.bytes:
                problems.append(f"{entry.path} has {size} bytes, manifest says {entry.bytes}")
        if problems:
            raise ValueError(f"member_card batch {manifest.batch_id} is incomplete: " + "; ".join(problems))
        if not manifest.files:
            return spark.createDataFrame([], "card_number decimal(20,0), member_id string")
        df = spark.read.parquet(*[entry.path for entry in manifest.files])
        if (rows := df.count()) != manifest.row_count:
            raise ValueError(f"member_card batch {manifest.batch_id}: read {rows} rows, manifest says "
                             f"{manifest.row_count}")
    else:
        df = spark.read.parquet(path)
    missing = {"card_number", "member_id"} - set(df.columns)
    if missing:
        raise ValueError(f"member cards at {path} lack {sorted(missing)} (columns: {df.columns})")
    return df.select(
        F.trim(F.col("card_number").cast("string")).try_cast("decimal(20,0)").alias("card_number"),
        F.lower(F.trim(F.col("member_id"))).alias("member_id"),
    ).where(F.col("card_number").isNotNull() & F.col("member_id").isNotNull())


def member_versions(spark: SparkSession, path: str) -> DataFrame:
    """member_id, member_sk, valid_from, valid_to of every dim_member version at `path` (none when there is
    no table yet: the member pipeline creates it)."""
    if not DeltaTable.isDeltaTable(spark, path):
        return spark.createDataFrame([], "member_id string, member_sk bigint, valid_from timestamp, valid_to timestamp")
    return spark.read.format("delta").load(path).select("member_id", "member_sk", "valid_from", "valid_to")


def resolve_members(invoices: DataFrame, cards: DataFrame, versions: DataFrame) -> DataFrame:
    """invoices (``invoice_number`` unique, ``invoice_date``, ``member_card_number``) -> invoice_number,
    member_sk, member_resolution (invoice_tables.MEMBER_RESOLUTIONS).

    The card's member (cards: read_member_cards; a number mapped to two members is ``ambiguous_card``),
    then that member's dim_member version in effect at the invoice date, 00:00 UTC: valid_from <= t <
    valid_to (``resolved``). With none in effect (the invoice predates the member's first extracted version,
    or falls while the member was absent from the source) the nearest version stands for the member: the
    latest that started before t, else the earliest (``resolved_nearest_version``): the card proves who the
    member is even where the history does not reach. Unresolved: ``no_member_number``, ``unknown_card``,
    ``member_not_loaded`` (member_sk NULL).
    """
    by_card = cards.groupBy("card_number").agg(
        F.count_distinct("member_id").alias("_members"), F.min("member_id").alias("_member_id"))
    t = F.make_timestamp(F.year("invoice_date"), F.month("invoice_date"), F.dayofmonth("invoice_date"),
                         F.lit(0), F.lit(0), F.lit(0), F.lit("UTC"))
    df = (invoices.select("invoice_number", "member_card_number", t.alias("_at"))
          .join(by_card, F.col("member_card_number").cast("decimal(20,0)") == by_card["card_number"], "left")
          .withColumn("_member_id", F.when(F.col("_members") == 1, F.col("_member_id")))
          .join(versions.withColumnRenamed("member_id", "_member_id"), "_member_id", "left"))
    rank = (F.when((F.col("valid_from") <= F.col("_at")) & (F.col("_at") < F.col("valid_to")), 0)
            .when(F.col("valid_from") <= F.col("_at"), 1).otherwise(2))
    df = df.withColumn("_rank", rank)
    nearest = Window.partitionBy("invoice_number").orderBy(
        "_rank", F.when(F.col("_rank") == 1, F.col("valid_from")).desc_nulls_last(), F.col("valid_from").asc())
    df = df.withColumn("_n", F.row_number().over(nearest)).where("_n = 1")
    resolution = (F.when(F.col("member_card_number").isNull(), "no_member_number")
                  .when(F.col("card_number").isNull(), "unknown_card")
                  .when(F.col("_members") > 1, "ambiguous_card")
                  .when(F.col("member_sk").isNull(), "member_not_loaded")
                  .when(F.col("_rank") == 0, "resolved")
                  .otherwise("resolved_nearest_version"))
    return df.select("invoice_number", resolution.alias("member_resolution"), "member_sk").select(
        "invoice_number",
        F.when(F.col("member_resolution").isin(*RESOLVED), F.col("member_sk")).alias("member_sk"),
        "member_resolution",
    )


# ------------------------------------------------------------------------------------------- facts


def header_rows(headers: DataFrame, members: DataFrame, batch_id: str) -> DataFrame:
    """fact_invoice's rows (its columns, in order) from dimension_keys' headers and resolve_members' rows."""
    h = headers.join(members, "invoice_number", "left")
    return h.select(
        "invoice_number",
        date_key(F.col("invoice_date")).alias("invoice_date_key"), date_key(F.col("due_date")).alias("due_date_key"),
        "member_sk", "member_resolution", "payment_method_key", "seller_key", "bill_to_key", "ship_to_key",
        F.col("currency").alias("currency_code"),
        F.col("member_number").alias("member_card_number"), "po_number", "payment_terms", "terms",
        F.size("lines").alias("line_count"),
        "subtotal", *[f"{kind}_{part}" for kind in ADJUSTMENT_SIGNS for part in ("rate", "amount")],
        "total", "amount_paid", "balance_due",
        "source_path", "source_sha256", F.lit(batch_id).alias("_batch_id"), F.current_timestamp().alias("_updated_at"),
    ).select(*FACT_INVOICE.column_names)


def line_rows(headers: DataFrame, facts: DataFrame, products: DataFrame, batch_id: str) -> DataFrame:
    """fact_invoice_line's rows (its columns, in order): the headers' lines, each with its invoice's keys
    (from header_rows' `facts`) and its product_key (`products`: product_key, product_nk)."""
    lines = headers.select("invoice_number", F.explode("lines").alias("l")).select("invoice_number", "l.*")
    lines = lines.withColumn("product_nk", normalised(F.col("description"))).join(products, "product_nk", "left")
    keys = facts.select("invoice_number", "invoice_date_key", "due_date_key", "member_sk", "member_resolution",
                        "payment_method_key", "seller_key", "bill_to_key", "ship_to_key", "currency_code",
                        "source_path", "source_sha256")
    return lines.join(keys, "invoice_number").select(
        *[c for c in FACT_INVOICE_LINE.column_names if c not in ("_batch_id", "_updated_at")],
        F.lit(batch_id).alias("_batch_id"), F.current_timestamp().alias("_updated_at"),
    )


def merge_fact_invoice(spark: SparkSession, path: str, rows: DataFrame, commit_tag: str) -> tuple[int | None, dict]:
    """MERGE header_rows' `rows` into fact_invoice on invoice_number: new numbers inserted, a known number
    with another source_sha256 (a corrected re-issue) replaced, the same content left alone. (version or
    None when nothing changed, {"new": n, "replaced": n, "unchanged": n})."""
    def merge() -> tuple[int | None, dict]:
        current = spark.read.format("delta").load(path).select("invoice_number", F.col("source_sha256").alias("_t"))
        source = materialise(rows.join(current, "invoice_number", "left").withColumn(
            "_change", F.when(F.col("_t").isNull(), "new")
            .when(F.col("_t") != F.col("source_sha256"), "replaced").otherwise("unchanged")))
        counts = {"new": 0, "replaced": 0, "unchanged": 0} | {
            r["_change"]: r["count"] for r in source.groupBy("_change").count().collect()}
        if counts["new"] + counts["replaced"] == 0:
            return None, counts
        values = {c: f"s.{c}" for c in FACT_INVOICE.column_names}
        builder = (DeltaTable.forPath(spark, path).alias("t")
                   .merge(source.where("_change <> 'unchanged'").alias("s"), "t.invoice_number = s.invoice_number")
                   .whenMatchedUpdate(condition="t.source_sha256 <> s.source_sha256", set=values)
                   .whenNotMatchedInsert(values=values))
        return tagged_commit(spark, builder, path, commit_tag), counts

    return retry_on_conflict(merge, f"MERGE into {path}")


LINE_TYPES = _types(FACT_INVOICE_LINE)


def merge_fact_invoice_line(spark: SparkSession, path: str, rows: DataFrame,
                            commit_tag: str) -> tuple[int | None, dict]:
    """MERGE line_rows' `rows` into fact_invoice_line so that each of their invoices has exactly these lines:
    on (invoice_number, line_number) a line of new content is inserted or replaces the old one, and the old
    content's lines beyond the re-issue's are deleted (one MERGE: the deletions are source rows too, found
    among the lines of the touched invoices only). Lines of content already loaded stay untouched.
    (version or None when nothing changed, {"inserted", "updated", "deleted"})."""
    def merge() -> tuple[int | None, dict]:
        touched = rows.select("invoice_number").distinct()
        existing = (spark.read.format("delta").load(path).join(touched, "invoice_number", "left_semi")
                    .select("invoice_number", "line_number", F.col("source_sha256").alias("_t")))
        upserts = (rows.join(existing, ["invoice_number", "line_number"], "left")
                   .where(F.col("_t").isNull() | (F.col("_t") != F.col("source_sha256")))
                   .withColumn("_op", F.when(F.col("_t").isNull(), "insert").otherwise("update")).drop("_t"))
        deletes = existing.join(rows.select("invoice_number", "line_number"), ["invoice_number", "line_number"],
                                "left_anti").select(
            *[F.col(c) if c in ("invoice_number", "line_number") else F.lit(None).cast(LINE_TYPES[c]).alias(c)
              for c in FACT_INVOICE_LINE.column_names],
            F.lit("delete").alias("_op"))
        source = materialise(upserts.unionByName(deletes))
        counts = {"insert": 0, "update": 0, "delete": 0} | {
            r["_op"]: r["count"] for r in source.groupBy("_op").count().collect()}
        counts = {"inserted": counts["insert"], "updated": counts["update"], "deleted": counts["delete"]}
        if not any(counts.values()):
            return None, counts
        values = {c: f"s.{c}" for c in FACT_INVOICE_LINE.column_names}
        builder = (DeltaTable.forPath(spark, path).alias("t")
                   .merge(source.alias("s"),
                          "t.invoice_number = s.invoice_number AND t.line_number = s.line_number")
                   .whenMatchedDelete(condition="s._op = 'delete'")
                   .whenMatchedUpdate(condition="s._op <> 'delete' AND t.source_sha256 <> s.source_sha256",
                                      set=values)
                   .whenNotMatchedInsert(condition="s._op <> 'delete'", values=values))
        return tagged_commit(spark, builder, path, commit_tag), counts

    return retry_on_conflict(merge, f"MERGE into {path}")


def fix_up_members(spark: SparkSession, paths: dict[str, str], cards: DataFrame, versions: DataFrame,
                   commit_tag: str) -> tuple[dict[str, int | None], dict[str, int]]:
    """Re-resolve every fact_invoice row whose member_resolution is unresolved (invoice_tables.UNRESOLVED)
    and write what changed into both facts (member_sk, member_resolution, _updated_at), on invoice_number.
    ({"fact_invoice": version or None, "fact_invoice_line": ...}, {new member_resolution: invoices})."""
    facts = spark.read.format("delta").load(paths["fact_invoice"])
    pending = facts.where(F.col("member_resolution").isin(*UNRESOLVED)).select(
        "invoice_number", "member_card_number", F.col("member_resolution").alias("_old"),
        F.to_date(F.col("invoice_date_key").cast("string"), "yyyyMMdd").alias("invoice_date"))
    if pending.isEmpty():
        return {"fact_invoice": None, "fact_invoice_line": None}, {}
    changed = materialise(
        resolve_members(pending, cards, versions).join(pending.select("invoice_number", "_old"), "invoice_number")
        .where(F.col("member_resolution") != F.col("_old")).drop("_old"))
    counts = {r["member_resolution"]: r["count"] for r in changed.groupBy("member_resolution").count().collect()}
    if not counts:
        return {"fact_invoice": None, "fact_invoice_line": None}, {}
    update = {"member_sk": "s.member_sk", "member_resolution": "s.member_resolution",
              "_updated_at": F.current_timestamp()}
    unresolved = ", ".join(f"'{r}'" for r in UNRESOLVED)
    versions_out = {}
    for name in ("fact_invoice", "fact_invoice_line"):
        def merge(name: str = name) -> int | None:
            builder = (DeltaTable.forPath(spark, paths[name]).alias("t")
                       .merge(changed.alias("s"), "t.invoice_number = s.invoice_number")
                       .whenMatchedUpdate(condition=f"t.member_resolution IN ({unresolved})", set=update))
            return tagged_commit(spark, builder, paths[name], commit_tag)

        versions_out[name] = retry_on_conflict(merge, f"member fix-up of {paths[name]}")
    return versions_out, counts


# ------------------------------------------------------------------------------ quarantine and ledger


def insert_absent(spark: SparkSession, path: str, rows: DataFrame, commit_tag: str) -> int | None:
    """Insert the `rows` whose source_sha256 the table at `path` lacks (a rerun after a failure adds nothing
    twice); the version, or None when nothing was inserted."""
    def merge() -> int | None:
        new = materialise(rows.join(spark.read.format("delta").load(path).select("source_sha256"),
                                    "source_sha256", "left_anti"))
        if new.isEmpty():
            return None
        builder = (DeltaTable.forPath(spark, path).alias("t")
                   .merge(new.alias("s"), "t.source_sha256 = s.source_sha256").whenNotMatchedInsertAll())
        return tagged_commit(spark, builder, path, commit_tag)

    return retry_on_conflict(merge, f"insert into {path}")


def quarantine_rows(decided: DataFrame, batch_id: str) -> DataFrame:
    """invoice_quarantine's rows (needs pii.with_keys' columns for the detail's ciphertext)."""
    return decided.where(F.col("outcome") == "quarantined").select(
        "source_path", "source_sha256", "invoice_number", "reason", "detail",
        pii.encrypt("detail_full").alias("detail_enc"), F.lit(batch_id).alias("_batch_id"),
        F.current_timestamp().alias("quarantined_at"),
    ).select(*INVOICE_QUARANTINE.column_names)


def ledger_rows(decided: DataFrame, batch_id: str) -> DataFrame:
    """invoice_ledger's rows: every decided file but those that changed during the run."""
    return decided.where(F.col("outcome") != "changed").select(
        "source_sha256", "source_path", "file_size", "file_modified_at", F.col("outcome").alias("status"),
        "invoice_number", F.current_timestamp().alias("processed_at"), F.lit(batch_id).alias("_batch_id"),
    ).select(*INVOICE_LEDGER.column_names)


# -------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="invoice_load", description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--incoming", help="prefix (s3://... or a local directory) whose files are invoices; "
                                           "read recursively, originals left in place")
    source.add_argument("--manifest", help="a file list (lakehouse_jobs.manifest.FileList, JSON) naming exactly "
                                           "the files to load")
    parser.add_argument("--member-cards", required=True,
                        help="the member_card extract: Parquet file or directory, or a batch's _manifest.json")
    parser.add_argument("--tables-root", required=True,
                        help="where the invoice tables (and member_merge's dim_member) live")
    parser.add_argument("--result-path", required=True, help="JSON file of counts, written last")
    parser.add_argument("--batch-id", help="this run's id in _batch_id columns (default: invoice_load-<UTC time>)")
    parser.add_argument("--max-files", type=int, default=MAX_FILES,
                        help="read at most this many new files, oldest first; the rest wait for the next run")
    return parser.parse_args(argv)


def table_paths(tables_root: str) -> dict[str, str]:
    root = tables_root.rstrip("/")
    return {name: f"{root}/{name}" for name in [*INVOICE_TABLES, "dim_member"]}


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> dict[str, Any]:
    """The job (module docstring): arguments from `argv` (default sys.argv), the session from the cluster
    unless `spark` is given. PII keys from the environment (pii.PiiKeys.from_env).

    Returns (and writes to --result-path, last): batch_id, commit_tag; files_seen, files_skipped_already_processed
    (by path, size and time, or by content), files_skipped_same_content (a copy within this run),
    files_changed_during_run, files_deferred (beyond --max-files), files_parsed; invoices_loaded (= invoices_new
    + invoices_replaced + invoices_unchanged: content loaded before a failed run recorded it), invoices_superseded;
    lines_loaded (= lines_inserted + lines_updated), lines_deleted; quarantined and quarantine_reasons
    {reason: files}; member_resolution {code: invoices of this run}; members_fixed_up {new code: older
    invoices re-resolved}; versions {table: the last version this run committed, or null}.
    Raises PiiKeyError without usable keys; Spark's AnalysisException for a missing --incoming, listed file
    or --member-cards; ManifestError (a ValueError) for an invalid --manifest; ValueError for a listed file
    Spark hides, or member cards without their columns.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    keys = pii.PiiKeys.from_env()
    spark = spark or SparkSession.builder.getOrCreate()
    batch_id = args.batch_id or f"invoice_load-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}"
    commit_tag = f"invoice_load {batch_id} {uuid.uuid4()}"
    paths = table_paths(args.tables_root)
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
        if args.manifest:
            file_list = FileList.from_json(hadoop_fs.read_text(spark, args.manifest), source=args.manifest)
            listed = listed_files(spark, file_list)
            listing = materialise(list_files(spark, paths=list(listed), listed=listed))
        else:
            listing = materialise(list_files(spark, incoming=args.incoming))
        files_seen = listing.count()
        if args.manifest and files_seen != len(listed):
            raise ValueError(f"{args.manifest}: Spark read {files_seen} of its {len(listed)} files (it hides names "
                             "starting with '_' or '.'; include/invoice_landing.claimed_name avoids them)")
        unseen = unseen_files(listing, ledger).orderBy("file_modified_at", "source_path").collect()
        deferred = max(0, len(unseen) - args.max_files)
        unseen_paths = [r["source_path"] for r in unseen[:args.max_files]]
    with timed("hash_files", log):
        planned = materialise(plan_files(hash_files(spark, unseen_paths, listed), ledger))
        actions = {r["_action"]: r["count"] for r in planned.groupBy("_action").count().collect()}
        to_parse = [r["source_path"] for r in planned.where("_action = 'parse'").select("source_path").collect()]
    log.info("%d files listed, %d new by path, %d to parse (%s)", files_seen, len(unseen), len(to_parse), actions)

    with timed("parse", log):
        decided = materialise(decide(parse_files(spark, to_parse, listed), planned))
        outcomes = {r["outcome"]: r["count"] for r in decided.groupBy("outcome").count().collect()}
        reasons = {r["reason"]: r["count"] for r in
                   decided.where("outcome = 'quarantined'").groupBy("reason").count().collect()}
    cards = materialise(read_member_cards(spark, args.member_cards))
    dim_member = member_versions(spark, paths["dim_member"])

    fact_counts: dict[str, int] = {"new": 0, "replaced": 0, "unchanged": 0}
    line_counts: dict[str, int] = {"inserted": 0, "updated": 0, "deleted": 0}
    resolutions: dict[str, int] = {}
    if outcomes.get("loaded"):
        with timed("dimensions", log):
            # the key columns are dropped before anything is kept on disk
            loaded = materialise(pii.drop_keys(pii.with_keys(spark, decided.where("outcome = 'loaded'"), keys).select(
                "*", seller_hash().alias("seller_hash"), party_hash("bill_to").alias("bill_to_hash"),
                party_hash("ship_to").alias("ship_to_hash"))))
            lines = loaded.select(F.explode("lines").alias("l")).select("l.*")
            versions["dim_product"] = insert_new_keys(spark, paths["dim_product"], product_rows(lines),
                                                      "product_nk", batch_id, commit_tag)
            versions["dim_payment_method"] = insert_new_keys(
                spark, paths["dim_payment_method"], payment_method_rows(loaded), "payment_method_nk", batch_id,
                commit_tag)
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

    result = {
        "batch_id": batch_id,
        "commit_tag": commit_tag,
        "files_seen": files_seen,
        "files_skipped_already_processed": files_seen - len(unseen) + actions.get("processed", 0),
        "files_skipped_same_content": actions.get("same_content", 0),
        "files_changed_during_run": outcomes.get("changed", 0),
        "files_deferred": deferred,
        "files_parsed": len(to_parse),
        "invoices_loaded": outcomes.get("loaded", 0),
        "invoices_new": fact_counts["new"],
        "invoices_replaced": fact_counts["replaced"],
        "invoices_unchanged": fact_counts["unchanged"],
        "invoices_superseded": outcomes.get("superseded", 0),
        "lines_loaded": line_counts["inserted"] + line_counts["updated"],
        "lines_inserted": line_counts["inserted"],
        "lines_updated": line_counts["updated"],
        "lines_deleted": line_counts["deleted"],
        "quarantined": outcomes.get("quarantined", 0),
        "quarantine_reasons": reasons,
        "member_resolution": resolutions,
        "members_fixed_up": fixed,
        "versions": versions,
    }
    hadoop_fs.write_text(spark, args.result_path, json.dumps(result, sort_keys=True))
    log.info("invoice_load %s: %s", batch_id, result)
    return result
