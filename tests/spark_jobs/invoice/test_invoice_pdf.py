"""The invoice PDF parser (lakehouse_jobs.invoice.text_layer and .pdf): the brief's invoice field by field,
1,000 generated invoices round-tripped, wrapped descriptions and multi-page invoices, and a stable reason for
every bad input."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import time
from collections import Counter
from decimal import Decimal

import pypdfium2 as pdfium
import pytest

from dev.invoice_pdfs import (
    LAYOUTS,
    bad_inputs,
    format_date,
    format_money,
    generate_invoice,
    generate_invoices,
    render_invoice_pdf,
)
from lakehouse_jobs.invoice.document import (
    Adjustment,
    InvoiceDocument,
    InvoiceLine,
    Party,
    check_arithmetic,
    round_money,
)
from lakehouse_jobs.invoice.pdf import parse_invoice_pdf
from lakehouse_jobs.invoice.printed_values import parse_date, parse_money
from lakehouse_jobs.invoice.text_layer import REASONS, InvoiceParseError, extract_pages, page_lines
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

SEED_PDF = REPO_ROOT / "tests" / "data" / "invoice.pdf"
MEMBERS = [11134891, 11134892, 20000001, 31415926]

# /work/shared/seed/invoice.pdf, read off the page by eye (tests/data/invoice.pdf is a copy)
GOLDEN = InvoiceDocument(
    invoice_number="HK-00001",
    invoice_date=dt.date(2024, 1, 1),
    currency="HKD",
    lines=(
        InvoiceLine(1, "LEATHER SLEEVE CLASSIC JACKET", Decimal("1"), Decimal("3380.00"), Decimal("3380.00")),
        InvoiceLine(2, "CREWNECK COTTON T-SHIRT", Decimal("2"), Decimal("750.00"), Decimal("1500.00")),
    ),
    subtotal=Decimal("4880.00"),
    total=Decimal("4392.00"),
    balance_due=Decimal("0.00"),
    adjustments=(Adjustment("discount", Decimal("0.10"), Decimal("488.00")),),
    amount_paid=Decimal("4392.00"),
    due_date=None,
    payment_terms="Visa",
    payment_method="Visa",
    member_number="11134891",
    po_number="PO16700001",
    seller=Party("East Star Retail Ltd.", ("153 Harvest Lane HONG KONG",)),
    bill_to=Party("Chris Wong", ("12 Court Square", "HONG KONG")),
    ship_to=Party("Chris Wong", ("4912 Pineview Place", "HONG KONG")),
    terms="Payment is due within 15 days\nPlease make checks payable to: East Star Retail Ltd.",
    notes=None,
)


def assert_same(got: InvoiceDocument, expected: InvoiceDocument) -> None:
    """Field by field, so a failure names the field; then whole (Decimal scale included: 4392.00, not 4392)."""
    for field in dataclasses.fields(InvoiceDocument):
        assert getattr(got, field.name) == getattr(expected, field.name), f"{expected.invoice_number}: {field.name}"
    assert got == expected
    money = [got.subtotal, got.total, got.balance_due, *(a.amount for a in got.adjustments)]
    money += [v for line in got.lines for v in (line.unit_price, line.amount)]
    assert all(isinstance(v, Decimal) and v.as_tuple().exponent == -2 for v in money)


def simple_invoice(lines: list[tuple[str, str, str]], currency: str = "HKD", **fields) -> InvoiceDocument:
    """An invoice of the given (description, quantity, unit price) lines, no adjustments, nothing paid."""
    items = tuple(InvoiceLine(n, d, Decimal(q), Decimal(p), round_money(Decimal(q) * Decimal(p), currency))
                  for n, (d, q, p) in enumerate(lines, 1))
    subtotal = sum((i.amount for i in items), Decimal("0.00"))
    doc = InvoiceDocument(invoice_number="HK-90001", invoice_date=dt.date(2024, 2, 29), currency=currency,
                          lines=items, subtotal=subtotal, total=subtotal, balance_due=subtotal,
                          seller=Party("East Star Retail Ltd.", ("153 Harvest Lane HONG KONG",)),
                          bill_to=Party("Chris Wong", ("12 Court Square", "HONG KONG")), **fields)
    assert check_arithmetic(doc) == []
    return doc


# ------------------------------------------------------------------------------------------ the brief's invoice


def test_the_briefs_invoice_parses_to_every_printed_value():
    got = parse_invoice_pdf(SEED_PDF.read_bytes())

    assert_same(got, GOLDEN)
    assert check_arithmetic(got) == []


def test_bytes_like_input_is_accepted_and_other_types_are_refused():
    assert parse_invoice_pdf(bytearray(SEED_PDF.read_bytes())) == GOLDEN
    with pytest.raises(TypeError):
        parse_invoice_pdf(str(SEED_PDF))


# ------------------------------------------------------------------------------------------ round trip


def test_a_thousand_generated_invoices_parse_back_to_what_was_printed():
    """In every label variant of the layout family (invoice_pdfs.LAYOUTS, in turn): the seed's, the
    generator's defaults, a VAT invoice, an hourly services one."""
    start = time.perf_counter()
    docs = generate_invoices(1000, seed=2024, member_numbers=MEMBERS)
    pages, mismatches = Counter(), []
    for i, doc in enumerate(docs):
        layout = list(LAYOUTS)[i % len(LAYOUTS)]
        data = render_invoice_pdf(doc, layout=layout)
        got = parse_invoice_pdf(data)
        if got != doc:
            mismatches.append((layout, doc.invoice_number))
        pages[(layout, min(len(pdfium.PdfDocument(data)), 2))] += 1
    elapsed = time.perf_counter() - start

    assert mismatches == [], f"{len(mismatches)} invoices parsed differently, first {mismatches[:5]}"
    # the set covers what the parser must handle (else the round trip proves less than it seems)
    assert all(pages[(layout, 2)] > 10 for layout in LAYOUTS), pages  # each variant multi-page too
    assert {d.currency for d in docs} == {"HKD", "USD", "EUR", "GBP", "SGD", "JPY"}
    assert sum(1 for d in docs for line in d.lines if len(line.description) > 60) > 100  # wrapped
    kinds = Counter((a.kind, a.rate is not None, a.amount == 0) for d in docs for a in d.adjustments)
    assert all(kinds[(k, rated, False)] > 10 for k in ("discount", "tax", "shipping") for rated in (True, False))
    assert all(kinds[(k, False, True)] > 5 for k in ("discount", "tax", "shipping"))
    assert Counter(d.amount_paid is None for d in docs)[True] > 50
    assert len({d.balance_due == 0 for d in docs}) == 2
    assert any(d.member_number is None for d in docs) and any(d.ship_to is None for d in docs)
    assert len({d.invoice_number for d in docs}) == 1000
    print(f"1000 invoices generated, rendered and parsed in {elapsed:.1f} s ({dict(pages)} by layout and pages)")


