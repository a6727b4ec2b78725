"""An invoice as structured data, its arithmetic checks, and header amounts allocated to its lines.

Plain Python (standard library only): the PDF parser (``invoice.pdf``), the synthetic invoice generator
(``dev/invoice_pdfs.py``) and the Spark jobs share these types, so an invoice is defined once.

Money is ``decimal.Decimal`` quantized to 2 places (``Decimal("4392.00")``), whatever the currency: one
scale for every amount column (Delta ``DECIMAL(18,2)``). A currency's own minor unit still rules its
arithmetic: ``money_unit("HKD")`` is 0.01, ``money_unit("JPY")`` is 1 (ISO 4217 exponent 0), so a yen
amount is whole (``Decimal("3380.00")``), rounding and allocation work in whole yen. An absent field is
``None``, never zero: an invoice that prints "Discount: HK$0.00" has a discount adjustment of 0.00, one
that prints no discount row has none.

Arithmetic rules (``check_arithmetic``), those of the layout's producer (an invoice-generator style HTML
template: Subtotal, Discount, Tax, Shipping, Total, Amount Paid, Balance Due):

- line amount = quantity x unit price, rounded to the currency's minor unit, ROUND_HALF_UP (Python's
  decimal ROUND_HALF_UP rounds ties away from zero, as a spreadsheet's ROUND does);
- subtotal = sum of the line amounts;
- an adjustment is an allowance (``discount``: reduces the total) or a charge (``tax``, ``shipping``: adds
  to it); ``ADJUSTMENT_SIGNS`` is the one list of kinds, a new kind is one entry there. A printed rate
  ("Discount (10%)") is a fraction (``Decimal("0.10")``); its amount = rate x base, rounded as above,
  where an allowance's base is the subtotal and a charge's base is the subtotal after allowances (the
  discount is taken before tax, as in EU VAT: Directive 2006/112/EC art. 79(b), price discounts are not
  part of the taxable amount);
- total = subtotal - allowances + charges;
- balance due = total - amount paid (an absent "Amount Paid" row means nothing was paid).

Allocation (``allocate_largest_remainder``, ``allocate_adjustments``): each header adjustment is split
over the lines in proportion to the line amounts by the largest-remainder (Hamilton) method in minor
units, so the parts of one adjustment sum exactly to it; a line's net amount = amount - its allowance
parts + its charge parts, and the net amounts sum exactly to the total.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

CENT = Decimal("0.01")

# +1: a charge adds to the total; -1: an allowance reduces it. The single list of adjustment kinds.
ADJUSTMENT_SIGNS: dict[str, int] = {"discount": -1, "tax": 1, "shipping": 1}

# ISO 4217 minor units (exponents) of the currencies the parser knows; money of another currency is refused.
CURRENCY_EXPONENTS: dict[str, int] = {
    "HKD": 2, "USD": 2, "EUR": 2, "GBP": 2, "SGD": 2, "CNY": 2, "AUD": 2, "CAD": 2, "CHF": 2, "NZD": 2,
    "TWD": 2, "MOP": 2, "JPY": 0, "KRW": 0,
}


# fields without which an invoice is not usable (check_arithmetic reports them; the parser raises)
REQUIRED_FIELDS = ("invoice_number", "invoice_date", "currency", "subtotal", "total", "balance_due")


@dataclass(frozen=True)
class Party:
    """A seller, bill-to or ship-to block: the name (first line) and the address lines under it, as printed."""

    name: str
    address: tuple[str, ...] = ()


@dataclass(frozen=True)
class InvoiceLine:
    """One item row. ``line_number`` counts from 1 in printed order; ``quantity`` is a Decimal (it may be
    fractional), ``unit_price`` and ``amount`` are money (2 places)."""

    line_number: int
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Adjustment:
    """A header-level allowance or charge. ``kind`` is a key of ``ADJUSTMENT_SIGNS``; ``rate`` is the printed
    percentage as a fraction (10% is ``Decimal("0.1")``) or None when only an amount is printed; ``amount``
    is the printed amount, non-negative money (its direction comes from the kind)."""

    kind: str
    rate: Decimal | None
    amount: Decimal

    def __post_init__(self) -> None:
        if self.kind not in ADJUSTMENT_SIGNS:
            raise ValueError(f"adjustment kind {self.kind!r} is not one of {sorted(ADJUSTMENT_SIGNS)}")

    @property
    def sign(self) -> int:
        """-1 for an allowance, +1 for a charge."""
        return ADJUSTMENT_SIGNS[self.kind]


@dataclass(frozen=True)
class InvoiceDocument:
    """Everything an invoice of the reference layout prints (``/work/shared/seed/invoice.pdf``).

    ``payment_terms`` is the value of the "Payment Terms:" row as printed; ``payment_method`` is the value of
    a "Payment Method:" row, else the "Payment Terms:" value when it names a payment method (the seed
    prints "Payment Terms: Visa"; ``invoice.pdf.PAYMENT_METHODS``). ``terms`` and ``notes`` are the text
    blocks under "Terms:" and "Notes:", their lines joined with "\\n". ``currency`` is an ISO 4217 code.
    ``balance_due`` is printed in the header box; ``amount_paid`` is None when no "Amount Paid" row is printed.
    ``member_number`` is the member number's digits as printed (a member_card.card_number: text, leading
    zeros kept, lakehouse_jobs.contracts).
    """

    invoice_number: str
    invoice_date: dt.date
    currency: str
    lines: tuple[InvoiceLine, ...]
    subtotal: Decimal
    total: Decimal
    balance_due: Decimal
    adjustments: tuple[Adjustment, ...] = ()
    amount_paid: Decimal | None = None
    due_date: dt.date | None = None
    payment_terms: str | None = None
    payment_method: str | None = None
    member_number: str | None = None
    po_number: str | None = None
    seller: Party | None = None
    bill_to: Party | None = None
    ship_to: Party | None = None
    terms: str | None = None
    notes: str | None = None

    def adjustment_total(self, sign: int) -> Decimal:
        """Sum of the allowances (sign -1) or of the charges (sign +1), as a non-negative amount."""
        return sum((a.amount for a in self.adjustments if a.sign == sign), Decimal("0.00"))


# Payment terms that state when payment is due, as invoices print them: "Net 30" (the trade convention: due
# 30 days after the invoice date), "due within 15 days", "payable within 7 days", "due on receipt" (0 days).
# Each must end its clause (end of text, a line break, or . ; , not followed by a digit), so that "Net 30 EOM",
# "net 30 days after delivery", "net 120.00", "Net 1,000", "Net 7-30" or "net 2/10" state no period here.
_CLAUSE_END = r"(?:\s+days?)?(?=\s*(?:$|\n|[.;,](?!\d)))"
_DUE_PERIODS = (
    re.compile(r"(?<![\w/-])net\s*(\d{1,3})" + _CLAUSE_END, re.IGNORECASE | re.MULTILINE),
    re.compile(r"\b(?:due|payable)\s+within\s+(\d{1,3})" + _CLAUSE_END, re.IGNORECASE | re.MULTILINE),
    re.compile(r"(?<!not )\b(?:due|payable)\s+(?:on|upon)\s+(receipt)(?=\s*(?:$|\n|[.;,]))",
               re.IGNORECASE | re.MULTILINE),
)


def due_date_from_terms(invoice_date: dt.date | None, *texts: str | None) -> dt.date | None:
    """The due date that payment terms state, from `texts` (the "Payment Terms:" value, the Terms block):
    `invoice_date` plus the period of every _DUE_PERIODS match, or None when there is no invoice date, no
    stated period, two different ones, or a date past the calendar's end (then the terms are not read: a
    date is right or absent).
    """
    days = {0 if m[1].lower() == "receipt" else int(m[1])
            for text in texts if text for pattern in _DUE_PERIODS for m in pattern.finditer(text)}
    if invoice_date is None or len(days) != 1:
        return None
    try:
        return invoice_date + dt.timedelta(days=days.pop())
    except OverflowError:
        return None


def money_unit(currency: str) -> Decimal:
    """The smallest amount of ``currency`` (ISO 4217 minor unit): Decimal("0.01"), or Decimal("1") for JPY.
    Raises ValueError for a currency outside ``CURRENCY_EXPONENTS``."""
    try:
        return Decimal(1).scaleb(-CURRENCY_EXPONENTS[currency])
    except KeyError:
        raise ValueError(f"unknown currency {currency!r}") from None


def round_money(value: Decimal, currency: str) -> Decimal:
    """``value`` rounded to the currency's minor unit (ROUND_HALF_UP: ties away from zero), on the 2-place scale."""
    return value.quantize(money_unit(currency), rounding=ROUND_HALF_UP).quantize(CENT)


