"""The synthetic invoice generator (dev/invoice_pdfs.py): deterministic by seed, members only from the
caller's list, unique invoice numbers, and a CLI that writes the batch and the bad inputs."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from dev import invoice_pdfs
from lakehouse_jobs.invoice.document import check_arithmetic
from lakehouse_jobs.invoice.pdf import parse_invoice_pdf
from lakehouse_jobs.invoice.text_layer import InvoiceParseError

pytestmark = pytest.mark.unit

MEMBERS = [11134891, 55500001, 77700007]


def test_a_seed_gives_the_same_invoices_and_the_same_bytes():
    first = invoice_pdfs.generate_invoices(30, seed=3, member_numbers=MEMBERS)
    again = invoice_pdfs.generate_invoices(30, seed=3, member_numbers=MEMBERS)
    other = invoice_pdfs.generate_invoices(30, seed=4, member_numbers=MEMBERS)

    assert first == again and first != other
    assert invoice_pdfs.render_invoice_pdf(first[0]) == invoice_pdfs.render_invoice_pdf(again[0])
    assert invoice_pdfs.generate_invoice(random.Random(8), MEMBERS) == invoice_pdfs.generate_invoice(8, MEMBERS)


def test_values_come_from_the_callers_members_and_the_two_years():
    docs = invoice_pdfs.generate_invoices(300, seed=1, member_numbers=MEMBERS)

    assert {d.member_number for d in docs} == {*map(str, MEMBERS), None}
    assert all(dt.date(2023, 1, 1) <= d.invoice_date <= dt.date(2024, 12, 31) for d in docs)
    assert len({d.invoice_date.year for d in docs}) == 2
    assert all(1 <= len(d.lines) <= 40 for d in docs) and max(len(d.lines) for d in docs) > 30
    assert all(check_arithmetic(d) == [] for d in docs)
    assert invoice_pdfs.generate_invoices(5, seed=1, member_numbers=[])[0].member_number is None
    # a cap below the second page's 13 lines holds for every seed (it once raised for one seed in four)
    assert {len(d.lines) for d in invoice_pdfs.generate_invoices(60, seed=2, member_numbers=[], max_lines=3)} == {
        1, 2, 3}


def test_write_batch_and_the_cli(tmp_path, capsys):
    written = invoice_pdfs.write_batch(tmp_path / "batch", 12, seed=5, member_numbers=MEMBERS)
    assert len({path.name for path, _ in written}) == 12
    assert all(parse_invoice_pdf(path.read_bytes()) == doc for path, doc in written)

    members = tmp_path / "members.txt"
    members.write_text("42\n43\n")
    out = tmp_path / "cli"
    assert invoice_pdfs.main(["--count", "4", "--seed", "5", "--out", str(out), "--member-numbers-file",
                              str(members), "--bad-inputs"]) == 0
    assert "4 invoices" in capsys.readouterr().out
    assert len(list(out.glob("*.pdf"))) == 4
    for kind in ("truncated", "encrypted", "no_text_layer", "not_pdf"):
        with pytest.raises(InvoiceParseError) as e:
            parse_invoice_pdf((out / "bad" / f"{kind}.pdf").read_bytes())
        assert e.value.reason == kind
    unbalanced = parse_invoice_pdf((out / "bad" / "unbalanced_total.pdf").read_bytes())
    assert "total_mismatch" in check_arithmetic(unbalanced)
    assert {d.member_number for d in invoice_pdfs.generate_invoices(20, 5, [42, 43])} <= {"42", "43", None}


def test_money_and_dates_are_printed_as_the_seed_prints_them():
    from decimal import Decimal

    assert invoice_pdfs.format_money(Decimal("3380.00"), "HKD") == "HK$3,380.00"
    assert invoice_pdfs.format_money(Decimal("3380.00"), "JPY") == "JP¥3,380"
    assert invoice_pdfs.format_money(Decimal("-5.10"), "EUR") == "-€5.10"
    assert invoice_pdfs.format_date(dt.date(2024, 1, 1)) == "Jan 1, 2024"
    assert invoice_pdfs.format_rate(Decimal("0.0825")) == "8.25" and invoice_pdfs.format_rate(Decimal("0.1")) == "10"