def test_labels_are_read_by_family_in_any_case_and_an_unknown_one_is_refused():
    doc = simple_invoice([("CAP", "2", "99.90"), ("BELT", "3", "10.00")], po_number="PO123")
    vat = dataclasses.replace(doc, adjustments=(Adjustment("tax", Decimal("0.2"), Decimal("45.96")),),
                              total=Decimal("275.76"), balance_due=Decimal("275.76"))
    assert check_arithmetic(vat) == []
    assert parse_invoice_pdf(render_invoice_pdf(vat, layout="vat")) == vat  # "VAT (20%):", "Qty", "Price"
    shouted = {"Subtotal:": "SUBTOTAL:", "Tax (20%):": "GST (20%):", "Total:": "Grand total:", "Item": "ITEM"}
    assert parse_invoice_pdf(render_invoice_pdf(vat, alter=shouted)) == vat
    # labels outside the families: the first one that does not fit is named
    for alter, quoted in (({"Subtotal:": "Subtotal excl. fees:"}, "Subtotal excl. fees:"),
                          ({"Quantity": "Pieces"}, "no item table"), ({"Tax (20%):": "Levy (20%):"}, "Levy (20%):"),
                          ({"PO Number:": "Reference:"}, "Reference:")):
        with pytest.raises(InvoiceParseError) as e:
            parse_invoice_pdf(render_invoice_pdf(vat, alter=alter))
        assert e.value.reason == "layout_unrecognised" and quoted in e.value.detail, (alter, e.value.detail)


