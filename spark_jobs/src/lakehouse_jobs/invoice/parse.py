"""Parsing (invoice_load step 4): each file's bytes -> one row of PARSED_SCHEMA, on the executors
(``mapInArrow``): lakehouse_jobs.invoice.pdf's parser, document.check_arithmetic, then
allocate_adjustments, within a time budget per file (lakehouse_jobs.invoice.budget); a refused file gets a
stable reason code instead. A file over the size limit is refused from its listed size (`too_large_rows`)
and never read."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import math
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse_jobs.invoice.budget import BudgetedParser
from lakehouse_jobs.invoice.document import (
    ADJUSTMENT_SIGNS,
    InvoiceDocument,
    Party,
    allocate_adjustments,
    check_arithmetic,
    due_date_from_terms,
)
from lakehouse_jobs.invoice.exchange_rates import reference_rate, reporting_amounts
from lakehouse_jobs.invoice.files import Listed, read_files
from lakehouse_jobs.invoice.pdf import parse_invoice_pdf
from lakehouse_jobs.invoice.tables import (
    EXCHANGE_RATE,
    FACT_INVOICE,
    FACT_INVOICE_LINE,
    FIRST_DATE,
    LAST_DATE,
    MONEY,
    QUANTITY,
    RATE,
)
from lakehouse_jobs.invoice.text_layer import InvoiceParseError
from lakehouse_jobs.results import PARSE_SECONDS, REPORTING_CURRENCY

# files per parse task: ~30 ms per page (benchmarks/invoice_parse_bench.py), so a task takes about a second,
# long beside Spark's per-task overhead and short enough to spread a batch over every core
FILES_PER_TASK = 16


# the largest magnitudes DECIMAL(18,2) and DECIMAL(18,6) hold
MONEY_LIMIT = Decimal(10) ** 16
QUANTITY_LIMIT = Decimal(10) ** 12
_FIRST, _LAST = dt.date.fromisoformat(FIRST_DATE), dt.date.fromisoformat(LAST_DATE)


def spark_type(sql_type: str) -> T.DataType:
    """The Spark type of a declared column type (tables.SqlType). Built in Python, not parsed by the JVM:
    the executors build PARSED_SCHEMA too, and they have no JVM session."""
    if m := re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", sql_type):
        return T.DecimalType(int(m[1]), int(m[2]))
    return {"STRING": T.StringType(), "INT": T.IntegerType(), "BIGINT": T.LongType(), "DATE": T.DateType(),
            "TIMESTAMP": T.TimestampType(), "BOOLEAN": T.BooleanType()}[sql_type]


# The numbers the parser reads are the facts' measures, so their names and types come from the table
# declarations: a line's quantity and amounts (fact_invoice_line), the header's rates and amounts and the
# reporting currency's (fact_invoice); a line also carries its description (dim_product's natural key).
LINE_TYPE = T.StructType([
    T.StructField("line_number", T.IntegerType()),
    T.StructField("description", T.StringType()),
    *[T.StructField(f.name, spark_type(f.type)) for f in FACT_INVOICE_LINE.fields if f.type in (MONEY, QUANTITY)],
])
HEADER_MEASURES = [T.StructField(f.name, spark_type(f.type)) for f in FACT_INVOICE.fields
                   if f.type in (MONEY, RATE, EXCHANGE_RATE)
                   or f.name in ("reporting_currency_code", "exchange_rate_date")]


# the document's own header fields (dataclass fields; parties, adjustments and lines are mapped by hand)
_DOCUMENT_HEADER = {f.name for f in dataclasses.fields(InvoiceDocument)} - {"lines", "seller", "bill_to", "ship_to"}


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
    T.StructField("member_number", T.StringType()),
    T.StructField("po_number", T.StringType()),
    T.StructField("terms", T.StringType()),
    *_PARTY_FIELDS,
    *HEADER_MEASURES,
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
    """The country the party's last address line names: the whole line ("HONG KONG"), else a name of two to
    four words ending it ("153 Harvest Lane HONG KONG", the seed's seller). One word ending a line is not
    enough (Georgia and Jersey are also a state and a county; "HK" could be anything), nor a near name:
    standardise.country_to_code matches names and aliases exactly."""
    from lakehouse_jobs.standardise import country_to_code  # pandas and friends: only where parsing runs

    if not party or not party.address:
        return None
    last = party.address[-1]
    if code := country_to_code(last):
        return code
    words = last.split()
    return next((code for n in (4, 3, 2) if len(words) > n and (code := country_to_code(" ".join(words[-n:])))),
                None)


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


def parse_invoice_file(data: bytes, reporting_currency: str = REPORTING_CURRENCY) -> dict:
    """One file's row of PARSED_SCHEMA (without source_path and source_sha256), in plain Python.

    status "quarantined" with the parser's reason (InvoiceParseError), check_arithmetic's first code
    (the detail lists them all), date_out_of_range, amount_out_of_range, or parser_error for any other
    exception (a parser bug must not stop the other files of the run). Otherwise status "parsed": the
    document's fields, the header's adjustments summed per kind (a rate only when exactly one adjustment
    of the kind is printed), and the lines with their parts of each adjustment (allocate_adjustments:
    None for a kind the invoice does not print) and net amounts, which sum exactly to the total; the total,
    amount paid, balance due and net amounts also in `reporting_currency` (exchange_rates.reporting_amounts,
    None without a rate).
    """
    try:
        doc = parse_invoice_pdf(data)
    except InvoiceParseError as e:
        return _quarantined(e.reason, e.detail)
    except Exception as e:  # noqa: BLE001 - any other failure is a parser bug: quarantine the file, go on
        return _quarantined("parser_error", f"{type(e).__name__}: {e}")
    try:
        # the due date as printed, else as the printed terms state it ("due within 15 days"); a derived date
        # outside dim_date is dropped rather than quarantining an invoice that prints none
        if doc.due_date is None:
            derived = due_date_from_terms(doc.invoice_date, doc.payment_terms, doc.terms)
            if derived is not None and _FIRST <= derived <= _LAST:
                doc = dataclasses.replace(doc, due_date=derived)
        problems = check_arithmetic(doc)
        if problems:
            return _quarantined(problems[0].split(":")[0], "; ".join(problems), doc.invoice_number)
        if problem := _range_problem(doc):
            return _quarantined(*problem, doc.invoice_number)
        allocations = allocate_adjustments(doc)
        # derived amounts must fit their columns too: an Arrow error here would fail the run, not the file
        if any(abs(v) >= MONEY_LIMIT for a in allocations for v in (a.net_amount, *(p for _, p in a.allocated))):
            return _quarantined("amount_out_of_range", "a line's part of an adjustment or its net amount does "
                                "not fit DECIMAL(18,2)", doc.invoice_number)
        # the header's fields the document holds under the same name (parties, adjustments and lines below)
        row: dict[str, Any] = {"status": "parsed"} | {
            f.name: getattr(doc, f.name) for f in PARSED_SCHEMA.fields if f.name in _DOCUMENT_HEADER}
        for role in ("seller", "bill_to", "ship_to"):
            party: Party | None = getattr(doc, role)
            row[f"{role}_name"] = party.name if party else None
            row[f"{role}_address"] = list(party.address) if party else None
            row[f"{role}_country_code"] = _country(party)
        for kind in ADJUSTMENT_SIGNS:
            of_kind = [a for a in doc.adjustments if a.kind == kind]
            row[f"{kind}_amount"] = sum((a.amount for a in of_kind), Decimal("0.00")) if of_kind else None
            row[f"{kind}_rate"] = of_kind[0].rate if len(of_kind) == 1 else None
        reporting = reporting_amounts(doc.total, doc.amount_paid, [a.net_amount for a in allocations],
                                      reference_rate(doc.currency, reporting_currency, doc.invoice_date),
                                      reporting_currency, MONEY_LIMIT)
        row |= {"reporting_currency_code": reporting.currency,
                "exchange_rate": reporting.rate and reporting.rate.rate,
                "exchange_rate_date": reporting.rate and reporting.rate.rate_date,
                "total_reporting": reporting.total, "amount_paid_reporting": reporting.amount_paid,
                "balance_due_reporting": reporting.balance_due}
        row["lines"] = [
            {"line_number": line.line_number, "description": line.description, "quantity": line.quantity,
             "unit_price": line.unit_price, "line_amount": line.amount,
             **{f"{kind}_amount": allocation.part(kind) for kind in ADJUSTMENT_SIGNS},
             "net_amount": allocation.net_amount, "net_amount_reporting": net_reporting}
            for line, allocation, net_reporting in zip(doc.lines, allocations, reporting.line_net_amounts)
        ]
        return row
    except Exception as e:  # noqa: BLE001
        return _quarantined("parser_error", f"{type(e).__name__}: {e}", doc.invoice_number)


@functools.cache
def _parsed_arrow_schema() -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(PARSED_SCHEMA)


def _warm_up() -> None:
    """Load here, in the Spark worker, what parsing loads on first use: the country names (standardise:
    pandas, pycountry's databases), the ECB rates, numpy. Each task parses in a child forked from the worker
    (budget.BudgetedParser) that ends with the task; loaded in the child, they cost about a second per task
    (1.1 s measured on a busy 2-core machine, against 10-20 ms a file, 16 files a task); loaded here, once
    per worker (Spark reuses its Python workers), every child inherits them."""
    import numpy  # noqa: F401 - the ink check's (text_layer._seen)

    from lakehouse_jobs.invoice.exchange_rates import rates_last_date
    from lakehouse_jobs.standardise import country_to_code

    country_to_code("HONG KONG")
    rates_last_date()


def parse_arrow_batches(batches: Iterator[pa.RecordBatch], seconds: float,
                        reporting_currency: str = REPORTING_CURRENCY) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: (source_path, source_sha256, content) batches -> PARSED_SCHEMA batches, one row per file,
    each parsed within `seconds` (BudgetedParser). PDFium is not thread-safe: one file at a time per worker."""
    schema = _parsed_arrow_schema()
    _warm_up()
    target = functools.partial(parse_invoice_file, reporting_currency=reporting_currency)
    with BudgetedParser(target, seconds, _quarantined) as parse:
        for batch in batches:
            paths, hashes, contents = (batch.column(c) for c in ("source_path", "source_sha256", "content"))
            rows = [{"source_path": paths[i].as_py(), "source_sha256": hashes[i].as_py(),
                     **parse(contents[i].as_py())} for i in range(batch.num_rows)]
            yield pa.RecordBatch.from_pylist(rows, schema=schema)


def parse_files(spark: SparkSession, paths: list[str], listed: Listed | None = None, *,
                seconds: float = PARSE_SECONDS, reporting_currency: str = REPORTING_CURRENCY) -> DataFrame:
    """PARSED_SCHEMA rows of `paths` (read_files): read again (the content is not kept between steps), hashed
    again (the hash of exactly the bytes parsed), spread over ceil(len(paths) / FILES_PER_TASK) tasks and
    parsed, each file within `seconds`, amounts also in `reporting_currency`."""
    if not paths:
        return spark.createDataFrame([], PARSED_SCHEMA)
    files = read_files(spark, paths, listed).select(
        F.col("path").alias("source_path"), F.sha2("content", 256).alias("source_sha256"), "content")
    return files.repartition(max(1, math.ceil(len(paths) / FILES_PER_TASK))).mapInArrow(
        functools.partial(parse_arrow_batches, seconds=seconds, reporting_currency=reporting_currency), PARSED_SCHEMA)


def too_large_rows(spark: SparkSession, files: list[tuple[str, int, dt.datetime]], limit: int) -> DataFrame:
    """PARSED_SCHEMA rows quarantining `files` (source_path, file_size in bytes, file_modified_at) as
    ``too_large``: over `limit` bytes, they are never read (Spark's binaryFile reads a file whole into one
    value, at most 2 GiB, and a real invoice is kilobytes). As their bytes are not read, source_sha256 is the
    SHA-256 of the listing "too_large:<path>:<size>:<modified at>": unique per listed file, never a content's."""
    rows = [{"source_path": path, "source_sha256": hashlib.sha256(
                f"too_large:{path}:{size}:{modified.isoformat()}".encode()).hexdigest(),
             **_quarantined("too_large", f"{size} bytes, over the limit of {limit} bytes (--max-file-bytes)")}
            for path, size, modified in files]
    return spark.createDataFrame(rows, PARSED_SCHEMA)
