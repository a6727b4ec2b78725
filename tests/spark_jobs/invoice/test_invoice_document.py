"""Invoice arithmetic and allocation (lakehouse_jobs.invoice.document): every check catches its mismatch, and
header adjustments split over lines sum exactly, stay proportional within one minor unit, and break ties by
line order."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from decimal import Decimal
from fractions import Fraction

import pytest

from dev.invoice_pdfs import generate_invoices, with_wrong_number
from lakehouse_jobs.invoice.document import (
    CENT,
    Adjustment,
    InvoiceDocument,
    InvoiceLine,
    Party,
    allocate_adjustments,
    allocate_largest_remainder,
    check_arithmetic,
    due_date_from_terms,
    largest_remainder,
    money_unit,
    round_money,
)

pytestmark = pytest.mark.unit

D = Decimal


def seed_invoice(**changes) -> InvoiceDocument:
    """The brief's invoice (tests/data/invoice.pdf), as values."""
    doc = InvoiceDocument(
        invoice_number="HK-00001", invoice_date=dt.date(2024, 1, 1), currency="HKD",
        lines=(InvoiceLine(1, "LEATHER SLEEVE CLASSIC JACKET", D("1"), D("3380.00"), D("3380.00")),
               InvoiceLine(2, "CREWNECK COTTON T-SHIRT", D("2"), D("750.00"), D("1500.00"))),
        subtotal=D("4880.00"), total=D("4392.00"), balance_due=D("0.00"),
        adjustments=(Adjustment("discount", D("0.1"), D("488.00")),), amount_paid=D("4392.00"),
        seller=Party("East Star Retail Ltd.", ("153 Harvest Lane HONG KONG",)),
    )
    return dataclasses.replace(doc, **changes)


# ------------------------------------------------------------------------------------------ arithmetic


def test_the_briefs_invoice_adds_up():
    assert check_arithmetic(seed_invoice()) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"subtotal": D("4880.01")}, ["subtotal_mismatch", "total_mismatch"]),
        ({"total": D("4392.01")}, ["total_mismatch", "balance_mismatch"]),
        ({"balance_due": D("0.01")}, ["balance_mismatch"]),
        ({"amount_paid": D("4000.00")}, ["balance_mismatch"]),
        ({"amount_paid": None}, ["balance_mismatch"]),  # nothing paid: the balance would be the total
        ({"adjustments": (Adjustment("discount", D("0.1"), D("487.00")),), "total": D("4393.00"),
          "amount_paid": D("4393.00")}, ["adjustment_rate_mismatch:1"]),
        ({"adjustments": (Adjustment("tax", None, D("488.00")),)}, ["total_mismatch"]),  # a charge adds
        ({"invoice_date": None, "total": None}, ["required_field_missing:invoice_date",
                                                 "required_field_missing:total"]),
        ({"lines": ()}, ["required_field_missing:lines"]),
        ({"currency": "XXX"}, ["unknown_currency"]),
    ],
)
def test_each_mismatch_has_its_reason(changes, expected):
    assert check_arithmetic(seed_invoice(**changes)) == expected


def test_a_line_whose_amount_is_not_quantity_times_price():
    doc = seed_invoice()
    wrong = dataclasses.replace(doc.lines[1], amount=D("1500.01"))
    assert check_arithmetic(seed_invoice(lines=(doc.lines[0], wrong), subtotal=D("4880.01"))) == [
        "line_amount_mismatch:2", "total_mismatch"]
    renumbered = (doc.lines[0], dataclasses.replace(doc.lines[1], line_number=3))
    assert check_arithmetic(seed_invoice(lines=renumbered)) == ["line_number_sequence"]


def test_rounding_is_half_up_to_the_currencys_minor_unit():
    assert round_money(D("2.5") * D("0.01"), "HKD") == D("0.03")  # 0.025 -> 0.03, not banker's 0.02
    assert round_money(D("-0.025"), "HKD") == D("-0.03")  # ties away from zero
    assert round_money(D("0.0825") * D("1234"), "JPY") == D("102.00")  # 101.805 yen -> 102
    assert money_unit("JPY") == D("1") and money_unit("HKD") == CENT
    with pytest.raises(ValueError):
        money_unit("XXX")


def test_tax_by_rate_is_on_the_amount_after_discount():
    doc = seed_invoice(adjustments=(Adjustment("discount", D("0.1"), D("488.00")),
                                    Adjustment("tax", D("0.05"), D("219.60"))),  # 5% of 4392.00
                       total=D("4611.60"), amount_paid=None, balance_due=D("4611.60"))
    assert check_arithmetic(doc) == []
    on_subtotal = dataclasses.replace(doc, adjustments=(doc.adjustments[0], Adjustment("tax", D("0.05"), D("244.00"))),
                                      total=D("4636.00"), balance_due=D("4636.00"))
    assert check_arithmetic(on_subtotal) == ["adjustment_rate_mismatch:2"]


