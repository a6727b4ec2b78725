"""Tests of the invoice_load job (lakehouse_jobs.invoice): PDFs in, the invoice star schema out.

Two lakes, each loaded once per module (job runs are the expensive part; tests read what they produced):
- ``golden``: the brief's invoice.pdf and two invoices made by hand (HK-00002, US-00001) whose expected
  values are worked out below by hand; members with SCD2 history. Every value of invoice.pdf, the member
  resolution as of the invoice date, the analytics SQL of docs/invoice-star-schema.md, no plaintext PII.
- ``batch``: 50 generated invoices (multi-page ones among them) and every bad input of
  dev.invoice_pdfs.bad_inputs, then a rerun of the same files, then corrected re-issues (via --manifest)
  with the missing member card added. Tests read each state by the Delta version the runs left.
unit: the per-file parse function and the member resolution rules on small in-memory data.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pypdfium2 as pdfium
import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from dev.invoice_ddl_doc import sample_queries
from dev.invoice_pdfs import bad_inputs, generate_invoice, render_invoice_pdf, with_wrong_number, write_batch
from include.extract.schema_drift import schema_hash, schema_json
from lakehouse_jobs import pii
from lakehouse_jobs.delta import ensure_table
from lakehouse_jobs.invoice import job as invoice_load
from lakehouse_jobs.invoice import members, parse
from lakehouse_jobs.invoice.constraints import FOREIGN_KEYS, PRIMARY_KEYS, UNIQUE_KEYS
from lakehouse_jobs.invoice.dimensions import invoice_terms_rows, seller_hash, terms_hash
from lakehouse_jobs.invoice.document import (
    ADJUSTMENT_SIGNS,
    Adjustment,
    InvoiceDocument,
    InvoiceLine,
    Party,
    check_arithmetic,
    money_unit,
    round_money,
)
from lakehouse_jobs.invoice.exchange_rates import reference_rate
from lakehouse_jobs.invoice.tables import INVOICE_TABLES
from lakehouse_jobs.manifest import FileList, ListedFile
from lakehouse_jobs.tables import DIM_MEMBER, OPEN_END
from tests.conftest import REPO_ROOT

SEED_PDF = REPO_ROOT / "tests" / "data" / "invoice.pdf"
UTC = dt.timezone.utc
M1 = "11111111-1111-4111-8111-111111111111"  # card 11134891: invoice.pdf and US-00001
M2 = "22222222-2222-4222-8222-222222222222"  # card 22200001: HK-00002
CARD_A = 22200001

# HK-00002: a shipping charge of 50.00 over 750.00 and 361.50. Exact quotas 5000 * 750 / 1111.5 = 3373.82 and
# 1626.18 cents: floors 3373 + 1626 = 4999, the last cent to the larger fraction (line 1): 33.74 and 16.26.
DOC_A = InvoiceDocument(
    invoice_number="HK-00002", invoice_date=dt.date(2024, 1, 15), currency="HKD",
    lines=(InvoiceLine(1, "CREWNECK COTTON T-SHIRT", Decimal("1"), Decimal("750.00"), Decimal("750.00")),
           InvoiceLine(2, "WOOL SCARF", Decimal("3"), Decimal("120.50"), Decimal("361.50"))),
    subtotal=Decimal("1111.50"), adjustments=(Adjustment("shipping", None, Decimal("50.00")),),
    total=Decimal("1161.50"), amount_paid=Decimal("1161.50"), balance_due=Decimal("0.00"),
    payment_terms="Mastercard", payment_method="Mastercard", member_number=str(CARD_A),
    seller=Party("East Star Retail Ltd.", ("153 Harvest Lane HONG KONG",)),
    bill_to=Party("Ada Lovelace", ("77 Analytical Engine Road", "HONG KONG")),
    terms="Payment is due within 15 days",
)
# US-00001: 2 x 100.00; discount 5% of 200.00 = 10.00; tax 10% of 190.00 = 19.00; total 209.00, nothing paid.
# One line takes every part: net 200.00 - 10.00 + 19.00 = 209.00. Bill-to and ship-to are one party.
DOC_B = InvoiceDocument(
    invoice_number="US-00001", invoice_date=dt.date(2024, 2, 3), currency="USD",
    lines=(InvoiceLine(1, "LEATHER SLEEVE CLASSIC JACKET", Decimal("2"), Decimal("100.00"), Decimal("200.00")),),
    subtotal=Decimal("200.00"),
    adjustments=(Adjustment("discount", Decimal("0.05"), Decimal("10.00")),
                 Adjustment("tax", Decimal("0.1"), Decimal("19.00"))),
    total=Decimal("209.00"), amount_paid=Decimal("0.00"), balance_due=Decimal("209.00"),
    due_date=dt.date(2024, 3, 4), payment_terms="Net 30", payment_method="Visa", member_number="11134891",
    po_number="PO99", seller=Party("West Wind Trading LLC", ("1 Market Street", "UNITED STATES")),
    bill_to=Party("Grace Hopper", ("9 Compiler Court", "UNITED STATES")),
    ship_to=Party("Grace Hopper", ("9 Compiler Court", "UNITED STATES")),
)
GOLDEN_PEOPLE = ["Chris Wong", "12 Court Square", "4912 Pineview Place", "Ada Lovelace",
                 "77 Analytical Engine Road", "Grace Hopper", "9 Compiler Court"]


# ----------------------------------------------------------------------------------------- helpers


@dataclass
class Lake:
    root: Path
    results: dict[str, dict]
    versions: dict[str, dict[str, int]]  # state name -> table -> latest version after that run
    extra: dict[str, Any]

    def path(self, table: str) -> str:
        return str(self.root / "delta" / table)

    def read(self, spark, table: str, state: str | None = None):
        reader = spark.read.format("delta")
        if state is not None:
            reader = reader.option("versionAsOf", self.versions[state][table])
        return reader.load(self.path(table))

    def run(self, spark, state: str, cards: Path, *, incoming: Path | None = None,
            manifest: Path | None = None, options: tuple[str, ...] = ()) -> dict:
        source = ["--incoming", str(incoming)] if incoming else ["--manifest", str(manifest)]
        result_path = self.root / f"result-{state}.json"
        self.results[state] = invoice_load.main(
            [*source, "--member-cards", str(cards), "--tables-root", str(self.root / "delta"),
             "--result-path", str(result_path), "--batch-id", f"test-{state}", *options], spark=spark).to_dict()
        self.versions[state] = {t: DeltaTable.forPath(spark, self.path(t)).history(1).first()["version"]
                                for t in INVOICE_TABLES}
        return self.results[state]


def write_cards(path: Path, cards: dict[int, str], as_text: bool = False) -> Path:
    """The member_card extract as a Parquet directory (card numbers as BIGINT, or as digits in text)."""
    path.mkdir(parents=True, exist_ok=True)
    numbers = [str(c) for c in cards] if as_text else list(cards)
    pq.write_table(pa.table({"card_number": pa.array(numbers, pa.string() if as_text else pa.int64()),
                             "member_id": list(cards.values())}), path / "part-00000.parquet")
    return path


def write_dim_member(spark, path: str, versions: list[tuple[str, str, str]]) -> dict[str, list[int]]:
    """dim_member with the given (member_id, valid_from, valid_to) versions, as member_merge would have left
    it; returns each member's member_sk values in valid_from order."""
    ensure_table(spark, DIM_MEMBER, path)
    fields = [f for f in DIM_MEMBER.fields if not f.identity]
    rows = []
    for member_id, start, end in versions:
        values = {"member_id": member_id, "attribute_hash": hashlib.sha256(f"{member_id}{start}".encode()).hexdigest(),
                  "registration_date": dt.date(2019, 1, 1),
                  "valid_from": dt.datetime.fromisoformat(start).replace(tzinfo=UTC),
                  "valid_to": dt.datetime.fromisoformat(end).replace(tzinfo=UTC), "is_current": end == OPEN_END,
                  "_batch_id": "test", "_updated_at": dt.datetime.now(UTC)}
        rows.append(tuple(values.get(f.name) for f in fields))
    spark.createDataFrame(rows, ", ".join(f"{f.name} {f.type}" for f in fields)).write.format("delta").mode(
        "append").save(path)
    sks: dict[str, list[int]] = {}
    for r in spark.read.format("delta").load(path).orderBy("member_id", "valid_from").collect():
        sks.setdefault(r["member_id"], []).append(r["member_sk"])
    return sks