def rate_base(doc: InvoiceDocument, adjustment: Adjustment) -> Decimal:
    """What a rated adjustment is a percentage of: the subtotal for an allowance, the subtotal after
    allowances for a charge (module docstring)."""
    if adjustment.sign < 0:
        return doc.subtotal
    return doc.subtotal - doc.adjustment_total(-1)


def check_arithmetic(doc: InvoiceDocument) -> list[str]:
    """Reason codes for what does not add up in ``doc``; an empty list when everything does.

    Codes, in this order: ``required_field_missing:<field>`` (a ``REQUIRED_FIELDS`` entry is None, or
    ``lines`` is empty), ``unknown_currency``, ``line_number_sequence`` (line numbers are not 1..n),
    ``minor_unit_mismatch:<field>`` (an amount finer than the currency's minor unit, e.g. yen with cents;
    ``<field>`` is ``line:<n>`` for a line), ``line_amount_mismatch:<n>``, ``subtotal_mismatch``,
    ``adjustment_rate_mismatch:<i>`` (``i`` counts adjustments from 1 in printed order),
    ``total_mismatch``, ``balance_mismatch``. The rules are the module docstring's; comparisons are exact.
    Checks that need a missing field are skipped, the missing field is reported instead.
    """
    problems = [f"required_field_missing:{f}" for f in REQUIRED_FIELDS if getattr(doc, f) is None]
    if not doc.lines:
        problems.append("required_field_missing:lines")
    if doc.currency is not None and doc.currency not in CURRENCY_EXPONENTS:
        return [*problems, "unknown_currency"]
    if problems:
        return problems
    unit = money_unit(doc.currency)
    if [line.line_number for line in doc.lines] != list(range(1, len(doc.lines) + 1)):
        problems.append("line_number_sequence")
    amounts = {"subtotal": doc.subtotal, "total": doc.total, "balance_due": doc.balance_due,
               "amount_paid": doc.amount_paid}
    for line in doc.lines:
        amounts[f"line:{line.line_number}"] = line.amount
        amounts[f"unit_price:{line.line_number}"] = line.unit_price
    for i, adj in enumerate(doc.adjustments, 1):
        amounts[f"adjustment:{i}"] = adj.amount
    problems += [f"minor_unit_mismatch:{name}" for name, value in amounts.items()
                 if value is not None and value % unit != 0]
    for line in doc.lines:
        if round_money(line.quantity * line.unit_price, doc.currency) != line.amount:
            problems.append(f"line_amount_mismatch:{line.line_number}")
    if sum((line.amount for line in doc.lines), Decimal(0)) != doc.subtotal:
        problems.append("subtotal_mismatch")
    for i, adj in enumerate(doc.adjustments, 1):
        if adj.rate is not None and round_money(adj.rate * rate_base(doc, adj), doc.currency) != adj.amount:
            problems.append(f"adjustment_rate_mismatch:{i}")
    if doc.subtotal - doc.adjustment_total(-1) + doc.adjustment_total(1) != doc.total:
        problems.append("total_mismatch")
    if doc.total - (doc.amount_paid or Decimal(0)) != doc.balance_due:
        problems.append("balance_mismatch")
    return problems


