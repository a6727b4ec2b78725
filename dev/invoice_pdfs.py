"""Synthetic invoice PDFs in the layout of the brief's invoice.pdf, with the values each one must parse to.

    python -m dev.invoice_pdfs --count 1000 --seed 7 --out /tmp/invoices [--member-numbers-file members.txt]
                               [--bad-inputs]

``generate_invoice`` draws an ``InvoiceDocument`` (the expected values), ``render_invoice_pdf`` prints it in
the seed's layout (reportlab, letter size, Bitstream Vera embedded; positions measured on the brief's
invoice, tests/data/invoice.pdf), ``write_batch`` writes ``<invoice_number>.pdf`` files. Everything is
deterministic for a seed: the same documents and byte-identical PDFs (reportlab's ``invariant`` mode fixes
dates and ids).

What varies, so the parser meets every shape the layout allows:

- 1 to 40 lines (a quarter of invoices over 12), so some run onto a second or third page: those pages
  start with "# <number> (continued)", repeat the table header, and every page has "Page i of n";
  the totals and the terms move to a new page when they do not fit;
- descriptions of 3 to about 15 words, a quarter of them long enough to wrap onto a second line (a few
  onto a third);
- quantities mostly whole, some fractional (2.5); line amount = quantity x unit price rounded half up;
- discount, tax and shipping each absent, zero, a rate ("Tax (8.25%)") or a fixed amount; amount paid
  absent (no row: None), zero, partial or full, so balances vary;
- currencies HKD (half), USD, EUR, GBP, SGD and JPY. JPY is included honestly: its minor unit is the
  yen (ISO 4217 exponent 0), so prices, rounding and allocation are in whole yen, printed "JP¥3,380";
  amounts keep the 2-place Decimal scale (Decimal("3380.00")) like every other currency;
- dates over two years (2023-01-01 to 2024-12-31), due dates, payment terms or methods, PO numbers, ship-to
  blocks, notes and terms present or absent; member numbers drawn from the caller's list (the caller
  takes them from its member mapping table); 1 invoice in 10 has none (a walk-in customer).

Invoice numbers are "<region>-<sequence>", unique within a batch. Names and streets come from Faker.

Bad inputs for tests (``bad_inputs``): a truncated PDF, an encrypted one (reportlab's standard
encryption with a user password), a scan (each page rasterised to an image by PDFium, no text layer), a
file that is not a PDF, and invoices whose numbers do not add up (``with_wrong_number``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import io
import math
import random
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from faker import Faker
from reportlab.lib.pdfencrypt import StandardEncryption
from reportlab.pdfbase.pdfmetrics import registerFont, stringWidth
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from lakehouse_jobs.invoice.document import (
    ADJUSTMENT_SIGNS,
    CENT,
    Adjustment,
    InvoiceDocument,
    InvoiceLine,
    Party,
    money_unit,
    rate_base,
    round_money,
)

# currency -> (printed prefix, invoice number prefix, country line, weight)
CURRENCIES = {
    "HKD": ("HK$", "HK", "HONG KONG", 10),
    "USD": ("US$", "US", "UNITED STATES", 2),
    "EUR": ("€", "EU", "GERMANY", 2),
    "GBP": ("£", "GB", "UNITED KINGDOM", 2),
    "SGD": ("S$", "SG", "SINGAPORE", 2),
    "JPY": ("JP¥", "JP", "JAPAN", 2),
}
PAYMENT_METHODS = ("Visa", "Mastercard", "American Express", "UnionPay", "Octopus", "Cash", "Alipay", "PayPal")
NET_TERMS = ("Net 15", "Net 30", "Due on receipt")
MATERIALS = ("LEATHER", "COTTON", "WOOL", "CASHMERE", "LINEN", "DENIM", "SILK", "MERINO", "CANVAS", "SUEDE")
STYLES = ("CLASSIC", "SLIM FIT", "CREWNECK", "OVERSIZED", "RELAXED", "PLEATED", "QUILTED", "WATERPROOF",
          "VINTAGE", "CROPPED", "DOUBLE-BREASTED", "SLEEVE")
PRODUCTS = ("JACKET", "T-SHIRT", "SHIRT", "TROUSERS", "SNEAKERS", "SCARF", "BELT", "HANDBAG", "BLAZER", "DRESS",
            "SKIRT", "HOODIE", "COAT", "SWEATER", "CHINOS", "LOAFERS", "CAP", "BACKPACK")
EXTRAS = ("SIZE M", "SIZE XL", "COLOUR NAVY BLUE", "COLOUR OFF-WHITE / STONE", "LIMITED EDITION", "GIFT WRAPPED",
          "WITH ENGRAVED INITIALS", "SEASON 2024 COLLECTION", "ALTERATION: SHORTEN HEM 2CM", "EXTENDED WARRANTY")
NOTES = ("Thank you for shopping with us!", "Goods sold are exchangeable within 14 days with receipt.",
         "Members earn 1 point per dollar spent.")

# layout, in points from the top-left corner (baselines), as measured on the seed invoice
PAGE_W, PAGE_H = 612.0, 792.0
BODY, TITLE, NUMBER, BALANCE, FOOTER = 9.0, 25.6, 11.0, 10.4, 7.5
LEFT, SHIP_X, LABEL_RIGHT, VALUE_RIGHT = 48.0, 182.2, 462.4, 567.5
ITEM_X, QTY_X, UNIT_RIGHT, AMOUNT_RIGHT = 44.2, 372.8, 492.2, 567.5
DESCRIPTION_WIDTH = 300.0      # wider descriptions wrap (quantity column at 372.8)
PARTY_WIDTH = 120.0            # bill-to lines must stay clear of the ship-to column
SELLER_WIDTH = 300.0           # seller lines must stay clear of the header labels
ROW_STEP, WRAP_STEP, KV_STEP, TOTAL_STEP, TEXT_STEP = 17.2, 12.0, 21.7, 21.75, 13.5
CONTENT_BOTTOM = 730.0         # nothing below this baseline but the footer
GREY, DARK, WHITE = (0.47, 0.47, 0.47), (0.2, 0.2, 0.2), (1.0, 1.0, 1.0)
# Bitstream Vera (shipped inside reportlab), embedded as the seed embeds its fonts: with the 14 standard
# fonts (not embedded) every reader substitutes its own metrics, and pdfminer gives "€" no width at all.
# At 9 pt its figures are as wide as the seed's Nimbus Sans at 9.75 pt.
FONT, BOLD = "Vera", "VeraBd"
registerFont(TTFont(FONT, "Vera.ttf"))
registerFont(TTFont(BOLD, "VeraBd.ttf"))


# ------------------------------------------------------------------------------------------ documents


def _wrap(text: str, width: float, font: str = FONT, size: float = BODY) -> list[str]:
    """Greedy word wrap at spaces; a single word never exceeds the widths used here."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and stringWidth(f"{lines[-1]} {word}", font, size) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def _money_amount(rng: random.Random, low: float, high: float, currency: str) -> Decimal:
    unit = money_unit(currency)
    value = Decimal(str(round(rng.uniform(low, high), 2)))
    if currency == "HKD":  # retail prices: whole dollars, or .50 / .90
        value = value.quantize(Decimal(1)) + rng.choice((Decimal(0), Decimal("0.5"), Decimal("0.9")))
    return value.quantize(unit, rounding=ROUND_HALF_UP).quantize(CENT)