def by_key(rows, *key: str) -> dict:
    return {tuple(r[k] for k in key) if len(key) > 1 else r[key[0]]: r.asDict() for r in rows}


def decrypt(spark, df, *columns: str) -> list[tuple]:
    keys = pii.PiiKeys.from_env()
    return [tuple(r) for r in pii.with_keys(spark, df, keys).select(*[pii.decrypt(c) for c in columns]).collect()]


def _blobs(value: Any):
    if isinstance(value, str):
        yield value.encode()
    elif isinstance(value, bytes):
        yield value
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _blobs(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _blobs(v)


def plaintext_in(root: Path, needles: list[str]) -> dict[str, set[str]]:
    """{file: needles found} over every file under `root`: Parquet files decoded (their pages are compressed)
    and every string and binary value searched; any other file (the Delta log, checkpoints, deletion
    vectors) searched as bytes. A needle matches as printed or upper-cased."""
    forms = {n: {n.encode(), n.upper().encode()} for n in needles}
    found: dict[str, set[str]] = {}
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            blobs = [b for column in table.columns for b in _blobs(column.to_pylist())]
        else:
            blobs = [path.read_bytes()]
        for needle, encoded in forms.items():
            if any(e in b for b in blobs for e in encoded):
                found.setdefault(str(path.relative_to(root)), set()).add(needle)
    return found


def key_violations(spark, lake: Lake) -> dict[str, int]:
    """Rows breaking a declared primary, unique or foreign key (invoice.tables), per key. The key columns
    of each table are read once (the tables are small) and checked here."""
    needed: dict[str, set[str]] = {}
    for keys in (PRIMARY_KEYS, UNIQUE_KEYS):
        for table, columns in keys.items():
            needed.setdefault(table, set()).update(columns)
    for table, fks in FOREIGN_KEYS.items():
        for column, (ref, ref_column) in fks.items():
            needed.setdefault(table, set()).add(column)
            needed.setdefault(ref, set()).add(ref_column)
    rows = {table: [r.asDict() for r in spark.read.format("delta").load(lake.path(table)).select(*sorted(cols))
                    .collect()] for table, cols in needed.items()}
    violations = {}
    for kind, keys in (("pk", PRIMARY_KEYS), ("uk", UNIQUE_KEYS)):
        for table, columns in keys.items():
            counts = Counter(tuple(r[c] for c in columns) for r in rows[table])
            violations[f"{kind} {table}"] = sum(n - 1 for n in counts.values())
    for table, fks in FOREIGN_KEYS.items():
        for column, (ref, ref_column) in fks.items():
            present = {r[ref_column] for r in rows[ref]}
            violations[f"fk {table}.{column}"] = sum(
                1 for r in rows[table] if r[column] is not None and r[column] not in present)
    return violations


# ------------------------------------------------------------------------------------------- lakes


@pytest.fixture(scope="module")
def golden(spark, tmp_path_factory) -> Lake:
    root = tmp_path_factory.mktemp("golden")
    incoming = root / "incoming"
    incoming.mkdir()
    shutil.copy(SEED_PDF, incoming / "invoice.pdf")
    for doc in (DOC_A, DOC_B):
        assert check_arithmetic(doc) == []
        (incoming / f"{doc.invoice_number}.pdf").write_bytes(render_invoice_pdf(doc))
    cards = write_cards(root / "member_card", {11134891: M1, CARD_A: M2})
    # M1 changed on 2024-01-20: invoice.pdf (2024-01-01) is of its first version, US-00001 (2024-02-03) of its
    # second. M2's history starts after HK-00002 (2024-01-15): its one version stands for it.
    sks = write_dim_member(spark, str(root / "delta" / "dim_member"), [
        (M1, "2020-01-01", "2024-01-20"), (M1, "2024-01-20", OPEN_END), (M2, "2024-06-01", OPEN_END)])
    lake = Lake(root, {}, {}, {"sks": sks})
    lake.run(spark, "load", cards, incoming=incoming)
    return lake


@pytest.fixture(scope="module")
def batch(spark, tmp_path_factory) -> Lake:
    root = tmp_path_factory.mktemp("batch")
    incoming = root / "incoming"
    cards_all = list(range(30000001, 30000011))
    written = write_batch(incoming, 50, 2024, cards_all)
    docs = {doc.invoice_number: doc for _, doc in written}
    used = Counter(doc.member_number for doc in docs.values() if doc.member_number)
    late_card = int(min(used, key=lambda c: (used[c], c)))  # absent from member_card in the first two runs
    bad_doc = generate_invoice(99, [], sequence=9001)
    bad = {f"bad-{name}.pdf": data for name, data in bad_inputs(bad_doc).items()}
    bad["readme {draft}.txt"] = b"Invoices for November, see the PDFs.\n"  # a glob character in its name
    # no Bill To:/Ship To: labels: the parser cannot place the customer's lines and quotes them in its detail
    bad["bad-layout.pdf"] = render_invoice_pdf(bad_doc, alter={"Bill To:": None, "Ship To:": None})
    for name, data in bad.items():
        (incoming / name).write_bytes(data)
    members = {card: f"{card:08d}-0000-4000-8000-000000000000" for card in cards_all}
    sks = write_dim_member(spark, str(root / "delta" / "dim_member"),
                           [(m, "2020-01-01", OPEN_END) for m in members.values()])
    cards_early = write_cards(root / "cards-early", {c: m for c, m in members.items() if c != late_card},
                              as_text=True)
    lake = Lake(root, {}, {}, {"docs": docs, "written": written, "bad": bad, "bad_doc": bad_doc,
                               "late_card": late_card, "members": members, "sks": sks})
    lake.run(spark, "first", cards_early, incoming=incoming)

    # the same files again, and one of them under another name
    shutil.copy(written[0][0], incoming / "copy-of-first.pdf")
    lake.run(spark, "rerun", cards_early, incoming=incoming)

    # corrected re-issues: X loses its last line (and its charges); Y is re-issued twice in one run, the
    # later file wins; the same content twice; and the late member card is in member_card now
    x, y = [d for d in docs.values() if len(d.lines) >= 2 and d.member_number not in (None, late_card)][:2]
    kept = x.lines[:-1]
    subtotal = sum((line.amount for line in kept), Decimal("0.00"))
    x2 = dataclasses.replace(x, lines=kept, subtotal=subtotal, adjustments=(), total=subtotal, amount_paid=None,
                             balance_due=subtotal)
    assert check_arithmetic(x2) == []
    reissues = root / "reissues"
    reissues.mkdir()
    files = {"x.pdf": render_invoice_pdf(x2), "x-copy.pdf": render_invoice_pdf(x2),
             "y-first.pdf": render_invoice_pdf(dataclasses.replace(y, po_number="PO-FIRST")),
             # a name Hadoop would read as a glob ("y s.pdf", "y e.pdf", ...) unless escaped
             "y [second].pdf": render_invoice_pdf(dataclasses.replace(y, po_number="PO-SECOND"))}
    # an upload that failed half-way: Spark's file sources never return a zero-byte file
    files["empty-upload.pdf"] = b""
    for name, data in files.items():
        (reissues / name).write_bytes(data)
    # Y's first issue arrived an hour before its second; the files' own times say the opposite, as a claim's
    # copies (all made at the claim) could: the list's arrival times decide
    an_hour_ago = time.time() - 3600
    os.utime(reissues / "y [second].pdf", (an_hour_ago, an_hour_ago))
    arrived = {"y-first.pdf": dt.datetime.fromtimestamp(an_hour_ago, dt.timezone.utc).isoformat(),
               "y [second].pdf": dt.datetime.now(dt.timezone.utc).isoformat()}
    manifest = root / "reissues.json"
    manifest.write_text(FileList("reissue", [ListedFile(str(reissues / name), len(data), None, arrived.get(name))
                                             for name, data in files.items()]).to_json())
    lake.extra |= {"x": x, "x2": x2, "x2_sha": hashlib.sha256(files["x.pdf"]).hexdigest(), "y": y}
    lake.run(spark, "reissue", write_cards(root / "cards-all", members, as_text=True), manifest=manifest)
    return lake


# -------------------------------------------------------------------------------------- golden lake


@pytest.mark.integration
def test_invoice_pdf_loads_with_every_value(spark, golden):
    header = golden.read(spark, "fact_invoice").where("invoice_number = 'HK-00001'").first().asDict()
    assert {k: v for k, v in header.items() if not k.endswith("_key") and k not in (
        "source_path", "_updated_at")} == {
        "invoice_number": "HK-00001", "member_sk": golden.extra["sks"][M1][0], "member_resolution": "resolved",
        "currency_code": "HKD", "member_card_number": "11134891", "po_number": "PO16700001",
        "line_count": 2, "subtotal": Decimal("4880.00"), "discount_rate": Decimal("0.100000"),
        "discount_amount": Decimal("488.00"), "tax_rate": None, "tax_amount": None, "shipping_rate": None,
        "shipping_amount": None, "total": Decimal("4392.00"), "amount_paid": Decimal("4392.00"),
        "balance_due": Decimal("0.00"), "source_sha256": hashlib.sha256(SEED_PDF.read_bytes()).hexdigest(),
        "_batch_id": "test-load",
        # 2024-01-01 is a TARGET holiday: the ECB rates of Friday 2023-12-29, USD 1.1050 and HKD 8.6314 per
        # euro; 4,392.00 x 0.1280209468 = 562.268
        "reporting_currency_code": "USD", "exchange_rate": Decimal("0.1280209468"),
        "exchange_rate_date": dt.date(2023, 12, 29), "total_reporting": Decimal("562.27"),
        "amount_paid_reporting": Decimal("562.27"), "balance_due_reporting": Decimal("0.00"),
    }
    # no due date printed: the invoice date plus the terms' "due within 15 days"
    assert header["invoice_date_key"] == 20240101 and header["due_date_key"] == 20240116
    assert header["source_path"].endswith("/incoming/invoice.pdf") and header["_updated_at"] is not None

    # the dimension rows its keys point at; the payment terms' free text in the junk dimension
    terms = golden.read(spark, "dim_invoice_terms").where(F.col("invoice_terms_key") == header["invoice_terms_key"])
    assert [tuple(r) for r in terms.select("payment_terms", "terms").collect()] == [
        ("Visa", "Payment is due within 15 days\nPlease make checks payable to: East Star Retail Ltd.")]
    method = golden.read(spark, "dim_payment_method").where(F.col("payment_method_key") == header["payment_method_key"])
    assert [tuple(r) for r in method.select("payment_method_nk", "payment_method_name", "payment_category").collect()] \
        == [("visa", "Visa", "card")]
    seller = golden.read(spark, "dim_seller").where(F.col("seller_key") == header["seller_key"]).first()
    assert (seller["seller_name"], seller["seller_address"], seller["country_code"]) == (
        "East Star Retail Ltd.", "153 Harvest Lane HONG KONG", "HK")
    parties = golden.read(spark, "dim_party_address")
    bill = parties.where(F.col("party_key") == header["bill_to_key"])
    ship = parties.where(F.col("party_key") == header["ship_to_key"])
    assert decrypt(spark, bill, "name_enc", "address_enc") == [("Chris Wong", "12 Court Square\nHONG KONG")]
    assert decrypt(spark, ship, "name_enc", "address_enc") == [("Chris Wong", "4912 Pineview Place\nHONG KONG")]
    assert bill.first()["country_code"] == ship.first()["country_code"] == "HK"
    currency = golden.read(spark, "dim_currency").where("currency_code = 'HKD'").first()
    assert (currency["currency_name"], currency["numeric_code"], currency["minor_unit"], currency["printed_prefix"]) \
        == ("Hong Kong Dollar", "344", 2, "HK$")
    day = golden.read(spark, "dim_date").where("date_key = 20240101").first().asDict()
    assert day == {"date_key": 20240101, "full_date": dt.date(2024, 1, 1), "year": 2024, "quarter": 1, "month": 1,
                   "month_name": "January", "year_month": "2024-01", "day_of_month": 1, "day_of_year": 1,
                   "day_of_week": 1, "day_name": "Monday", "iso_week": 1, "iso_year": 2024, "is_weekend": False,
                   "first_day_of_month": dt.date(2024, 1, 1), "last_day_of_month": dt.date(2024, 1, 31)}

    # the lines: 10% of 4,880.00 allocated in proportion to 3,380.00 and 1,500.00 is exactly 338.00 and 150.00
    products = golden.read(spark, "dim_product").select("product_key", "product_name")
    lines = (golden.read(spark, "fact_invoice_line").where("invoice_number = 'HK-00001'").join(products, "product_key")
             .orderBy("line_number").collect())
    assert [(r["line_number"], r["product_name"], r["quantity"], r["unit_price"], r["line_amount"],
             r["discount_amount"], r["tax_amount"], r["shipping_amount"], r["net_amount"]) for r in lines] == [
        (1, "LEATHER SLEEVE CLASSIC JACKET", Decimal("1"), Decimal("3380.00"), Decimal("3380.00"), Decimal("338.00"),
         None, None, Decimal("3042.00")),
        (2, "CREWNECK COTTON T-SHIRT", Decimal("2"), Decimal("750.00"), Decimal("1500.00"), Decimal("150.00"),
         None, None, Decimal("1350.00")),
    ]
    # 3,042.00 and 1,350.00 HKD converted: 389.4397 and 172.8283 USD; rounded down they add up to 562.25, so
    # both go up a cent to add up to the header's 562.27
    assert [r["net_amount_reporting"] for r in lines] == [Decimal("389.44"), Decimal("172.83")]
    shared = ("member_sk", "member_resolution", "reporting_currency_code", "exchange_rate", "exchange_rate_date")
    for line in lines:  # every line carries its invoice's keys and rate
        assert {k: line[k] for k in header if k.endswith("_key") or k in shared} == {
            k: header[k] for k in header if k.endswith("_key") or k in shared}


@pytest.mark.integration
def test_hand_made_invoices_allocate_and_resolve_as_worked_out(spark, golden):
    result = golden.results["load"]
    assert (result["files_seen"], result["invoices_loaded"], result["lines_loaded"], result["quarantined"]) == (
        3, 3, 5, 0)
    assert result["member_resolution"] == {"resolved": 2, "resolved_nearest_version": 1}
    lines = golden.read(spark, "fact_invoice_line").where("invoice_number <> 'HK-00001'").orderBy(
        "invoice_number", "line_number")
    assert [tuple(r) for r in lines.select("invoice_number", "line_number", "discount_amount", "tax_amount",
                                           "shipping_amount", "net_amount").collect()] == [
        ("HK-00002", 1, None, None, Decimal("33.74"), Decimal("783.74")),
        ("HK-00002", 2, None, None, Decimal("16.26"), Decimal("377.76")),
        ("US-00001", 1, Decimal("10.00"), Decimal("19.00"), None, Decimal("209.00")),
    ]
    headers = by_key(golden.read(spark, "fact_invoice").collect(), "invoice_number")
    sks = golden.extra["sks"]
    assert (headers["US-00001"]["member_sk"], headers["US-00001"]["member_resolution"]) == (sks[M1][1], "resolved")
    assert (headers["HK-00002"]["member_sk"], headers["HK-00002"]["member_resolution"]) == (
        sks[M2][0], "resolved_nearest_version")
    us = headers["US-00001"]
    terms = by_key(golden.read(spark, "dim_invoice_terms").collect(), "invoice_terms_key")
    assert (us["discount_rate"], us["tax_rate"], us["due_date_key"], terms[us["invoice_terms_key"]]["payment_terms"],
            terms[us["invoice_terms_key"]]["terms"]) == (Decimal("0.05"), Decimal("0.1"), 20240304, "Net 30", None)
    assert us["bill_to_key"] == us["ship_to_key"]  # one party in two roles
    assert headers["HK-00002"]["ship_to_key"] is None and headers["HK-00002"]["amount_paid"] == Decimal("1161.50")
    # the T-shirt of invoice.pdf and of HK-00002 is one product
    assert golden.read(spark, "dim_product").count() == 3


# every query of the document, with results worked out by hand from the three invoices above
EXPECTED_ANALYTICS = {
    # in USD: HK-00001 4,392.00 HKD at 0.1280209468 (2023-12-29) = 562.27; HK-00002 1,161.50 HKD at
    # 0.1278636433 (2024-01-15: USD 1.0945, HKD 8.5599) = 148.51; US-00001 209.00 USD at 1
    "top_members_by_month": [
        ("2024-01", M1, "USD", 1, Decimal("562.27"), 1), ("2024-01", M2, "USD", 1, Decimal("148.51"), 2),
        ("2024-02", M1, "USD", 1, Decimal("209.00"), 1),
    ],
    "highest_total_day": [(dt.date(2024, 1, 1), "USD", 1, Decimal("562.27"))],
    "revenue_by_product_month": [
        ("2024-01", "HKD", "CREWNECK COTTON T-SHIRT", Decimal(3), Decimal("2250.00"), Decimal("2133.74")),
        ("2024-01", "HKD", "LEATHER SLEEVE CLASSIC JACKET", Decimal(1), Decimal("3380.00"), Decimal("3042.00")),
        ("2024-01", "HKD", "WOOL SCARF", Decimal(3), Decimal("361.50"), Decimal("377.76")),
        ("2024-02", "USD", "LEATHER SLEEVE CLASSIC JACKET", Decimal(2), Decimal("200.00"), Decimal("209.00")),
    ],
    "revenue_per_member": [
        (M1, "HKD", 1, Decimal("4392.00")), (M1, "USD", 1, Decimal("209.00")), (M2, "HKD", 1, Decimal("1161.50")),
    ],
    # 488.00 / 5,991.50 = 0.08145
    "discount_given": [
        ("2024-01", "HKD", 2, 1, Decimal("5991.50"), Decimal("488.00"), Decimal("0.0814")),
        ("2024-02", "USD", 1, 1, Decimal("200.00"), Decimal("10.00"), Decimal("0.0500")),
    ],
    "invoices_by_payment_method": [
        ("Mastercard", "card", "HKD", 1, Decimal("1161.50"), Decimal("0.00")),
        ("Visa", "card", "HKD", 1, Decimal("4392.00"), Decimal("0.00")),
        ("Visa", "card", "USD", 1, Decimal("209.00"), Decimal("209.00")),
    ],
    "outstanding_by_payment_terms": [
        ("Mastercard", "USD", 1, Decimal("148.51"), Decimal("0.00")),
        ("Net 30", "USD", 1, Decimal("209.00"), Decimal("209.00")),
        ("Visa", "USD", 1, Decimal("562.27"), Decimal("0.00")),
    ],
    "net_revenue_by_ship_to_country": [
        ("HK", "HKD", 1, Decimal("4392.00")), ("US", "USD", 1, Decimal("209.00")),
        ("unknown", "HKD", 1, Decimal("1161.50")),
    ],
}


@pytest.mark.integration
def test_documented_analytics_give_the_hand_computed_results(spark, golden):
    queries = sample_queries()
    assert set(queries) == set(EXPECTED_ANALYTICS)
    for table in [*INVOICE_TABLES, "dim_member"]:
        golden.read(spark, table).createOrReplaceTempView(table)
    try:
        for name, sql in queries.items():
            assert [tuple(r) for r in spark.sql(sql).collect()] == EXPECTED_ANALYTICS[name], name
    finally:
        for table in [*INVOICE_TABLES, "dim_member"]:
            spark.catalog.dropTempView(table)


@pytest.mark.integration
def test_no_customer_name_or_street_in_plaintext_in_any_file(spark, golden, batch):
    assert plaintext_in(golden.root / "delta", GOLDEN_PEOPLE) == {}
    people: set[str] = set()
    for doc in [*batch.extra["docs"].values(), batch.extra["bad_doc"]]:
        for party in (doc.bill_to, doc.ship_to):
            if party:
                # the name and the street (further lines: a generic "Suite 803", the country)
                people |= {party.name, party.address[0]}
    needles = sorted(p for p in people if len(p) >= 6)
    assert len(needles) > 100
    assert plaintext_in(batch.root / "delta", needles) == {}
    # the scan does find what is kept in plaintext on purpose: a seller's name
    assert any(f.startswith("dim_seller/") for f in plaintext_in(golden.root / "delta", ["East Star Retail Ltd."]))


@pytest.mark.integration
def test_declared_keys_hold_in_the_loaded_tables(spark, golden, batch):
    for lake in (golden, batch):
        violations = key_violations(spark, lake)
        assert len(violations) == len(PRIMARY_KEYS) + len(UNIQUE_KEYS) + sum(len(k) for k in FOREIGN_KEYS.values())
        assert {k: n for k, n in violations.items() if n} == {}


# --------------------------------------------------------------------------------------- batch lake


def exact_share(total: Decimal, weight: Decimal, weights: list[Decimal]) -> Fraction:
    return Fraction(total) * Fraction(weight) / Fraction(sum(weights))


@pytest.mark.integration
def test_generated_invoices_load_exactly_and_lines_add_up_to_totals(spark, batch):
    docs = batch.extra["docs"]
    result = batch.results["first"]
    assert (result["files_seen"], result["files_parsed"], result["invoices_loaded"], result["lines_loaded"]) == (
        61, 61, 50, sum(len(d.lines) for d in docs.values()))
    assert any(len(pdfium.PdfDocument(path)) > 1 for path, _ in batch.extra["written"])  # multi-page ones too
    headers = by_key(batch.read(spark, "fact_invoice", "first").collect(), "invoice_number")
    lines: dict[str, list[dict]] = {}
    for r in batch.read(spark, "fact_invoice_line", "first").orderBy("line_number").collect():
        lines.setdefault(r["invoice_number"], []).append(r.asDict())
    assert set(headers) == set(lines) == set(docs)
    # the junk dimension: one row per pair as printed, the pair of neither too, every invoice pointing at its own
    terms = by_key(batch.read(spark, "dim_invoice_terms", "first").collect(), "invoice_terms_key")
    printed = {number: (doc.payment_terms, doc.terms) for number, doc in docs.items()}
    assert {number: (terms[h["invoice_terms_key"]]["payment_terms"], terms[h["invoice_terms_key"]]["terms"])
            for number, h in headers.items()} == printed
    assert len(terms) == len(set(printed.values())) < len(printed), "a pair printed twice is one row"
    for number, doc in docs.items():
        h, ls = headers[number], lines[number]
        adjustments = {kind: [a for a in doc.adjustments if a.kind == kind] for kind in ADJUSTMENT_SIGNS}
        assert (h["subtotal"], h["total"], h["balance_due"], h["amount_paid"], h["currency_code"], h["line_count"],
                h["po_number"], h["member_card_number"], h["invoice_date_key"]) == (
            doc.subtotal, doc.total, doc.balance_due, doc.amount_paid, doc.currency, len(doc.lines), doc.po_number,
            doc.member_number, int(doc.invoice_date.strftime("%Y%m%d"))), number
        assert [(r["line_number"], r["quantity"], r["unit_price"], r["line_amount"]) for r in ls] == [
            (line.line_number, line.quantity, line.unit_price, line.amount) for line in doc.lines], number
        assert sum(r["net_amount"] for r in ls) == h["total"], number
        # the reporting currency (USD): at the rate stored with it, and the lines add up to the header
        rate = reference_rate(doc.currency, "USD", doc.invoice_date)
        assert (h["exchange_rate"], h["exchange_rate_date"]) == ((rate.rate, rate.rate_date) if rate else (None, None))
        if rate:
            assert h["total_reporting"] == round_money(doc.total * rate.rate, "USD"), number
            assert sum(r["net_amount_reporting"] for r in ls) == h["total_reporting"], number
        else:
            assert [h["total_reporting"], *(r["net_amount_reporting"] for r in ls)] == [None] * (1 + len(ls))
        weights = [line.amount for line in doc.lines]
        unit = Fraction(money_unit(doc.currency))
        for kind, of_kind in adjustments.items():
            amount = sum((a.amount for a in of_kind), Decimal("0.00")) if of_kind else None
            assert h[f"{kind}_amount"] == amount, (number, kind)
            parts = [r[f"{kind}_amount"] for r in ls]
            if amount is None:
                assert parts == [None] * len(ls), (number, kind)
                continue
            assert sum(parts) == amount, (number, kind)
            for part, weight in zip(parts, weights):  # within one minor unit of the exact proportional share
                assert abs(Fraction(part) - exact_share(amount, weight, weights)) < unit, (number, kind)
                assert Fraction(part) % unit == 0, (number, kind)


@pytest.mark.integration
def test_every_bad_input_is_quarantined_with_its_reason_and_kept_out_of_the_facts(spark, batch):
    bad_doc = batch.extra["bad_doc"]
    expected = {}
    for name in batch.extra["bad"]:
        kind = name.removeprefix("bad-").removesuffix(".pdf")
        if kind.startswith("unbalanced_"):
            problems = check_arithmetic(with_wrong_number(bad_doc, kind.removeprefix("unbalanced_")))
            expected[name] = (problems[0].split(":")[0], bad_doc.invoice_number)
        else:
            expected[name] = ({"readme {draft}.txt": "not_pdf", "layout": "layout_unrecognised"}.get(kind, kind), None)
    quarantine = batch.read(spark, "invoice_quarantine", "first")
    rows = {Path(r["source_path"]).name: r for r in quarantine.collect()}
    assert {name: (r["reason"], r["invoice_number"]) for name, r in rows.items()} == expected
    assert batch.results["first"]["quarantine_reasons"] == dict(Counter(reason for reason, _ in expected.values()))
    assert all(r["source_sha256"] == hashlib.sha256(batch.extra["bad"][name]).hexdigest() for name, r in rows.items())
    # the customer's block without its labels is refused for the gap below the seller's address (read as the
    # seller's, it would reach dim_seller in plaintext); the detail says so without quoting the customer
    layout = rows["bad-layout.pdf"]
    assert "Bill To:" in layout["detail"] and bad_doc.bill_to.name not in layout["detail"]
    detail = decrypt(spark, quarantine.where("source_path LIKE '%bad-layout.pdf'"), "detail_enc")[0][0]
    assert "Bill To:" in detail and bad_doc.bill_to.name not in detail
    for table in ("fact_invoice", "fact_invoice_line"):
        facts = batch.read(spark, table)
        assert facts.where(F.col("invoice_number") == bad_doc.invoice_number).isEmpty()
        assert facts.where(F.col("source_path").contains("/bad-") | F.col("source_path").endswith(".txt")).isEmpty()
    ledger = batch.read(spark, "invoice_ledger", "first")
    assert {Path(r["source_path"]).name: r["status"] for r in ledger.where("status = 'quarantined'").collect()} == {
        name: "quarantined" for name in expected}


@pytest.mark.integration
def test_reprocessing_the_same_files_adds_nothing_and_commits_nothing(batch):
    first, rerun = batch.results["first"], batch.results["rerun"]
    assert rerun["files_seen"] == first["files_seen"] + 1
    # every file by its path, size and time; the renamed copy by its content
    assert rerun["files_skipped_already_processed"] == rerun["files_seen"]
    assert (rerun["files_parsed"], rerun["invoices_loaded"], rerun["lines_loaded"], rerun["quarantined"]) == (
        0, 0, 0, 0)
    assert rerun["versions"] == dict.fromkeys(INVOICE_TABLES)
    assert batch.versions["rerun"] == batch.versions["first"]


@pytest.mark.integration
def test_corrected_reissue_replaces_the_invoice_and_its_lines(spark, batch):
    x, x2, y = batch.extra["x"], batch.extra["x2"], batch.extra["y"]
    result = batch.results["reissue"]
    assert (result["files_seen"], result["files_skipped_same_content"], result["files_parsed"]) == (5, 1, 4)
    assert (result["quarantined"], result["quarantine_reasons"]) == (1, {"not_pdf": 1})
    assert (result["invoices_loaded"], result["invoices_replaced"], result["invoices_new"],
            result["invoices_superseded"]) == (2, 2, 0, 1)
    assert (result["lines_inserted"], result["lines_updated"], result["lines_deleted"]) == (
        0, len(x2.lines) + len(y.lines), 1)
    lines = batch.read(spark, "fact_invoice_line").where(F.col("invoice_number") == x.invoice_number)
    assert sorted(r["line_number"] for r in lines.collect()) == list(range(1, len(x.lines)))  # the last one is gone
    assert {r["source_sha256"] for r in lines.collect()} == {batch.extra["x2_sha"]}
    header = batch.read(spark, "fact_invoice").where(F.col("invoice_number") == x.invoice_number).first()
    assert (header["total"], header["line_count"], header["discount_amount"], header["tax_amount"],
            header["amount_paid"]) == (x2.total, len(x2.lines), None, None, None)
    assert sum(r["net_amount"] for r in lines.collect()) == x2.total
    assert batch.read(spark, "fact_invoice").count() == 50
    assert batch.read(spark, "fact_invoice_line").count() == sum(len(d.lines) for d in batch.extra["docs"].values()) - 1
    # of two re-issues of Y in one run, the one that arrived last is loaded, the other recorded as superseded
    assert batch.read(spark, "fact_invoice").where(F.col("invoice_number") == y.invoice_number).first()[
        "po_number"] == "PO-SECOND"
    ledger = {Path(r["source_path"]).name: r["status"] for r in batch.read(spark, "invoice_ledger").collect()}
    assert (ledger["y-first.pdf"], ledger["y [second].pdf"]) == ("superseded", "loaded")
    assert ledger.get("x.pdf", ledger.get("x-copy.pdf")) == "loaded" and not {"x.pdf", "x-copy.pdf"} <= set(ledger)
    assert ledger["empty-upload.pdf"] == "quarantined"


def test_a_listed_file_spark_would_hide_fails_the_run_by_name(spark, batch, tmp_path):
    """Names starting with "_" or "." are invisible to Spark's readers: the claim never gives one
    (include/invoice_landing.claimed_name), and a file list naming one stops the run rather than losing it."""
    hidden = tmp_path / "_hidden.pdf"
    hidden.write_bytes(batch.extra["bad"]["bad-layout.pdf"])
    manifest = tmp_path / "list.json"
    manifest.write_text(FileList("hidden", [ListedFile(str(hidden), hidden.stat().st_size)]).to_json())
    with pytest.raises(ValueError, match="Spark read 0 of its 1 files"):
        batch.run(spark, "hidden", batch.root / "cards-all", manifest=manifest)


@pytest.mark.integration
def test_a_file_over_the_size_limit_is_quarantined_unread_and_blocks_no_run(spark, tmp_path):
    """Issue 23 item 5: a huge upload is judged from its listed size (Spark's binaryFile could not even hold
    one over 2 GiB); the other files load, the file is in the ledger, and the next run does not see it again."""
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "a.pdf").write_bytes(render_invoice_pdf(DOC_A))
    # a producer's padding after %%EOF: a readable PDF, only large
    (incoming / "b-padded.pdf").write_bytes(render_invoice_pdf(DOC_B) + b" " * 200_000)
    cards = write_cards(tmp_path / "member_card", {11134891: M1, CARD_A: M2})
    write_dim_member(spark, str(tmp_path / "delta" / "dim_member"), [(M1, "2020-01-01", OPEN_END),
                                                                      (M2, "2020-01-01", OPEN_END)])
    lake = Lake(tmp_path, {}, {}, {})

    first = lake.run(spark, "first", cards, incoming=incoming, options=("--max-file-bytes", "100000"))
    assert (first["invoices_loaded"], first["quarantine_reasons"]) == (1, {"too_large": 1})
    quarantined = lake.read(spark, "invoice_quarantine").collect()
    assert [(Path(r["source_path"]).name, r["reason"]) for r in quarantined] == [("b-padded.pdf", "too_large")]
    assert "over the limit of 100000 bytes" in quarantined[0]["detail"]
    assert lake.read(spark, "invoice_ledger").count() == 2

    again = lake.run(spark, "again", cards, incoming=incoming, options=("--max-file-bytes", "100000"))
    assert (again["files_skipped_already_processed"], again["files_parsed"], again["quarantined"]) == (2, 0, 0)


