"""Invoice PDFs of the reference layout (``/work/shared/seed/invoice.pdf``) parsed into ``InvoiceDocument``.

``parse_invoice_pdf(data)`` returns what the invoice prints, or raises ``InvoiceParseError`` with a stable
``reason`` (``REASONS``) and a free-text ``detail``. It never guesses: text it cannot place, a number or
date not written exactly as the layout writes them, a label it does not know, is an error, not a None.
It does not judge the arithmetic: an invoice whose numbers do not add up parses to the numbers it prints,
and ``invoice.document.check_arithmetic`` says what is wrong (callers quarantine on either).

The PDF's text layer (PDFium's characters, lines and cells: steps 1-3) is ``invoice.text_layer``'s, which
also defines ``InvoiceParseError`` and ``REASONS``; this module reads the layout from its lines:

4. Regions, top to bottom, across pages: the header (title ``TITLES``, "# <number>", the label/value rows
   of ``HEADER_LABELS``, the seller block, the bill-to and ship-to blocks of ``PARTY_LABELS``), the item
   table from its header row, four cells naming the item, quantity, unit price and amount columns
   (``TABLE_COLUMNS``: "Item | Quantity | Unit Price | Amount", "Description | Qty | Price | Total", ...;
   a cell belongs to a column by the header cell's edge: the quantity left-aligned, the prices
   right-aligned, the description left of the quantity; a line with only a description continues the item
   above, which is how a wrapped description reads), the totals (``TOTAL_LABELS``: "Subtotal:", "VAT
   (20%):", "Grand Total:", ...), then the notes and terms blocks (``BLOCK_LABELS``). Labels are matched by
   family, case-insensitively; the families (``invoice.labels``) are the only layout knowledge, so an
   unknown label is refused.
   Pages after the first may start with "# <number> (continued)" and repeat the table header; "Page i of
   n" footers are checked against the page count.

Money is "<prefix><digits with thousands commas>[.<minor digits>]" with a prefix of ``CURRENCY_PREFIXES``
(a bare "$" or "¥" names several currencies and is refused) and exactly as many decimals as the
currency's ISO 4217 minor unit; every amount of one invoice must have the same currency. Dates are "Jan
1, 2024" (English month name or abbreviation) or ISO "2024-01-01". Quantities are plain decimals
("2", "1,000", "2.5").
"""

from __future__ import annotations

import re
from decimal import Decimal

from lakehouse_jobs.invoice.document import (
    ADJUSTMENT_SIGNS,
    Adjustment,
    InvoiceDocument,
    InvoiceLine,
    Party,
)
from lakehouse_jobs.invoice.labels import (
    BLOCK_LABELS,
    HEADER_LABELS,
    PARTY_LABELS,
    TABLE_COLUMNS,
    TITLES,
    TOTAL_LABEL,
    TOTAL_LABELS,
)
from lakehouse_jobs.invoice.printed_values import parse_date, parse_money, parse_quantity
from lakehouse_jobs.invoice.text_layer import (
    LINE_TOLERANCE,
    MAX_PAGES,
    Cell,
    InvoiceParseError,
    PageText,
    extract_pages,
    page_lines,
)

# values of "Payment Terms:" that name a payment method (the seed prints "Payment Terms: Visa")
PAYMENT_METHODS = frozenset(m.casefold() for m in (
    "Visa", "Mastercard", "American Express", "UnionPay", "JCB", "Diners Club", "Discover", "Cash", "Cheque",
    "Check", "Bank Transfer", "Wire Transfer", "PayPal", "Alipay", "WeChat Pay", "Octopus", "FPS",
    "Apple Pay", "Google Pay", "Credit Card", "Debit Card",
))

ALIGN_TOLERANCE = 3.0   # points: a cell edge this close to a column's edge is in the column
WRAP_SPACING = 1.6      # x character height: a description line at most this far below continues the item