# ------------------------------------------------------------------------------------------ shapes


def test_a_description_wrapped_onto_a_second_line_is_one_item():
    long = "WATERPROOF QUILTED MERINO JACKET - SEASON 2024 COLLECTION WITH ENGRAVED INITIALS GIFT WRAPPED"
    doc = simple_invoice([("PLAIN CAP", "1", "99.90"), (long, "2", "1250.50"), ("BELT", "3", "10.00")])
    data = render_invoice_pdf(doc)

    texts = [[c.text for c in line] for line in page_lines(extract_pages(data)[0])]
    first = next(i for i, t in enumerate(texts) if t[0].startswith("WATERPROOF"))
    assert len(texts[first]) == 4 and len(texts[first + 1]) == 1  # printed on two lines, numbers on the first
    assert f"{texts[first][0]} {texts[first + 1][0]}" == long
    assert_same(parse_invoice_pdf(data), doc)


def test_an_invoice_over_three_pages_keeps_every_line_in_order():
    lines = [(f"ITEM {n:02d} " + ("CASHMERE CREWNECK SWEATER - COLOUR NAVY BLUE SIZE XL LIMITED EDITION GIFT"
                                  if n % 3 == 0 else "COTTON T-SHIRT"), str(n % 4 + 1), f"{n * 10}.50")
             for n in range(1, 41)]
    doc = simple_invoice(lines, notes="Thank you for shopping with us!", terms="Payment is due within 15 days")
    data = render_invoice_pdf(doc)

    pages = extract_pages(data)
    assert len(pages) == 3
    assert [line[0].text for line in page_lines(pages[1])][0] == "# HK-90001 (continued)"
    assert [line[-1].text for line in page_lines(pages[2])][-1] == "Page 3 of 3"
    assert_same(parse_invoice_pdf(data), doc)


def test_zero_decimal_currency_amounts_are_whole_yen():
    rng_seed = next(s for s in range(500) if generate_invoice(s, MEMBERS).currency == "JPY")
    doc = generate_invoice(rng_seed, MEMBERS)
    data = render_invoice_pdf(doc)

    assert_same(parse_invoice_pdf(data), doc)
    assert all(line.amount % 1 == 0 for line in doc.lines)
    assert parse_money("JP¥3,380") == ("JPY", Decimal("3380.00"))
    with pytest.raises(InvoiceParseError) as e:
        parse_money("JP¥3,380.00")  # yen have no cents
    assert e.value.reason == "unparseable_number"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("HK$3,380.00", ("HKD", Decimal("3380.00"))), ("US$0.00", ("USD", Decimal("0.00"))),
     ("€1,234,567.89", ("EUR", Decimal("1234567.89"))), ("-£5.10", ("GBP", Decimal("-5.10"))),
     ("S$12.30", ("SGD", Decimal("12.30"))), ("HK$1234.50", ("HKD", Decimal("1234.50")))],
)
def test_money(text, expected):
    assert parse_money(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [("$3.00", "unknown_currency"), ("¥300", "unknown_currency"), ("HK$3,380.0", "unparseable_number"),
     ("HK$3,38.00", "unparseable_number"), ("HK$", "unparseable_number"), ("HK$1.2.3", "unparseable_number"),
     ("HK$3 380.00", "unparseable_number")],
)
def test_money_not_written_as_the_layout_writes_it_is_refused(text, reason):
    with pytest.raises(InvoiceParseError) as e:
        parse_money(text)
    assert e.value.reason == reason