@pytest.mark.integration
def test_unknown_card_is_resolved_by_the_run_after_the_card_arrives(spark, batch):
    late_card = batch.extra["late_card"]
    late = sorted(n for n, d in batch.extra["docs"].items() if d.member_number == str(late_card))
    assert late
    member_sk = batch.extra["sks"][batch.extra["members"][late_card]][0]
    for state, expected in (("first", (None, "unknown_card")), ("rerun", (None, "unknown_card")),
                            ("reissue", (member_sk, "resolved"))):
        for table in ("fact_invoice", "fact_invoice_line"):
            rows = batch.read(spark, table, state).where(F.col("invoice_number").isin(late)).collect()
            assert {(r["member_sk"], r["member_resolution"]) for r in rows} == {expected}, (state, table)
    assert batch.results["reissue"]["members_fixed_up"] == {"resolved": len(late)}
    assert batch.results["first"]["member_resolution"]["unknown_card"] == len(late)


@pytest.mark.integration
def test_result_file_is_the_returned_result(batch):
    for state, result in batch.results.items():
        assert json.loads((batch.root / f"result-{state}.json").read_text()) == result


# ---------------------------------------------------------------------------------------------- unit


@pytest.mark.unit
def test_parse_invoice_file_gives_the_seed_invoice_with_its_allocation():
    row = parse.parse_invoice_file(SEED_PDF.read_bytes())
    assert (row["status"], row["invoice_number"], row["discount_rate"], row["discount_amount"], row["tax_amount"]) == (
        "parsed", "HK-00001", Decimal("0.1"), Decimal("488.00"), None)
    assert [(line["discount_amount"], line["tax_amount"], line["net_amount"]) for line in row["lines"]] == [
        (Decimal("338.00"), None, Decimal("3042.00")), (Decimal("150.00"), None, Decimal("1350.00"))]
    # the seller's one address line ends in the country, "153 Harvest Lane HONG KONG"
    assert (row["seller_country_code"], row["bill_to_country_code"], row["ship_to_country_code"]) == ("HK", "HK", "HK")
    assert (row["reporting_currency_code"], row["exchange_rate_date"], row["total_reporting"]) == (
        "USD", dt.date(2023, 12, 29), Decimal("562.27"))
    assert parse.parse_invoice_file(SEED_PDF.read_bytes(), "EUR")["total_reporting"] == Decimal("508.84")