def allocate_largest_remainder(total: Decimal, weights: Sequence[Decimal], unit: Decimal = CENT) -> list[Decimal]:
    """Split ``total`` into ``len(weights)`` parts proportional to ``weights`` that sum exactly to ``total``.

    Largest-remainder (Hamilton) apportionment in whole units of ``unit`` (a cent by default, Decimal("1")
    for yen): with T = total / unit and W = sum(weights), line i's exact quota is q_i = T * w_i / W
    (computed exactly, as fractions); each line first gets floor(q_i) units, and the k = T - sum(floor(q_i))
    units left over go one each to the lines with the largest fractional parts q_i - floor(q_i), ties to
    the earlier line (list order; ``largest_remainder``). So every part is within one unit of its exact
    quota, the parts sum to ``total`` exactly, and the result is deterministic. (Hamilton's method for
    apportioning seats, 1792; the same rule as M. Fowler's Money.allocate in Patterns of Enterprise
    Application Architecture, with the leftover units going by remainder rather than to the first lines.)

    Signs: weights may be negative (a credit line) or mixed as long as they do not sum to zero; floor
    rounds towards minus infinity, so the leftover k is always in [0, n). A negative ``total`` works the
    same way. Zero weights get a zero part (their fractional part is 0, and k never exceeds the number of
    positive fractional parts). All weights zero: the total is split equally (equal weights), since the
    lines give no other basis.

    Returns Decimals on the 2-place scale (``Decimal("12.35")``), in the order of ``weights``. Raises
    ValueError when ``weights`` is empty, when ``total`` is not a whole number of ``unit``, or when the
    weights are not all zero but sum to zero while ``total`` is not zero (no proportional split exists).
    """
    if not weights:
        raise ValueError("allocate_largest_remainder: no weights to allocate over")
    units = Fraction(total) / Fraction(unit)
    if units.denominator != 1:
        raise ValueError(f"allocate_largest_remainder: total {total} is not a whole number of {unit}")
    t = int(units)
    fweights = [Fraction(w) for w in weights]
    if all(w == 0 for w in fweights):
        fweights = [Fraction(1)] * len(fweights)
    w_sum = sum(fweights)
    if w_sum == 0:
        if t == 0:
            return [Decimal(0).quantize(CENT)] * len(weights)
        raise ValueError("allocate_largest_remainder: the weights sum to zero, no proportional split exists")
    return largest_remainder([t * w / w_sum for w in fweights], t, unit)