def test_yen_with_cents_is_flagged():
    doc = seed_invoice(currency="JPY")
    assert check_arithmetic(doc) == []
    cents = seed_invoice(currency="JPY", balance_due=D("0.50"), amount_paid=D("4391.50"))
    assert check_arithmetic(cents) == ["minor_unit_mismatch:balance_due", "minor_unit_mismatch:amount_paid"]


def test_generated_invoices_add_up_and_each_wrong_number_is_caught():
    for doc in generate_invoices(200, seed=5, member_numbers=[1]):
        assert check_arithmetic(doc) == [], doc.invoice_number
        codes = {what: check_arithmetic(with_wrong_number(doc, what)) for what in
                 ("line_amount", "subtotal", "total", "amount_paid", "balance_due")}
        assert "line_amount_mismatch:1" in codes["line_amount"]
        assert "subtotal_mismatch" in codes["subtotal"]
        assert "total_mismatch" in codes["total"]
        assert codes["amount_paid"] == codes["balance_due"] == ["balance_mismatch"]


def test_an_unknown_adjustment_kind_is_refused():
    with pytest.raises(ValueError):
        Adjustment("surcharge", None, D("1.00"))


# ------------------------------------------------------------------------------------------ allocation


def test_allocation_of_the_briefs_discount():
    assert allocate_largest_remainder(D("488.00"), [D("3380.00"), D("1500.00")]) == [D("338.00"), D("150.00")]


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (D("0.02"), [D("1"), D("1"), D("1")], [D("0.01"), D("0.01"), D("0.00")]),  # ties: earlier line first
        (D("1.00"), [D("1"), D("1"), D("1")], [D("0.34"), D("0.33"), D("0.33")]),
        (D("0.05"), [D("3"), D("0"), D("1")], [D("0.04"), D("0.00"), D("0.01")]),  # 0.0375 / 0 / 0.0125
        (D("10.00"), [D("0"), D("5"), D("0")], [D("0.00"), D("10.00"), D("0.00")]),  # zero weights get nothing
        (D("0.10"), [D("0"), D("0"), D("0")], [D("0.04"), D("0.03"), D("0.03")]),  # all zero: equal split
        (D("-1.00"), [D("1"), D("1"), D("1")], [D("-0.33"), D("-0.33"), D("-0.34")]),  # floor to -inf
        (D("20.00"), [D("300"), D("-100")], [D("30.00"), D("-10.00")]),  # a credit line
        (D("0.00"), [D("5"), D("7")], [D("0.00"), D("0.00")]),
    ],
)
def test_largest_remainder_examples(total, weights, expected):
    assert allocate_largest_remainder(total, weights) == expected


def test_allocation_in_whole_yen():
    assert allocate_largest_remainder(D("100.00"), [D("1"), D("1"), D("1")], unit=D("1")) == [
        D("34.00"), D("33.00"), D("33.00")]


@pytest.mark.parametrize(
    ("total", "weights"),
    [(D("1.00"), []), (D("1.005"), [D("1")]), (D("1.00"), [D("1"), D("-1")])],
)
def test_allocation_refuses_what_has_no_exact_answer(total, weights):
    with pytest.raises(ValueError):
        allocate_largest_remainder(total, weights)


def test_largest_remainder_of_given_quotas():
    # quotas of 2.5 units in all, rounded up to 3 (a converted total): the 2 left over after the floors go
    # to the largest remainders, .7 and the earlier .4
    assert largest_remainder([Fraction(17, 10), Fraction(4, 10), Fraction(4, 10)], 3) == [
        D("0.02"), D("0.01"), D("0.00")]
    with pytest.raises(ValueError):  # 2 units short of the floors' sum: no part stays within a unit
        largest_remainder([Fraction(5, 4), Fraction(3, 2)], 0)


def test_allocation_properties_on_random_inputs():
    rng = random.Random(12)
    for _ in range(2000):
        n = rng.randint(1, 40)
        weights = [D(rng.randint(0, 500_000)) / 100 for _ in range(n)]
        if rng.random() < 0.1:
            weights[rng.randrange(n)] = -D(rng.randint(1, 10_000)) / 100
        total = D(rng.randint(-100_000, 1_000_000)) / 100
        if sum(weights) == 0 and any(weights):
            continue
        parts = allocate_largest_remainder(total, weights)

        assert sum(parts) == total and len(parts) == n
        assert all(p == p.quantize(CENT) for p in parts)
        w_sum = sum(weights) if any(weights) else None
        for w, p in zip(weights, parts):
            exact = Fraction(total) * Fraction(w) / Fraction(w_sum) if w_sum else Fraction(total) / n
            assert abs(Fraction(p) - exact) < Fraction(1, 100)  # within one cent of the exact share
        assert allocate_largest_remainder(total, weights) == parts  # deterministic