@pytest.mark.unit
@pytest.mark.parametrize(("address", "country"), [
    (("153 Harvest Lane HONG KONG",), "HK"),  # the seed's seller: one line, the country at its end
    (("1 Market Street", "UNITED STATES"), "US"),
    (("Port Moresby PAPUA NEW GUINEA",), "PG"),  # the longest name first, not "NEW GUINEA"
    (("12 Peachtree Street, Atlanta GEORGIA",), None),  # one word: a US state as much as a country
    (("99 Ocean Road NEW JERSEY",), None),
    (("5 Main St HK",), None),  # a code ending a line is not a country
    ((), None),
])
def test_the_country_of_an_address_is_named_or_absent_never_guessed(address, country):
    assert parse._country(Party("A Seller Ltd.", address)) == country


@pytest.mark.unit
def test_parse_invoice_file_quarantines_with_stable_codes():
    assert parse.parse_invoice_file(b"hello")["reason"] == "not_pdf"
    unbalanced = parse.parse_invoice_file(render_invoice_pdf(with_wrong_number(DOC_A, "total")))
    assert (unbalanced["status"], unbalanced["reason"], unbalanced["invoice_number"]) == (
        "quarantined", "total_mismatch", "HK-00002")
    assert unbalanced["detail"] == "; ".join(check_arithmetic(with_wrong_number(DOC_A, "total")))
    old = dataclasses.replace(DOC_A, invoice_date=dt.date(1999, 12, 31))
    assert parse.parse_invoice_file(render_invoice_pdf(old))["reason"] == "date_out_of_range"
    redacted = parse.redact("""seller: 'Chris Wong' and "O'Brien" on one line""")
    assert redacted == "seller: '…' and '…' on one line"