def test_dates():
    assert parse_date("Jan 1, 2024") == dt.date(2024, 1, 1)
    assert parse_date("September 30, 2023") == dt.date(2023, 9, 30)
    assert parse_date("2024-02-29") == dt.date(2024, 2, 29)
    for text in ("01/02/2024", "Feb 30, 2024", "Foo 1, 2024", "2024-13-01", "1 Jan 2024"):
        with pytest.raises(InvoiceParseError) as e:
            parse_date(text)
        assert e.value.reason == "unparseable_date"


# ------------------------------------------------------------------------------------------ bad inputs


@pytest.fixture(scope="module")
def doc() -> InvoiceDocument:
    return generate_invoices(1, seed=11, member_numbers=MEMBERS)[0]


def reason_of(data: bytes, **kwargs) -> str:
    with pytest.raises(InvoiceParseError) as e:
        parse_invoice_pdf(data, **kwargs)
    assert e.value.reason in REASONS and str(e.value).startswith(e.value.reason)
    return e.value.reason


@pytest.mark.parametrize("kind", ["truncated", "encrypted", "no_text_layer", "not_pdf"])
def test_each_unreadable_file_has_its_reason(doc, kind):
    assert reason_of(bad_inputs(doc)[kind]) == kind


def test_bytes_after_the_end_marker_do_not_make_a_file_unreadable(doc):
    """Producers and transfer tools pad after %%EOF (zeros, blanks, a signature block); PDFium opens such a
    file, so it is read as any other."""
    good = render_invoice_pdf(doc)
    for padding in (b"\0" * 4096, b" \r\n" * 2000, b"%% trailing comment\n" * 300):
        assert parse_invoice_pdf(good + padding) == parse_invoice_pdf(good)
    # cut inside the padding: the file is whole, so it is still read
    assert parse_invoice_pdf((good + b"\0" * 4096)[:-100]) == parse_invoice_pdf(good)


def test_an_invoice_that_does_not_add_up_parses_as_printed_and_fails_the_checks(doc):
    files = bad_inputs(doc)
    for what, code in (("line_amount", "line_amount_mismatch:1"), ("subtotal", "subtotal_mismatch"),
                       ("total", "total_mismatch"), ("amount_paid", "balance_mismatch"),
                       ("balance_due", "balance_mismatch")):
        got = parse_invoice_pdf(files[f"unbalanced_{what}"])
        assert code in check_arithmetic(got), what