def _description(rng: random.Random) -> str:
    words = [*rng.sample(STYLES, 2 if rng.random() < 0.3 else 1), rng.choice(MATERIALS), rng.choice(PRODUCTS)]
    if rng.random() < 0.25:  # long: wraps onto a second line (a few onto a third)
        words += ["-", *rng.sample(EXTRAS, rng.choice((2, 2, 3)))]
    return " ".join(words)


def _party(fake: Faker, rng: random.Random, country: str, width: float, *, company: bool = False) -> Party:
    name = fake.company() if company else fake.name()
    street = fake.street_address().upper() if rng.random() < 0.5 else fake.street_address()
    lines = [street]
    if rng.random() < 0.25:
        lines.append(fake.secondary_address())
    lines.append(country)
    if company and rng.random() < 0.6:  # the seed prints street and country on one line
        lines = [" ".join(lines)]
    wrapped = [part for line in lines for part in _wrap(line, width)]
    return Party(_wrap(name, width, BOLD)[0], tuple(wrapped))  # a name too wide for the column is cut


def generate_invoice(rng_or_seed: random.Random | int, member_numbers: list[int] | list[str], *, sequence: int = 1,
                     max_lines: int = 40, fake: Faker | None = None) -> InvoiceDocument:
    """One synthetic invoice: the values ``render_invoice_pdf`` prints and the parser must return.

    ``rng_or_seed``: a random.Random (advanced) or a seed; ``member_numbers``: the caller's members, one is
    drawn (none for 1 invoice in 10, or when the list is empty); ``sequence``: makes the invoice number
    ("HK-00042"), pass distinct values for distinct invoices; ``fake``: a Faker to reuse (it is seeded from
    ``rng`` here either way). The arithmetic always adds up (``check_arithmetic`` is empty).
    """
    rng = rng_or_seed if isinstance(rng_or_seed, random.Random) else random.Random(rng_or_seed)
    fake = fake or Faker("en_US")
    fake.seed_instance(rng.getrandbits(64))
    currency = rng.choices(list(CURRENCIES), weights=[c[3] for c in CURRENCIES.values()])[0]
    _, number_prefix, country, _ = CURRENCIES[currency]
    zero_decimal = money_unit(currency) == 1
    scale = 100 if zero_decimal else (6 if currency == "HKD" else 1)

    long_invoice = rng.random() < 0.25 and max_lines >= 13  # one in four runs onto a second page
    count = rng.randint(13, max_lines) if long_invoice else rng.randint(1, min(12, max_lines))
    lines = []
    for n in range(1, count + 1):
        # mostly small prices, some dear ones (the seed's jacket is HK$3,380.00) bought one to three at a time,
        # so amounts stay narrower than the gap between the Unit Price and Amount columns
        dear = rng.random() < 0.2
        quantity = Decimal(rng.choice((1, 1, 2, 3) if dear else (1, 1, 1, 2, 2, 3, 4, 5, 6, 10, 12, 24)))
        if rng.random() < 0.08:
            quantity = Decimal(rng.choice(("0.5", "1.5", "2.5", "2.25", "0.75")))
        unit_price = (_money_amount(rng, 150, 800, currency) if dear else
                      _money_amount(rng, 3, 150, currency)) * scale
        unit_price = unit_price.quantize(CENT)
        lines.append(InvoiceLine(n, _description(rng), quantity, unit_price, round_money(quantity * unit_price,
                                                                                         currency)))
    subtotal = sum((line.amount for line in lines), Decimal("0.00"))
    doc = InvoiceDocument(invoice_number=f"{number_prefix}-{sequence:05d}",
                          invoice_date=dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(731)),
                          currency=currency, lines=tuple(lines), subtotal=subtotal, total=subtotal,
                          balance_due=subtotal)
    adjustments: list[Adjustment] = []
    for kind, rates, share in (("discount", ("5", "10", "12.5", "15", "20", "25"), 0.3),
                               ("tax", ("5", "7", "8", "8.25", "9", "10", "20"), 0.1),
                               ("shipping", ("2", "5"), 0.02)):
        draw = rng.random()
        if draw < 0.45:
            continue
        if draw < 0.55:
            adjustments.append(Adjustment(kind, rng.choice((None, Decimal(0))), Decimal("0.00")))
            continue
        doc = dataclasses.replace(doc, adjustments=tuple(adjustments))
        if draw < 0.8:
            rate = Decimal(rng.choice(rates)) / 100
            adjustments.append(Adjustment(kind, rate, round_money(rate * rate_base(doc, Adjustment(kind, rate, CENT)),
                                                                  currency)))
        else:
            base = rate_base(doc, Adjustment(kind, None, CENT))
            amount = round_money(base * Decimal(str(rng.uniform(0.01, share))), currency)
            adjustments.append(Adjustment(kind, None, amount))
    total = subtotal + sum((ADJUSTMENT_SIGNS[a.kind] * a.amount for a in adjustments), Decimal("0.00"))
    draw = rng.random()
    paid = None if draw < 0.2 else Decimal("0.00") if draw < 0.4 else total if draw < 0.8 else \
        round_money(total * Decimal(rng.randint(10, 90)) / 100, currency)

    seller = _party(fake, rng, country, SELLER_WIDTH, company=True)
    bill_to = _party(fake, rng, country, PARTY_WIDTH)
    ship_to = None if rng.random() < 0.2 else bill_to if rng.random() < 0.3 else \
        Party(bill_to.name, _party(fake, rng, country, PARTY_WIDTH).address)
    due_days = rng.choice((7, 14, 15, 30))
    draw = rng.random()
    payment_terms, payment_method = ((rng.choice(PAYMENT_METHODS), None) if draw < 0.7 else
                                     (rng.choice(NET_TERMS), rng.choice(PAYMENT_METHODS)) if draw < 0.85 else
                                     (None, None))
    terms = None if rng.random() < 0.15 else f"Payment is due within {due_days} days" + (
        f"\nPlease make checks payable to: {seller.name}" if rng.random() < 0.5 else "")
    return dataclasses.replace(
        doc,
        adjustments=tuple(adjustments),
        total=total,
        amount_paid=paid,
        balance_due=total - (paid or 0),
        due_date=doc.invoice_date + dt.timedelta(days=due_days) if rng.random() < 0.3 else None,
        payment_terms=payment_terms,
        # the parser reads a method out of "Payment Terms:" (the seed's usage), so the expected value does too
        payment_method=payment_method or (payment_terms if payment_terms in PAYMENT_METHODS else None),
        member_number=str(rng.choice(member_numbers)) if member_numbers and rng.random() < 0.9 else None,
        po_number=f"PO{rng.randrange(10**8):08d}" if rng.random() < 0.7 else None,
        seller=seller,
        bill_to=bill_to,
        ship_to=ship_to,
        terms=terms,
        notes=rng.choice(NOTES) if rng.random() < 0.3 else None,
    )