@pytest.mark.unit
def test_derived_amounts_too_large_for_their_column_quarantine_the_file_not_the_run(monkeypatch):
    """Every printed amount fits DECIMAL(18,2), but the shipping charge split over two lines that nearly
    cancel out makes a net amount that does not: the file is quarantined; in the run's Arrow batch it would
    have failed every file of the run, and every run after it (the ledger is written last)."""
    big, credit = Decimal("9000000000000000.00"), Decimal("-8990000000000000.00")
    doc = dataclasses.replace(DOC_A, lines=(
        InvoiceLine(1, "BOND", Decimal("1"), big, big), InvoiceLine(2, "BOND RETURNED", Decimal("1"), credit, credit)),
        subtotal=big + credit, adjustments=(Adjustment("shipping", None, big),), total=big * 2 + credit,
        amount_paid=None, balance_due=big * 2 + credit)
    assert check_arithmetic(doc) == []
    monkeypatch.setattr(parse, "parse_invoice_pdf", lambda data: doc)
    row = parse.parse_invoice_file(b"%PDF-")
    assert (row["status"], row["reason"]) == ("quarantined", "amount_out_of_range"), row
    batch = pa.RecordBatch.from_pylist([{"source_path": "p", "source_sha256": "0" * 64, "content": b"%PDF-"}])
    assert [r["reason"] for b in parse.parse_arrow_batches(iter([batch]), 60) for r in b.to_pylist()] == [
        "amount_out_of_range"]


