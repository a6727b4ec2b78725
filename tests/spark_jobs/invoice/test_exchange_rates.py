"""lakehouse_jobs.invoice.exchange_rates: ECB reference rates of the invoice date, amounts in one reporting
currency. The expected rates are read here from the ECB's own file as the package ships it (csv module, not
the package's parser) and crossed by hand."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib.util
import io
import zipfile
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest

from lakehouse_jobs.invoice.exchange_rates import (
    ReferenceRate,
    check_reporting_currency,
    rates_last_date,
    reference_rate,
    reporting_amounts,
)
from lakehouse_jobs.invoice.parse import MONEY_LIMIT
from lakehouse_jobs.results import InvoiceLoadParams

pytestmark = pytest.mark.unit


def ecb_row(day: str) -> dict[str, str]:
    """The ECB file's row of `day` ({"USD": "1.0945", ...}), or {} when the ECB published nothing that day."""
    package = Path(importlib.util.find_spec("currency_converter").origin).parent
    with zipfile.ZipFile(package / "eurofxref-hist.zip") as z:
        text = z.read(z.namelist()[0]).decode()
    for row in csv.DictReader(io.StringIO(text)):
        if row["Date"] == day:
            return {k.strip(): v for k, v in row.items() if k and k.strip()}
    return {}


def cross(row: dict[str, str], currency: str, reporting: str) -> Decimal:
    per_eur = {c: Decimal(1) if c == "EUR" else Decimal(row[c]) for c in (currency, reporting)}
    return (per_eur[reporting] / per_eur[currency]).quantize(Decimal("1e-10"), rounding=ROUND_HALF_EVEN)


def test_a_publication_day_takes_that_days_rates_crossed_through_the_euro():
    row = ecb_row("2024-01-15")
    assert row["USD"] == "1.0945" and row["HKD"] == "8.5599"  # the file itself, not the package's reading
    assert reference_rate("HKD", "USD", dt.date(2024, 1, 15)) == ReferenceRate(
        cross(row, "HKD", "USD"), dt.date(2024, 1, 15))
    assert reference_rate("EUR", "USD", dt.date(2024, 1, 15)).rate == Decimal("1.0945000000")
    assert reference_rate("JPY", "GBP", dt.date(2024, 1, 15)).rate == cross(row, "JPY", "GBP")


@pytest.mark.parametrize(("invoice_date", "published"), [
    ("2024-01-01", "2023-12-29"),  # New Year's Day, after a weekend: the Friday's rates
    ("2024-04-01", "2024-03-28"),  # Easter Monday: Good Friday is closed too, so Maundy Thursday's
    ("2024-02-03", "2024-02-02"),  # a Saturday
])
def test_a_day_without_publication_takes_the_last_one_before_it(invoice_date, published):
    assert ecb_row(invoice_date) == {} and ecb_row(published) != {}
    rate = reference_rate("HKD", "USD", dt.date.fromisoformat(invoice_date))
    assert rate == ReferenceRate(cross(ecb_row(published), "HKD", "USD"), dt.date.fromisoformat(published))


def test_no_rate_rather_than_a_guess():
    assert reference_rate("TWD", "USD", dt.date(2024, 1, 15)) is None  # the ECB does not publish TWD
    assert reference_rate("USD", "MOP", dt.date(2024, 1, 15)) is None
    # after the shipped data a missing day may be one the ECB did publish: no earlier rate stands in for it
    assert reference_rate("HKD", "USD", rates_last_date() + dt.timedelta(days=1)) is None
    assert reference_rate("HKD", "USD", rates_last_date()).rate_date == rates_last_date()
    assert reference_rate("HKD", "USD", dt.date(1998, 12, 31)) is None  # before the euro
    # the same currency needs no rate, so it always has one
    assert reference_rate("TWD", "TWD", dt.date(2024, 1, 15)) == ReferenceRate(Decimal(1), dt.date(2024, 1, 15))