def generate_invoices(n: int, seed: int, member_numbers: list[int], *, max_lines: int = 40) -> list[InvoiceDocument]:
    """``n`` invoices with unique numbers (sequence 1..n), deterministic for ``seed``."""
    rng = random.Random(seed)
    fake = Faker("en_US")
    return [generate_invoice(rng, member_numbers, sequence=i, max_lines=max_lines, fake=fake) for i in range(1, n + 1)]


# ------------------------------------------------------------------------------------------ rendering


def format_money(value: Decimal, currency: str) -> str:
    """"HK$3,380.00", "JP¥3,380", "-€5.00": the layout's money format."""
    prefix = CURRENCIES[currency][0]
    places = 0 if money_unit(currency) == 1 else 2
    return f"{'-' if value < 0 else ''}{prefix}{abs(value):,.{places}f}"


def format_date(value: dt.date) -> str:
    return f"{value:%b} {value.day}, {value.year}"


def format_rate(rate: Decimal) -> str:
    percent = (rate * 100).normalize()
    return f"{percent:f}"


# Label variants of the layout family (issue 24 item 1), each a map from the seed's label to the one printed
# instead; the parser's label families (lakehouse_jobs.invoice.labels) read them all. Everything else (geometry,
# money and date formats) is the seed's.
LAYOUTS: dict[str, dict[str, str]] = {
    "seed": {},
    # invoice-generator.com's default column labels, which the seed renamed
    "generator_default": {"Unit Price": "Rate"},
    # a VAT invoice, as UK and EU sellers title and label them
    "vat": {"INVOICE": "TAX INVOICE", "Date:": "Invoice Date:", "Member No.:": "Member ID:", "PO Number:": "PO #:",
            "Bill To:": "Invoice To:", "Ship To:": "Deliver To:", "Item": "Description", "Quantity": "Qty",
            "Unit Price": "Price", "Amount": "Total", "Tax": "VAT", "Terms:": "Terms & Conditions:"},
    # services billed by the hour
    "services": {"Item": "Description", "Quantity": "Hours", "Unit Price": "Rate", "Subtotal:": "Sub Total:",
                 "Shipping": "Delivery", "Total:": "Grand Total:", "Amount Paid:": "Paid:",
                 "Balance Due:": "Amount Due:", "Notes:": "Comments:"},
}