def largest_remainder(quotas: Sequence[Fraction], total: int, unit: Decimal = CENT) -> list[Decimal]:
    """Hamilton's step: exact ``quotas`` (in units of ``unit``) rounded to whole units that sum to ``total``.

    Each quota first gets floor(q_i) units; the k = ``total`` - sum(floor(q_i)) units left over go one each
    to the quotas with the largest fractional parts q_i - floor(q_i), ties to the earlier quota (list
    order). Returns Decimals on the 2-place scale (parts x ``unit``), in the order of ``quotas``. Raises
    ValueError when k is outside [0, len(quotas)]: no parts summing to ``total`` are then each within one
    unit of their quota.
    """
    parts = [math.floor(q) for q in quotas]
    leftover = total - sum(parts)
    if not 0 <= leftover <= len(parts):
        raise ValueError(f"largest_remainder: {total} units cannot be split by quotas summing to {sum(quotas)}")
    # largest fractional part first; Python's sort is stable, so equal parts keep list order
    order = sorted(range(len(quotas)), key=lambda i: quotas[i] - parts[i], reverse=True)
    for i in order[:leftover]:
        parts[i] += 1
    return [(Decimal(p) * unit).quantize(CENT) for p in parts]


def _allocate_bounded(amount: Decimal, weights: list[Decimal], unit: Decimal) -> list[Decimal]:
    """allocate_largest_remainder over the signed line amounts (a 10% tax on +1,000 and a -500 credit is
    100 and -50), unless lines of opposite sign cancel out so far that a line's part would exceed the line
    itself (+1,000 and -990 would split a 100 charge as 10,000 and -9,900) or cancel out exactly (no split
    exists): then over the lines' sizes (50.25 and 49.75)."""
    if sum(weights) != 0:
        parts = allocate_largest_remainder(amount, weights, unit)
        if all(abs(p) <= abs(w) for p, w in zip(parts, weights)) or len({w > 0 for w in weights if w}) < 2:
            return parts
    return allocate_largest_remainder(amount, [abs(w) for w in weights], unit)