def test_line_allocations_of_the_briefs_invoice():
    allocations = allocate_adjustments(seed_invoice())

    assert [(a.line_number, a.part("discount"), a.net_amount) for a in allocations] == [
        (1, D("338.00"), D("3042.00")), (2, D("150.00"), D("1350.00"))]
    assert allocations[0].part("tax") is None  # no tax on the invoice: absent, not zero


def test_line_net_amounts_sum_to_the_total_on_generated_invoices():
    for doc in generate_invoices(300, seed=9, member_numbers=[1]):
        allocations = allocate_adjustments(doc)
        assert sum(a.net_amount for a in allocations) == doc.total, doc.invoice_number
        for kind in {a.kind for a in doc.adjustments}:
            printed = sum(a.amount for a in doc.adjustments if a.kind == kind)
            assert sum(a.part(kind) for a in allocations) == printed
        unit = money_unit(doc.currency)
        assert all(part % unit == 0 for a in allocations for _, part in a.allocated)


def test_a_charge_adds_and_an_allowance_reduces():
    doc = seed_invoice(adjustments=(Adjustment("discount", None, D("80.00")), Adjustment("shipping", None, D("40.00")),
                                    Adjustment("tax", None, D("0.00"))),
                       total=D("4840.00"), amount_paid=D("4840.00"))
    allocations = allocate_adjustments(doc)
    assert [a.allocated for a in allocations] == [
        (("discount", D("55.41")), ("tax", D("0.00")), ("shipping", D("27.70"))),
        (("discount", D("24.59")), ("tax", D("0.00")), ("shipping", D("12.30"))),
    ]
    assert [a.net_amount for a in allocations] == [D("3352.29"), D("1487.71")]


@pytest.mark.parametrize(("second", "tax", "parts"), [
    # a credit line: 10% of each line's amount, signed, as the rate means it
    (D("-500.00"), D("50.00"), [D("100.00"), D("-50.00")]),
    # lines that nearly cancel out: signed weights would give 10,000.00 and -9,900.00 of a 100.00 charge
    (D("-990.00"), D("100.00"), [D("50.25"), D("49.75")]),
    # an exchange that cancels out exactly: no signed split exists (it was a parser_error)
    (D("-1000.00"), D("100.00"), [D("50.00"), D("50.00")]),
])
def test_lines_of_opposite_sign_that_cancel_out_are_allocated_by_size(second, tax, parts):
    lines = (InvoiceLine(1, "NEW SIZE", D("1"), D("1000.00"), D("1000.00")),
             InvoiceLine(2, "RETURNED SIZE", D("1"), second, second))
    subtotal = D("1000.00") + second
    doc = seed_invoice(lines=lines, subtotal=subtotal, adjustments=(Adjustment("tax", None, tax),),
                       total=subtotal + tax, amount_paid=None, balance_due=subtotal + tax)
    assert check_arithmetic(doc) == []
    allocations = allocate_adjustments(doc)
    assert [a.part("tax") for a in allocations] == parts
    assert sum(a.net_amount for a in allocations) == doc.total


def test_allocation_refuses_an_invoice_that_does_not_add_up():
    with pytest.raises(ValueError, match="total_mismatch"):
        allocate_adjustments(seed_invoice(total=D("4392.01")))


@pytest.mark.parametrize(("texts", "days"), [
    (("Visa", "Payment is due within 15 days\nPlease make checks payable to: East Star Retail Ltd."), 15),
    (("Net 30", None), 30),
    (("NET30",), 30),
    (("net 7 days",), 7),
    (("Payable within 1 day",), 1),
    (("Due on receipt",), 0),
    (("Net 30", "Payment is due within 30 days"), 30),  # two statements of one period
    (("2/10 Net 30",), 30),  # 2% off when paid within 10 days, else due in 30
])
def test_the_due_date_the_terms_state(texts, days):
    assert due_date_from_terms(dt.date(2024, 1, 1), *texts) == dt.date(2024, 1, 1) + dt.timedelta(days=days)


@pytest.mark.parametrize("texts", [
    ("Visa",), (None, None), (),
    ("Net 30", "Payment is due within 15 days"),  # two periods: which one holds is not for the parser to guess
    ("Net 5% surcharge",),  # a rate, not a period
    ("Payment within 15 days of delivery",),  # from another date than the invoice's
    ("Internet 30",),  # "net" inside a word
    # found by a newcomer's trial: none of these states a period counted from the invoice date
    ("Net 30 EOM",), ("2% discount if paid within 10 days",), ("Prices are net 120.00 excl. VAT",),
    ("Net 1,000",), ("Net 7-30",), ("net 2/10",), ("net 5 per cent rebate",), ("Not due on receipt",),
    ("Net 30 days after delivery",),
])
def test_terms_without_one_stated_period_give_no_due_date(texts):
    assert due_date_from_terms(dt.date(2024, 1, 1), *texts) is None
    assert due_date_from_terms(None, "Net 30") is None
    assert due_date_from_terms(dt.date(9999, 12, 20), "Net 30") is None  # past the calendar: absent, no crash