def _adjustment_label(adj: Adjustment, labels: Mapping[str, str]) -> str:
    label = labels.get(adj.kind.capitalize(), adj.kind.capitalize())
    return f"{label} ({format_rate(adj.rate)}%):" if adj.rate is not None else f"{label}:"


class _Pages:
    """Drawing operations per page, laid out first so that "Page i of n" knows n."""

    def __init__(self) -> None:
        self.pages: list[list[tuple]] = [[]]

    def text(self, x: float, y: float, text: str, *, font: str = FONT, size: float = BODY,
             color: tuple = DARK, align: str = "left") -> None:
        self.pages[-1].append(("text", x, y, text, font, size, color, align))

    def rect(self, x: float, y: float, w: float, h: float, color: tuple, radius: float = 0) -> None:
        self.pages[-1].append(("rect", x, y, w, h, color, radius))

    def new_page(self, number: str) -> float:
        """Start a continuation page; returns the first free baseline."""
        self.pages.append([])
        self.text(571.7, 60, f"# {number} (continued)", size=NUMBER, color=GREY, align="right")
        return 100.0


def _table_header(pages: _Pages, y: float, label: Callable[[str], str]) -> float:
    pages.rect(29, y - 12.7, 557, 21, DARK, radius=3)
    pages.text(ITEM_X, y, label("Item"), color=WHITE)
    pages.text(QTY_X, y, label("Quantity"), color=WHITE)
    pages.text(UNIT_RIGHT, y, label("Unit Price"), color=WHITE, align="right")
    pages.text(AMOUNT_RIGHT, y, label("Amount"), color=WHITE, align="right")
    return y + 25.6