_MEMBER = re.compile(r"^\d{1,20}$")  # member_card.card_number: at most 20 characters (lakehouse_jobs.contracts)
_PAGE_FOOTER = re.compile(r"^Page (\d+) of (\d+)$")
_NUMBER_CELL = re.compile(r"^#\s*(?P<number>\S.*?)(?P<cont> \(continued\))?$")


# ------------------------------------------------------------------------------------------ layout


def parse_invoice_pdf(data: bytes, *, max_pages: int = MAX_PAGES) -> InvoiceDocument:
    """The invoice printed in ``data`` (the bytes of a PDF file).

    Raises InvoiceParseError (``.reason`` in ``REASONS``, ``.detail`` says where) when the PDF cannot be
    read or the invoice cannot be read exactly; TypeError when ``data`` is not bytes. Shapes and rules:
    the module docstring and ``InvoiceDocument``.
    """
    return parse_pages(extract_pages(data, max_pages))


def parse_pages(pages: list[PageText]) -> InvoiceDocument:
    """The invoice on ``pages`` (characters from any extractor: the benchmark feeds pdfplumber's too)."""
    return _Reader(pages).read()


class _Reader:
    """A single pass over the document's lines, region by region (module docstring, step 4)."""

    def __init__(self, pages: list[PageText]) -> None:
        self.pages = pages
        self.fields: dict[str, object] = {}
        self.currencies: set[str] = set()
        self.lines: list[dict] = []
        self.adjustments: list[Adjustment] = []
        self.blocks: dict[str, list[str]] = {}
        self.continued: list[tuple[int, str]] = []  # (page index, number) of "# <number> (continued)" lines

    # -- helpers

    def money(self, cell: Cell) -> Decimal:
        currency, value = parse_money(cell.text)
        self.currencies.add(currency)
        return value

    def set(self, field: str, value: object) -> None:
        if field in self.fields and self.fields[field] != value:
            raise InvoiceParseError("duplicate_field", f"{field}: {self.fields[field]!r} and {value!r}")
        if field in self.fields and field != "balance_due":
            raise InvoiceParseError("duplicate_field", f"{field} printed twice")
        self.fields[field] = value

    @staticmethod
    def unplaced(cell: Cell, where: str) -> InvoiceParseError:
        return InvoiceParseError("layout_unrecognised",
                                 f"{where}: text {cell.text!r} at x={cell.x0:.0f}, y={cell.baseline:.0f}")

    # -- the pass

    def read(self) -> InvoiceDocument:
        lines: list[tuple[int, list[Cell]]] = []
        for index, page in enumerate(self.pages):
            for line in self.strip_furniture(index, page_lines(page)):
                lines.append((index, line))
        header = next(((i, columns) for i, (_, line) in enumerate(lines) if (columns := _columns(line))), None)
        if header is None:
            raise InvoiceParseError("layout_unrecognised", "no item table header (an item, quantity, unit price "
                                    "and amount label, e.g. Item | Quantity | Rate | Amount)")
        header_end, columns = header
        if lines[header_end][0] != 0:
            raise InvoiceParseError("layout_unrecognised", "the item table does not start on page 1")
        self.read_header([line for _, line in lines[:header_end]])
        position = self.read_table(lines, header_end, columns)
        position = self.read_totals(lines, position)
        self.read_blocks(lines, position)
        return self.document()

    def strip_furniture(self, index: int, lines: list[list[Cell]]) -> list[list[Cell]]:
        """Drop "Page i of n" footers and, after page 1, the "# <number> (continued)" line, checking both."""
        kept = []
        for line in lines:
            if len(line) == 1 and (m := _PAGE_FOOTER.match(line[0].text)):
                if (int(m[1]), int(m[2])) != (index + 1, len(self.pages)):
                    raise InvoiceParseError("page_sequence", f"page {index + 1} of {len(self.pages)} says "
                                            f"{line[0].text!r}")
                continue
            if index > 0 and len(line) == 1 and (m := _NUMBER_CELL.match(line[0].text)) and m["cont"]:
                self.continued.append((index, m["number"]))
                continue
            kept.append(line)
        return kept

    def read_header(self, lines: list[list[Cell]]) -> None:
        leftovers: list[Cell] = []
        bill_label = ship_label = None
        # the right-hand column starts at its leftmost label; "#..." left of it is an address ("#05-01")
        label_x0 = min((c.x0 for line in lines for c in line if c.text.casefold() in HEADER_LABELS), default=0.0)
        for line in lines:
            cells = iter(enumerate(line))
            for i, cell in cells:
                label = cell.text.casefold()
                if label in TITLES and "title" not in self.fields:
                    self.fields["title"] = True
                elif (m := _NUMBER_CELL.match(cell.text)) and not m["cont"] and cell.x0 >= label_x0:
                    self.set("invoice_number", m["number"])
                elif label in HEADER_LABELS:
                    if i + 1 >= len(line):
                        raise InvoiceParseError("layout_unrecognised", f"{cell.text} without a value")
                    _, value = next(cells)
                    self.header_value(HEADER_LABELS[label], value)
                elif PARTY_LABELS.get(label) == "bill_to" and bill_label is None:
                    bill_label = cell
                elif PARTY_LABELS.get(label) == "ship_to" and ship_label is None:
                    ship_label = cell
                else:
                    leftovers.append(cell)
        if "title" not in self.fields:
            raise InvoiceParseError("layout_unrecognised", "no INVOICE or TAX INVOICE title")
        # what remains is the seller (above "Bill To:") and the bill-to and ship-to blocks (below it)
        above: list[Cell] = []
        bill: list[Cell] = []
        ship: list[Cell] = []
        for cell in leftovers:
            if label_x0 and cell.x1 > label_x0:
                raise self.unplaced(cell, "header")
            if bill_label is None or cell.baseline < bill_label.baseline:
                above.append(cell)
            elif ship_label is not None and cell.x0 >= ship_label.x0 - ALIGN_TOLERANCE:
                ship.append(cell)
            elif cell.x0 >= bill_label.x0 - ALIGN_TOLERANCE:
                bill.append(cell)
            else:
                raise self.unplaced(cell, "bill-to block")
        if bill_label is None:
            _refuse_unlabelled_block(above)
        self.fields["seller"] = _party(above, "seller")
        if ship_label is not None and bill_label is None:
            raise InvoiceParseError("layout_unrecognised", "a ship-to block without a bill-to block")
        if bill_label is not None:
            self.fields["bill_to"] = _party(bill, "bill_to")
            if self.fields["bill_to"] is None:
                raise InvoiceParseError("required_field_missing", f"bill_to: a {bill_label.text} label without a name")
        if ship_label is not None:
            self.fields["ship_to"] = _party(ship, "ship_to")
            if self.fields["ship_to"] is None:
                raise InvoiceParseError("required_field_missing", f"ship_to: a {ship_label.text} label without a name")

    def header_value(self, field: str, cell: Cell) -> None:
        text = cell.text
        if field in ("invoice_date", "due_date"):
            self.set(field, parse_date(text))
        elif field == "balance_due":
            self.set(field, self.money(cell))
        elif field == "member_number":
            if not _MEMBER.match(text):
                raise InvoiceParseError("unparseable_number", f"member number {text!r} is not 1 to 20 digits")
            self.set(field, text)
        else:
            self.set(field, text)

    def read_table(self, lines: list[tuple[int, list[Cell]]], start: int, columns: dict[str, float]) -> int:
        """Item rows from the table header at ``start`` (its column edges: ``columns``) to the first totals
        label; returns that position."""
        header_page = lines[start][0]
        previous: tuple[int, Cell] | None = None  # the current item's last line: (page, a cell of it)
        position = start + 1
        while position < len(lines):
            page, line = lines[position]
            if _total_label(line[0].text):
                break
            position += 1
            if repeated := _columns(line):
                columns, header_page = repeated, page
                continue
            if page != header_page:
                raise InvoiceParseError("layout_unrecognised", f"page {page + 1}: item rows without the table header")
            row = _row(line, columns)
            if row["numbers"]:
                if not row["description"]:
                    raise InvoiceParseError("required_field_missing", f"description of item {len(self.lines) + 1}")
                qty, unit, amount = row["numbers"]
                self.lines.append({"description": [row["description"]], "quantity": parse_quantity(qty.text),
                                   "unit_price": self.money(unit), "amount": self.money(amount)})
            else:
                # a wrapped description: only right under the item it continues (same page or a new one), at
                # line spacing (1.33 heights in the seed), closer than the next item row (1.9): a row of text
                # without numbers is never glued to the item above
                near = previous is not None and (
                    previous[0] != page or line[0].baseline - previous[1].baseline <= WRAP_SPACING * line[0].height)
                if not self.lines or not near:
                    raise self.unplaced(line[0], "item table")
                self.lines[-1]["description"].append(row["description"])
            previous = (page, line[0])
        if not self.lines:
            raise InvoiceParseError("required_field_missing", "lines: the item table is empty")
        self.amount_x1 = columns["amount"]
        return position

    def read_totals(self, lines: list[tuple[int, list[Cell]]], position: int) -> int:
        while position < len(lines):
            _, line = lines[position]
            if len(line) == 1 and line[0].text.casefold() in BLOCK_LABELS:
                break
            label = _total_label(line[0].text)
            if not label:
                raise self.unplaced(line[0], "totals")
            if len(line) != 2 or abs(line[1].x1 - self.amount_x1) > ALIGN_TOLERANCE:
                raise self.unplaced(line[-1], "totals")
            value = self.money(line[1])
            kind, rate = label
            if kind in ADJUSTMENT_SIGNS:
                if value < 0:
                    raise InvoiceParseError("unparseable_number", f"{line[0].text} {line[1].text}: printed "
                                            "adjustments are amounts, their kind gives the direction")
                self.adjustments.append(Adjustment(kind, Decimal(rate) / 100 if rate else None, value))
            elif rate:
                raise self.unplaced(line[0], "totals")
            else:
                self.set(kind, value)
            position += 1
        return position

    def read_blocks(self, lines: list[tuple[int, list[Cell]]], position: int) -> None:
        current: tuple[str, Cell] | None = None
        for _, line in lines[position:]:
            if len(line) == 1 and line[0].text.casefold() in BLOCK_LABELS:
                field = BLOCK_LABELS[line[0].text.casefold()]
                if field in self.blocks:
                    raise InvoiceParseError("duplicate_field", f"{line[0].text} printed twice")
                current = (field, line[0])
                self.blocks[field] = []
            elif current is not None and len(line) == 1 and abs(line[0].x0 - current[1].x0) <= ALIGN_TOLERANCE:
                self.blocks[current[0]].append(line[0].text)
            else:
                raise self.unplaced(line[-1], "notes and terms")

    def document(self) -> InvoiceDocument:
        f = self.fields
        number = f.get("invoice_number")
        for index, continued in self.continued:
            if continued != number:
                raise InvoiceParseError("page_sequence", f"page {index + 1} continues {continued!r}, not {number!r}")
        for field in ("invoice_number", "invoice_date", "subtotal", "total", "balance_due"):
            if f.get(field) is None:
                raise InvoiceParseError("required_field_missing", field)
        if len(self.currencies) != 1:
            raise InvoiceParseError("mixed_currency", f"amounts in {sorted(self.currencies)}")
        payment_method = f.get("payment_method")
        if payment_method is None and str(f.get("payment_terms", "")).casefold() in PAYMENT_METHODS:
            payment_method = f["payment_terms"]
        return InvoiceDocument(
            invoice_number=number,
            invoice_date=f["invoice_date"],
            currency=self.currencies.pop(),
            lines=tuple(
                InvoiceLine(i, " ".join(line["description"]), line["quantity"], line["unit_price"], line["amount"])
                for i, line in enumerate(self.lines, 1)
            ),
            subtotal=f["subtotal"],
            total=f["total"],
            balance_due=f["balance_due"],
            adjustments=tuple(self.adjustments),
            amount_paid=f.get("amount_paid"),
            due_date=f.get("due_date"),
            payment_terms=f.get("payment_terms"),
            payment_method=payment_method,
            member_number=f.get("member_number"),
            po_number=f.get("po_number"),
            seller=f.get("seller"),
            bill_to=f.get("bill_to"),
            ship_to=f.get("ship_to"),
            terms="\n".join(self.blocks["terms"]) if self.blocks.get("terms") else None,
            notes="\n".join(self.blocks["notes"]) if self.blocks.get("notes") else None,
        )