def test_a_corrupt_pdf_a_long_one_and_a_missing_page(doc):
    assert reason_of(b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n") == "corrupt_pdf"
    many = simple_invoice([(f"ITEM {n}", "1", "1.00") for n in range(1, 40)])
    assert reason_of(render_invoice_pdf(many), max_pages=1) == "too_many_pages"
    pdf = pdfium.PdfDocument(render_invoice_pdf(many))
    pdf.del_page(1)
    out = io.BytesIO()
    pdf.save(out)
    assert reason_of(out.getvalue()) == "page_sequence"  # "Page 1 of 2" in a one-page file


def test_printed_values_the_parser_cannot_be_sure_of_are_refused(doc):
    date = format_date(doc.invoice_date)
    total = format_money(doc.total, doc.currency)
    other = "HK$" if doc.currency != "HKD" else "US$"
    cases = {
        "unparseable_date": {date: "01/02/2024"},
        "required_field_missing": {"Date:": None, date: None},
        "unknown_currency": {total: "$" + total.lstrip("-").split("$")[-1].lstrip("€£¥")},
        "unparseable_number": {total: total + "0"},
        "mixed_currency": {total: other + f"{doc.total:,.2f}"},
        "layout_unrecognised": {"Subtotal:": "Subtotal excl. fees:"},
        "duplicate_field": {"Total:": "Subtotal:"},
    }
    for reason, alter in cases.items():
        assert reason_of(render_invoice_pdf(doc, alter=alter)) == reason, alter


def test_an_unknown_header_label_or_stray_text_is_refused_not_dropped():
    doc = simple_invoice([("CAP", "2", "99.90"), ("BELT", "3", "10.00")], po_number="PO123")
    assert reason_of(render_invoice_pdf(doc, alter={"PO Number:": "Reference:"})) == "layout_unrecognised"
    # an item row missing its unit price must not become an item with a guessed price
    assert reason_of(render_invoice_pdf(doc, alter={"HK$99.90": None})) == "layout_unrecognised"
    # a description with no item above it to continue
    alter = {"2": None, "HK$99.90": None, "HK$199.80": None}
    assert reason_of(render_invoice_pdf(doc, alter=alter)) == "layout_unrecognised"
    # a row with a description and no numbers, at a row's distance below the item above: a free gift, not the
    # continuation of a wrapped description (once read as the item "CAP BELT", with the arithmetic intact)
    gift = {"3": None, "HK$10.00": None, "HK$30.00": None, "HK$229.80": "HK$199.80"}
    assert reason_of(render_invoice_pdf(doc, alter=gift)) == "layout_unrecognised"
    # text in the margin beside the totals
    assert reason_of(render_invoice_pdf(doc, alter={"Total:": "Total: (incl. VAT)"})) == "layout_unrecognised"


def test_absent_optional_fields_are_none_not_zero():
    doc = simple_invoice([("CAP", "1", "99.90")])
    got = parse_invoice_pdf(render_invoice_pdf(doc))

    assert got.amount_paid is None and got.adjustments == () and got.member_number is None
    assert got.po_number is None and got.ship_to is None and got.terms is None and got.notes is None
    zero = dataclasses.replace(doc, adjustments=(Adjustment("discount", None, Decimal("0.00")),),
                               amount_paid=Decimal("0.00"))
    got = parse_invoice_pdf(render_invoice_pdf(zero))
    assert got.adjustments == (Adjustment("discount", None, Decimal("0.00")),)
    assert got.amount_paid == Decimal("0.00")


def test_an_unlabelled_bill_to_block_is_refused_not_read_as_the_sellers_address():
    """Without "Bill To:", the customer's name and address sit below the seller's block: read as the seller
    they would be stored in plaintext in dim_seller. The gap between the blocks gives them away."""
    doc = dataclasses.replace(generate_invoice(11, [11134891]), ship_to=None)
    assert doc.bill_to is not None
    assert parse_invoice_pdf(render_invoice_pdf(doc)).bill_to == doc.bill_to  # the labelled layout reads
    with pytest.raises(InvoiceParseError) as error:
        parse_invoice_pdf(render_invoice_pdf(doc, alter={"Bill To:": None}))
    assert error.value.reason == "layout_unrecognised"
    # a seller of one line over a customer of one line: one gap, too wide for a block's line spacing
    names_only = {line: None for line in doc.seller.address + doc.bill_to.address} | {"Bill To:": None}
    with pytest.raises(InvoiceParseError) as error:
        parse_invoice_pdf(render_invoice_pdf(doc, alter=names_only))
    assert error.value.reason == "layout_unrecognised"


@pytest.mark.parametrize("text", ["HK$3,380.00\n", "Jan 1, 2024\n", "2024-01-01\n"])
def test_a_value_with_a_trailing_newline_is_refused(text):
    # a pattern's `$` also matches before a final newline: the printed-value parsers take the cell whole
    with pytest.raises(InvoiceParseError):
        (parse_money if text.startswith("HK$") else parse_date)(text)


def test_a_due_date_derived_from_the_terms_is_kept_only_inside_dim_date(doc):
    from lakehouse_jobs.invoice.parse import parse_invoice_file

    def parsed(invoice_date: dt.date) -> dict:
        row = parse_invoice_file(render_invoice_pdf(dataclasses.replace(
            doc, invoice_date=invoice_date, due_date=None, payment_terms="Net 30", terms=None)))
        assert row["status"] == "parsed", row
        return row

    assert parsed(dt.date(2024, 1, 1))["due_date"] == dt.date(2024, 1, 31)
    # past dim_date's last day: the invoice loads without a due date instead of being quarantined
    assert parsed(dt.date(2035, 12, 15))["due_date"] is None