def test_reporting_currency_must_have_minor_unit_and_ecb_rates():
    assert check_reporting_currency("EUR") == "EUR" and check_reporting_currency("JPY") == "JPY"
    for code in ("TWD", "XYZ", "usd", "IDR"):  # IDR: published by the ECB, unknown to the parser
        with pytest.raises(ValueError, match="reporting currency"):
            check_reporting_currency(code)
    assert InvoiceLoadParams.parse([
        "--member-cards", "c", "--tables-root", "t", "--result-path", "r", "--incoming", "i",
        "--reporting-currency", "EUR"]).reporting_currency == "EUR"
    with pytest.raises(SystemExit):  # argparse: "argument --reporting-currency: 'usd' is not an ISO 4217 ..."
        InvoiceLoadParams.parse(["--member-cards", "c", "--tables-root", "t", "--result-path", "r",
                                 "--incoming", "i", "--reporting-currency", "usd"])


def test_reporting_amounts_add_up_exactly_and_round_to_the_reporting_minor_unit():
    rate = ReferenceRate(Decimal("0.1278636433"), dt.date(2024, 1, 15))
    # 1,161.50 HKD x 0.1278636433 = 148.5136...; lines 750.00 and 411.50 are 95.8977 and 52.6159 exactly
    amounts = reporting_amounts(Decimal("1161.50"), Decimal("1000.00"), [Decimal("750.00"), Decimal("411.50")],
                                rate, "USD", MONEY_LIMIT)
    assert (amounts.total, amounts.amount_paid, amounts.balance_due) == (
        Decimal("148.51"), Decimal("127.86"), Decimal("20.65"))
    assert amounts.line_net_amounts == (Decimal("95.90"), Decimal("52.61"))  # 95.90 + 52.61 = 148.51
    # into yen: whole yen, on the 2-place scale of the facts' money columns. Quotas of 1,467 yen: 488.511,
    # 488.511, 489.978; floors leave 2 yen, to the largest remainders (the third, then the first of a tie)
    yen = reporting_amounts(Decimal("10.00"), None, [Decimal("3.33"), Decimal("3.33"), Decimal("3.34")],
                            ReferenceRate(Decimal("146.7"), dt.date(2024, 1, 15)), "JPY", MONEY_LIMIT)
    assert (yen.total, yen.amount_paid, yen.balance_due, yen.line_net_amounts) == (
        Decimal("1467.00"), None, Decimal("1467.00"), (Decimal("489.00"), Decimal("488.00"), Decimal("490.00")))


def test_lines_that_nearly_cancel_out_convert_each_within_a_unit_of_their_value():
    """An exchange: +1,000.00 and -999.00 HKD, total 1.00 HKD = 0.13 USD. Split in proportion to the total,
    the lines would be 130.00 and -129.87 USD; converted, they are 127.86 and -127.73 (exact: 127.8636,
    -127.7358), rounded so that they still add up to 0.13."""
    amounts = reporting_amounts(Decimal("1.00"), None, [Decimal("1000.00"), Decimal("-999.00")],
                                ReferenceRate(Decimal("0.1278636433"), dt.date(2024, 1, 15)), "USD", MONEY_LIMIT)
    assert amounts.total == Decimal("0.13")
    assert amounts.line_net_amounts == (Decimal("127.86"), Decimal("-127.73"))


def test_no_rate_or_an_amount_too_large_for_its_column_leaves_every_reporting_amount_null():
    for rate, total in ((None, Decimal("10.00")), (ReferenceRate(Decimal("1500"), dt.date(2024, 1, 15)),
                                                   Decimal("9999999999999999.00"))):
        amounts = reporting_amounts(total, None, [total], rate, "KRW", MONEY_LIMIT)
        assert (amounts.rate, amounts.total, amounts.balance_due, amounts.line_net_amounts) == (
            None, None, None, (None,))


def test_argparse_error_names_the_option():
    from lakehouse_jobs.results import currency_code

    with pytest.raises(argparse.ArgumentTypeError, match="ISO 4217"):
        currency_code("US")