def _layout(doc: InvoiceDocument, labels: Mapping[str, str]) -> list[list[tuple]]:
    pages = _Pages()
    label = lambda text: labels.get(text, text)  # noqa: E731
    money = lambda v: format_money(v, doc.currency)  # noqa: E731
    # logo: shapes only (the seed's logo is an image), so it adds no text
    pages.rect(36.6, 14.4, 112, 112, (0.78, 0.78, 0.78), radius=4)
    pages.pages[-1].append(("logo", 92.6, 70.4))
    pages.text(VALUE_RIGHT + 7.7, 48, label("INVOICE"), size=TITLE, align="right")
    pages.text(571.7, 67.5, f"# {doc.invoice_number}", size=NUMBER, color=GREY, align="right")

    rows = [("Date:", format_date(doc.invoice_date)),
            ("Payment Terms:", doc.payment_terms),
            ("Payment Method:", doc.payment_method if doc.payment_method != doc.payment_terms else None),
            ("Due Date:", format_date(doc.due_date) if doc.due_date else None),
            ("Member No.:", doc.member_number),
            ("PO Number:", doc.po_number)]
    y = 117.8
    for name, value in rows:
        if value is not None:
            pages.text(LABEL_RIGHT, y, label(name), color=GREY, align="right")
            pages.text(VALUE_RIGHT, y, value, align="right")
            y += KV_STEP
    balance_y = y + 2.3
    pages.rect(317, balance_y - 15.4, 269, 25.4, (0.955, 0.955, 0.955), radius=3)
    pages.text(LABEL_RIGHT, balance_y, label("Balance Due:"), font=BOLD, size=BALANCE, align="right")
    pages.text(VALUE_RIGHT, balance_y, money(doc.balance_due), font=BOLD, size=BALANCE, align="right")

    y = 150.0
    if doc.seller:
        pages.text(LEFT, y, doc.seller.name, font=BOLD)
        for line in doc.seller.address:
            y += 12
            pages.text(LEFT, y, line)
    left_bottom = y
    if doc.bill_to:
        y += 27
        pages.text(LEFT, y, label("Bill To:"), color=GREY)
        bottoms = []
        for x, party in ((LEFT, doc.bill_to), (SHIP_X, doc.ship_to)):
            if party is None:
                continue
            if x == SHIP_X:
                pages.text(SHIP_X, y, label("Ship To:"), color=GREY)
            py = y + 15.8
            pages.text(x, py, party.name, font=BOLD)
            for line in party.address:
                py += 12
                pages.text(x, py, line)
            bottoms.append(py)
        left_bottom = max(bottoms)

    y = _table_header(pages, max(left_bottom, balance_y) + 61.4, label)
    for line in doc.lines:
        wrapped = _wrap(line.description, DESCRIPTION_WIDTH, BOLD)
        if y + WRAP_STEP * (len(wrapped) - 1) > CONTENT_BOTTOM:
            y = _table_header(pages, pages.new_page(doc.invoice_number), label)
        pages.text(ITEM_X, y, wrapped[0], font=BOLD)
        pages.text(QTY_X, y, f"{line.quantity:f}")
        pages.text(UNIT_RIGHT, y, money(line.unit_price), align="right")
        pages.text(AMOUNT_RIGHT, y, money(line.amount), align="right")
        for extra in wrapped[1:]:
            y += WRAP_STEP
            pages.text(ITEM_X, y, extra, font=BOLD)
        y += ROW_STEP

    totals = [(label("Subtotal:"), doc.subtotal)] + [(_adjustment_label(a, labels), a.amount) for a in doc.adjustments]
    totals += [(label("Total:"), doc.total)] + (
        [(label("Amount Paid:"), doc.amount_paid)] if doc.amount_paid is not None else [])
    y += 64.5 - ROW_STEP
    if y + TOTAL_STEP * (len(totals) - 1) > CONTENT_BOTTOM:
        y = pages.new_page(doc.invoice_number)
    for text, value in totals:
        pages.text(LABEL_RIGHT, y, text, color=GREY, align="right")
        pages.text(VALUE_RIGHT, y, money(value), align="right")
        y += TOTAL_STEP
    y += 54.7 - TOTAL_STEP
    for name, text in (("Notes:", doc.notes), ("Terms:", doc.terms)):
        if text is None:
            continue
        block = text.split("\n")
        if y + 16.5 + TEXT_STEP * (len(block) - 1) > CONTENT_BOTTOM:
            y = pages.new_page(doc.invoice_number)
        pages.text(LEFT, y, label(name), color=GREY)
        y += 16.5
        for line in block:
            pages.text(LEFT, y, line)
            y += TEXT_STEP
        y += 25
    if len(pages.pages) > 1:
        for i, page in enumerate(pages.pages, 1):
            page.append(("text", PAGE_W / 2, PAGE_H - 30, f"Page {i} of {len(pages.pages)}", FONT, FOOTER, GREY,
                         "center"))
    return pages.pages