@pytest.mark.unit
def test_invoice_terms_key_every_pair_apart_and_neither_too(spark):
    pairs = [("Visa", None), (None, "Visa"), (None, None), ("Net 30", "Due in 30 days"), ("Net 30", "Due in 30 days"),
             ("Net 30", "Due in 30 days "), ("", None), ("30 días", "Zahlbar «sofort» – 5 € / Stück\nline 2")]
    headers = spark.createDataFrame(pairs, "payment_terms STRING, terms STRING").select(
        "*", terms_hash().alias("terms_hash"))
    rows = invoice_terms_rows(headers).collect()
    assert sorted((r["payment_terms"] or "~", r["terms"] or "~") for r in rows) == sorted(
        (p or "~", t or "~") for p, t in set(pairs)), "one row per pair as printed; nothing merged, nothing lost"
    # the documented bytes, whatever the session's JSON setting
    documented = {(r["payment_terms"], r["terms"]): hashlib.sha256(json.dumps(
        {"payment_terms": r["payment_terms"], "terms": r["terms"]}, separators=(",", ":"),
        ensure_ascii=False).encode()).hexdigest() for r in rows}
    assert {(r["payment_terms"], r["terms"]): r["terms_hash"] for r in rows} == documented
    spark.conf.set("spark.sql.jsonGenerator.ignoreNullFields", "false")
    try:
        assert {(r["payment_terms"], r["terms"]): r["terms_hash"] for r in headers.collect()} == documented
    finally:
        spark.conf.unset("spark.sql.jsonGenerator.ignoreNullFields")