def _texts(line: list[Cell]) -> tuple[str, ...]:
    return tuple(c.text for c in line)


def _total_label(text: str) -> tuple[str, str | None] | None:
    """(field or adjustment kind, printed rate or None) of a totals label ("VAT (20%):"), else None."""
    if (m := TOTAL_LABEL.match(text)) and (name := TOTAL_LABELS.get(m["name"].casefold())):
        return name, m["rate"]
    return None


def _columns(line: list[Cell]) -> dict[str, float] | None:
    """The item table's column edges when `line` is its header row (TABLE_COLUMNS, in the order item,
    quantity, unit price, amount), else None: the quantity's left edge and the prices' right edges, as they
    are aligned."""
    if tuple(TABLE_COLUMNS.get(c.text.casefold()) for c in line) != ("item", "quantity", "unit", "amount"):
        return None
    item, quantity, unit, amount = line
    return {"item": item.x0, "quantity": quantity.x0, "unit": unit.x1, "amount": amount.x1}


def _row(line: list[Cell], columns: dict[str, float]) -> dict:
    """An item table line's description (cells left of Quantity, joined) and its (quantity, unit price,
    amount) cells, or no numbers; any cell in no column, or only some of the numbers, is an error."""
    description, numbers = [], {}
    for cell in line:
        if cell.x1 < columns["quantity"] - 1 and cell.x0 >= columns["item"] - ALIGN_TOLERANCE:
            description.append(cell.text)
            continue
        for name, edge in (("quantity", cell.x0), ("unit", cell.x1), ("amount", cell.x1)):
            if abs(edge - columns[name]) <= ALIGN_TOLERANCE and name not in numbers:
                numbers[name] = cell
                break
        else:
            raise _Reader.unplaced(cell, "item table")
    if numbers and len(numbers) != 3:
        raise InvoiceParseError("layout_unrecognised", f"an item row with only {sorted(numbers)}: "
                                f"{' | '.join(_texts(line))}")
    return {"description": " ".join(description),
            "numbers": (numbers["quantity"], numbers["unit"], numbers["amount"]) if numbers else ()}