def _draw(canvas: Canvas, ops: list[tuple], alter: Mapping[str, str | None]) -> None:
    for op in ops:
        if op[0] == "text":
            _, x, y, text, font, size, color, align = op
            text = alter.get(text, text)
            if text is None:
                continue
            canvas.setFont(font, size)
            canvas.setFillColorRGB(*color)
            draw = {"left": canvas.drawString, "right": canvas.drawRightString, "center": canvas.drawCentredString}
            draw[align](x, PAGE_H - y, text)
        elif op[0] == "rect":
            _, x, y, w, h, color, radius = op
            canvas.setFillColorRGB(*color)
            canvas.roundRect(x, PAGE_H - y - h, w, h, radius, stroke=0, fill=1)
        else:  # the logo's star, drawn as a path
            _, cx, cy = op
            canvas.setFillColorRGB(0.1, 0.1, 0.1)
            canvas.circle(cx, PAGE_H - cy, 32, stroke=0, fill=1)
            canvas.setFillColorRGB(0.85, 0.68, 0.35)
            path = canvas.beginPath()
            for k in range(10):
                r = 24 if k % 2 == 0 else 10
                a = math.pi / 2 + k * math.pi / 5
                (path.lineTo if k else path.moveTo)(cx + r * math.cos(a), PAGE_H - cy + r * math.sin(a))
            path.close()
            canvas.drawPath(path, stroke=0, fill=1)


def render_invoice_pdf(doc: InvoiceDocument, *, layout: str = "seed", encrypt: str | None = None,
                       alter: Mapping[str, str | None] | None = None) -> bytes:
    """The PDF of ``doc`` in the seed's layout with the labels of ``layout`` (a LAYOUTS key; KeyError for
    another); byte-identical for equal arguments.

    ``encrypt``: a user password (the PDF then needs it to open). ``alter``: for bad inputs, printed texts
    to print differently ({"Jan 1, 2024": "01/01/2024"}) or, mapped to None, not at all ({"Date:": None}).
    Descriptions wider than the column wrap at spaces; party and seller lines are printed as they are
    (``generate_invoice`` keeps them inside their columns)."""
    out = io.BytesIO()
    encryption = StandardEncryption(encrypt, ownerPassword=encrypt + "-owner") if encrypt else None
    canvas = Canvas(out, pagesize=(PAGE_W, PAGE_H), pageCompression=1, invariant=1, encrypt=encryption)
    canvas.setTitle(f"Invoice {doc.invoice_number}")
    for ops in _layout(doc, LAYOUTS[layout]):
        _draw(canvas, ops, alter or {})
        canvas.showPage()
    canvas.save()
    return out.getvalue()