@dataclass(frozen=True)
class LineAllocation:
    """A line's share of the header adjustments. ``allocated`` holds (kind, amount) pairs, one per kind the
    invoice has, in ``ADJUSTMENT_SIGNS`` order, amounts non-negative for non-negative lines (the part of
    the printed, unsigned adjustment); ``net_amount`` = amount - allowance parts + charge parts."""

    line_number: int
    amount: Decimal
    allocated: tuple[tuple[str, Decimal], ...]
    net_amount: Decimal

    def part(self, kind: str) -> Decimal | None:
        """This line's part of the adjustments of ``kind``; None when the invoice has no such adjustment."""
        return dict(self.allocated).get(kind)


def allocate_adjustments(doc: InvoiceDocument) -> list[LineAllocation]:
    """Each line's part of every header adjustment, and its net amount; one entry per line, in line order.

    Each adjustment is allocated on its own with ``allocate_largest_remainder`` over the line amounts, in
    the currency's minor unit, so its parts sum exactly to it; parts of adjustments of the same kind are
    added. Where lines of opposite sign cancel out so far that a line would get more than its own amount,
    the adjustment is allocated over the lines' sizes instead (``_allocate_bounded``). The weights are
    the line amounts (gross) for every kind: a discount by rate is proportional to
    them, tax on the discounted amounts is then proportional to them too, and the document gives no other
    basis for shipping (weights, volumes are not printed). With the module's total rule, the net amounts
    sum exactly to ``doc.total``.

    Raises ValueError when the line amounts, subtotal and total do not add up (``subtotal_mismatch`` or
    ``total_mismatch`` from ``check_arithmetic``), a required field is missing, the currency is unknown, or
    an adjustment is not a whole number of the currency's minor unit: net amounts could not then sum to the
    printed total, and an allocation that silently disagrees with the document is worse than none. Line,
    rate and balance mismatches do not stop it (they do not enter the sums).
    """
    blocking = [p for p in check_arithmetic(doc)
                if p.split(":")[0] in ("required_field_missing", "unknown_currency", "subtotal_mismatch",
                                       "total_mismatch")]
    if blocking:
        raise ValueError(f"invoice {doc.invoice_number}: cannot allocate, {', '.join(blocking)}")
    unit = money_unit(doc.currency)
    weights = [line.amount for line in doc.lines]
    per_kind: dict[str, list[Decimal]] = {}
    for adj in doc.adjustments:
        parts = _allocate_bounded(adj.amount, weights, unit)
        sums = per_kind.setdefault(adj.kind, [Decimal("0.00")] * len(weights))
        per_kind[adj.kind] = [s + p for s, p in zip(sums, parts)]
    kinds = [k for k in ADJUSTMENT_SIGNS if k in per_kind]
    result = []
    for i, line in enumerate(doc.lines):
        allocated = tuple((k, per_kind[k][i]) for k in kinds)
        net = line.amount + sum((ADJUSTMENT_SIGNS[k] * a for k, a in allocated), Decimal("0.00"))
        result.append(LineAllocation(line.line_number, line.amount, allocated, net.quantize(CENT)))
    return result