@pytest.mark.unit
def test_seller_and_party_keys_do_not_change_with_the_sessions_json_setting(spark):
    headers = spark.createDataFrame(
        [("Shop", None), ("Shop", ["1 Main St", "HONG KONG"])], "seller_name STRING, seller_address ARRAY<STRING>")
    # seller_hash and party_hash hash the same text (dimensions._party_key_text); the seller's needs no key
    keyed = headers.select(seller_hash().alias("h"))
    default = [r["h"] for r in keyed.collect()]
    spark.conf.set("spark.sql.jsonGenerator.ignoreNullFields", "false")
    try:
        assert [r["h"] for r in keyed.collect()] == default
    finally:
        spark.conf.unset("spark.sql.jsonGenerator.ignoreNullFields")
    assert len(set(default)) == 2


@pytest.mark.unit
def test_resolve_members_rules(spark):
    def t(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)

    versions = spark.createDataFrame([
        ("m-history", 1, t("2020-01-01 00:00:00"), t("2024-01-01 00:00:00")),
        ("m-history", 2, t("2024-01-01 00:00:00"), t("2024-03-01 00:00:00")),  # absent from the source after this
        ("m-history", 3, t("2024-06-01 00:00:00"), t(OPEN_END)),
        ("m-late", 4, t("2025-01-01 10:00:00"), t(OPEN_END)),
        ("m-other", 5, t("2020-01-01 00:00:00"), t(OPEN_END)),
    ], "member_id string, member_sk bigint, valid_from timestamp, valid_to timestamp")
    cards = spark.createDataFrame([("1", "m-history"), ("2", "m-late"), ("3", "m-gone"),
                                   ("4", "m-history"), ("4", "m-other"), ("0012", "m-other")],
                                  "card_number string, member_id string")
    invoices = spark.createDataFrame([
        ("on-the-boundary", dt.date(2024, 1, 1), "1"), ("first-version", dt.date(2023, 12, 31), "1"),
        ("in-a-gap", dt.date(2024, 4, 1), "1"), ("before-history", dt.date(2024, 5, 1), "2"),
        ("no-card", dt.date(2024, 5, 1), None), ("unknown", dt.date(2024, 5, 1), "9"),
        ("not-loaded", dt.date(2024, 5, 1), "3"), ("ambiguous", dt.date(2024, 5, 1), "4"),
        # card numbers are text: "12" is not the card "0012", nor "01" the card "1"
        ("leading-zeros-differ", dt.date(2024, 5, 1), "12"), ("zero-added", dt.date(2024, 5, 1), "01"),
    ], "invoice_number string, invoice_date date, member_card_number string")
    got = {r["invoice_number"]: (r["member_sk"], r["member_resolution"])
           for r in members.resolve_members(invoices, cards, versions).collect()}
    assert got == {
        "on-the-boundary": (2, "resolved"), "first-version": (1, "resolved"),
        "in-a-gap": (2, "resolved_nearest_version"),  # the latest version that began before the date
        "before-history": (4, "resolved_nearest_version"),  # the earliest
        "no-card": (None, "no_member_number"), "unknown": (None, "unknown_card"),
        "not-loaded": (None, "member_not_loaded"), "ambiguous": (None, "ambiguous_card"),
        "leading-zeros-differ": (None, "unknown_card"), "zero-added": (None, "unknown_card"),
    }