def write_batch(out_dir: str | Path, n: int, seed: int,
                member_numbers: list[int] | list[str]) -> list[tuple[Path, InvoiceDocument]]:
    """``n`` invoices written as ``out_dir/<invoice_number>.pdf``, in the LAYOUTS in turn; returns (path,
    expected document) pairs."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, doc in enumerate(generate_invoices(n, seed, member_numbers)):
        path = out / f"{doc.invoice_number}.pdf"
        path.write_bytes(render_invoice_pdf(doc, layout=list(LAYOUTS)[i % len(LAYOUTS)]))
        written.append((path, doc))
    return written


# ------------------------------------------------------------------------------------------ bad inputs


def truncated_pdf(data: bytes, keep: float = 0.6) -> bytes:
    """The first ``keep`` of a PDF's bytes: a download or upload cut short."""
    return data[: int(len(data) * keep)]


def scanned_pdf(data: bytes, dpi: int = 100) -> bytes:
    """Each page of ``data`` rasterised (PDFium) and put back as an image only: a scan, no text layer."""
    import pypdfium2 as pdfium
    from reportlab.lib.utils import ImageReader

    out = io.BytesIO()
    canvas = Canvas(out, pagesize=(PAGE_W, PAGE_H), pageCompression=1, invariant=1)
    pdf = pdfium.PdfDocument(data)
    for page in pdf:
        image = page.render(scale=dpi / 72, grayscale=True).to_pil()
        canvas.drawImage(ImageReader(image), 0, 0, PAGE_W, PAGE_H)
        canvas.showPage()
    pdf.close()
    canvas.save()
    return out.getvalue()


def not_a_pdf(doc: InvoiceDocument) -> bytes:
    """A plain-text rendition of the invoice: what a mislabelled upload looks like."""
    return (f"INVOICE # {doc.invoice_number}\nDate: {format_date(doc.invoice_date)}\n"
            f"Total: {format_money(doc.total, doc.currency)}\n").encode()


WRONG_NUMBERS = ("line_amount", "subtotal", "total", "amount_paid", "balance_due")


def with_wrong_number(doc: InvoiceDocument, what: str) -> InvoiceDocument:
    """``doc`` with one printed number off by one minor unit (``what`` in ``WRONG_NUMBERS``): the invoice
    then does not add up, and ``check_arithmetic`` says where."""
    unit = money_unit(doc.currency).quantize(CENT)
    if what == "line_amount":
        first = doc.lines[0]
        return dataclasses.replace(doc, lines=(dataclasses.replace(first, amount=first.amount + unit), *doc.lines[1:]))
    if what == "amount_paid":
        return dataclasses.replace(doc, amount_paid=(doc.amount_paid or Decimal("0.00")) + unit)
    if what not in WRONG_NUMBERS:
        raise ValueError(f"what must be one of {WRONG_NUMBERS}")
    return dataclasses.replace(doc, **{what: getattr(doc, what) + unit})


def bad_inputs(doc: InvoiceDocument) -> dict[str, bytes]:
    """One file of each bad kind made from ``doc``, keyed by the parser's expected reason code; the
    unbalanced invoices (which parse, and fail ``check_arithmetic``) are keyed ``unbalanced_<what>``."""
    good = render_invoice_pdf(doc)
    files = {
        "truncated": truncated_pdf(good),
        "encrypted": render_invoice_pdf(doc, encrypt="secret"),
        "no_text_layer": scanned_pdf(good),
        "not_pdf": not_a_pdf(doc),
    }
    for what in WRONG_NUMBERS:
        files[f"unbalanced_{what}"] = render_invoice_pdf(with_wrong_number(doc, what))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--member-numbers-file", type=Path,
                        help="member numbers, one per line (the member mapping table's); default: 11134891 and "
                             "the 999 numbers after it")
    parser.add_argument("--bad-inputs", action="store_true", help="also write bad/<reason>.pdf from the first invoice")
    args = parser.parse_args(argv)
    members = (args.member_numbers_file.read_text().split() if args.member_numbers_file
               else [str(n) for n in range(11134891, 11134891 + 1000)])
    written = write_batch(args.out, args.count, args.seed, members)
    if args.bad_inputs and written:
        (args.out / "bad").mkdir(exist_ok=True)
        for name, data in bad_inputs(written[0][1]).items():
            (args.out / "bad" / f"{name}.pdf").write_bytes(data)
    pages = sum(render_pages for render_pages in (len(_layout(doc, {})) for _, doc in written))
    print(f"{len(written)} invoices ({pages} pages) in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