def _refuse_unlabelled_block(cells: list[Cell]) -> None:
    """Raise layout_unrecognised when the seller block has a gap wider than twice its tightest line spacing,
    or than twice its text's height (a block's lines are ~1.33 heights apart): without a bill-to label, a
    customer's name and address below the seller would otherwise be read as the seller's address, and
    stored in plaintext in the seller dimension; a one-line seller over a one-line customer has one gap."""
    baselines = sorted({round(c.baseline, 1) for c in cells})
    gaps = [b - a for a, b in zip(baselines, baselines[1:])]
    height = max((c.height for c in cells), default=0.0)
    if (len(gaps) >= 2 and max(gaps) > 2 * min(gaps)) or any(gap > 2 * height for gap in gaps):
        raise InvoiceParseError("layout_unrecognised", "a block of text below the seller without a Bill To: label")


def _party(cells: list[Cell], field: str) -> Party | None:
    """A block of one cell per line, top to bottom: the name, then the address lines."""
    if not cells:
        return None
    cells = sorted(cells, key=lambda c: c.baseline)
    for prev, cell in zip(cells, cells[1:]):
        if cell.baseline - prev.baseline < LINE_TOLERANCE * cell.height:
            raise InvoiceParseError("layout_unrecognised", f"{field}: {prev.text!r} and {cell.text!r} on one line")
    return Party(cells[0].text, tuple(c.text for c in cells[1:]))