@pytest.mark.unit
def test_member_cards_read_as_text_from_bigint_or_text(spark, tmp_path):
    write_cards(tmp_path / "text", {42: M1}, as_text=True)
    pq.write_table(pa.table({"card_number": [" 0043 ", "x44", "\t45\u00a0"], "member_id": [M2.upper(), M2, M2]}),
                   tmp_path / "text" / "part-00001.parquet")
    cards = members.read_member_cards(spark, str(tmp_path / "text"))
    assert sorted(tuple(r) for r in cards.collect()) == [("0043", M2), ("42", M1), ("45", M2), ("x44", M2)]
    pq.write_table(pa.table({"card_number": [11134891.0], "member_id": [M1]}), tmp_path / "double.parquet")
    with pytest.raises(ValueError, match="card_number is double"):  # 1.1134891E7 would match no card
        members.read_member_cards(spark, str(tmp_path / "double.parquet"))
    write_cards(tmp_path / "bigint", {42: M1})
    assert [tuple(r) for r in members.read_member_cards(spark, str(tmp_path / "bigint")).collect()] == [("42", M1)]
    pq.write_table(pa.table({"card": [1]}), tmp_path / "wrong.parquet")
    with pytest.raises(ValueError, match="lack"):
        members.read_member_cards(spark, str(tmp_path / "wrong.parquet"))


@pytest.mark.unit
def test_member_cards_from_a_batch_manifest_read_exactly_its_files(spark, tmp_path):
    batch_dir = tmp_path / "member_card" / "extract_date=2026-11-26"
    listed = write_cards(batch_dir / "attempt=b", {42: M1}) / "part-00000.parquet"
    write_cards(batch_dir / "attempt=a", {42: M2, 43: M2})  # a failed attempt's files, beside the published one
    schema = pq.read_schema(listed)
    content = listed.read_bytes()
    manifest = {
        "manifest_version": 1, "table": "member_card", "batch_id": "extract_date=2026-11-26", "run_id": "test",
        "mode": "snapshot", "source_query": "SELECT ... FROM member_card",
        "watermark": {"column": None, "low": None, "high": None}, "row_count": 1,
        "schema": schema_json(schema), "schema_hash": schema_hash(schema),
        "files": [{"path": str(listed), "rows": 1, "bytes": len(content),
                   "sha256": hashlib.sha256(content).hexdigest()}],
        "created_at": "2026-11-26T19:00:00+00:00", "extracted_at": "2026-11-26T19:00:00+00:00",
    }
    (batch_dir / "_manifest.json").write_text(json.dumps(manifest))
    cards = members.read_member_cards(spark, str(batch_dir / "_manifest.json"))
    assert [tuple(r) for r in cards.collect()] == [("42", M1)]
    overstated = manifest | {"row_count": 2, "files": [manifest["files"][0] | {"rows": 2}]}
    (batch_dir / "_manifest.json").write_text(json.dumps(overstated))
    with pytest.raises(ValueError, match="read 1 rows, manifest says 2"):
        members.read_member_cards(spark, str(batch_dir / "_manifest.json"))
    altered = manifest | {"files": [manifest["files"][0] | {"sha256": hashlib.sha256(b"other bytes").hexdigest()}]}
    (batch_dir / "_manifest.json").write_text(json.dumps(altered))
    with pytest.raises(ValueError, match="is not what was extracted: .* has SHA-256"):
        members.read_member_cards(spark, str(batch_dir / "_manifest.json"))
    (batch_dir / "_manifest.json").write_text(json.dumps(manifest | {"table": "member"}))
    with pytest.raises(ValueError, match="not member_card"):
        members.read_member_cards(spark, str(batch_dir / "_manifest.json"))


@pytest.mark.unit
def test_member_cards_key_members_as_the_member_job_does(spark, tmp_path):
    """The invoice load once trimmed spaces only (Spark's trim()), the member job every white space: a card
    whose member_id came padded with a tab or a no-break space named no member of dim_member. The member
    job's rule is the right one (it made the keys dim_member holds), so the cards use it too
    (lakehouse_jobs.keys.member_key)."""
    pq.write_table(pa.table({"card_number": [1, 2, 3], "member_id": [f"\t{M1}", f"{M2.upper()}\u00a0", " \u3000 "]}),
                   tmp_path / "cards.parquet")
    cards = members.read_member_cards(spark, str(tmp_path / "cards.parquet"))
    assert sorted(tuple(r) for r in cards.collect()) == [("1", M1), ("2", M2)]
