"""Values as an invoice prints them: amounts with a currency prefix, quantities, dates.

Each parser takes one cell's text whole (``re.fullmatch``: a ``$`` would also match before a final
newline) and returns the value, or raises InvoiceParseError with the reason code of
lakehouse_jobs.invoice.text_layer.REASONS; never a guess.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from lakehouse_jobs.invoice.document import CENT, CURRENCY_EXPONENTS
from lakehouse_jobs.invoice.text_layer import InvoiceParseError

# money prefixes as this layout prints them (CLDR English symbols, disambiguated), to ISO 4217 codes
CURRENCY_PREFIXES: dict[str, str] = {
    "HK$": "HKD", "US$": "USD", "S$": "SGD", "€": "EUR", "£": "GBP", "JP¥": "JPY", "CN¥": "CNY",
    "A$": "AUD", "CA$": "CAD", "NZ$": "NZD", "NT$": "TWD", "MOP$": "MOP",
}
assert set(CURRENCY_PREFIXES.values()) <= set(CURRENCY_EXPONENTS)

MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
FULL_MONTHS = {m: i for i, m in enumerate(
    ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"), 1)}

_MONEY = re.compile(r"(?P<sign>-)?(?P<prefix>\D+?)(?P<int>\d{1,3}(?:,\d{3})*|\d+)(?:\.(?P<frac>\d+))?")
_QUANTITY = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d{1,6})?")


def parse_money(text: str) -> tuple[str, Decimal]:
    """("HKD", Decimal("3380.00")) from "HK$3,380.00"; raises InvoiceParseError (unknown_currency,
    unparseable_number)."""
    m = _MONEY.fullmatch(text)
    if not m:
        raise InvoiceParseError("unparseable_number", f"{text!r} is not an amount")
    currency = CURRENCY_PREFIXES.get(m["prefix"])
    if currency is None:
        raise InvoiceParseError("unknown_currency", f"{text!r}: prefix {m['prefix']!r} is not one of "
                                f"{sorted(CURRENCY_PREFIXES)}")
    decimals = CURRENCY_EXPONENTS[currency]
    if len(m["frac"] or "") != decimals:
        raise InvoiceParseError("unparseable_number", f"{text!r}: {currency} amounts have {decimals} decimals")
    value = Decimal(m["int"].replace(",", "") + ("." + m["frac"] if m["frac"] else ""))
    return currency, (-value if m["sign"] else value).quantize(CENT)


def parse_quantity(text: str) -> Decimal:
    if not _QUANTITY.fullmatch(text):
        raise InvoiceParseError("unparseable_number", f"quantity {text!r}")
    return Decimal(text.replace(",", ""))


def parse_date(text: str) -> dt.date:
    """dt.date from "Jan 1, 2024", "January 1, 2024" or "2024-01-01"; raises InvoiceParseError
    (unparseable_date)."""
    try:
        if m := re.fullmatch(r"([A-Za-z]{3,9})\.? (\d{1,2}), (\d{4})", text):
            month = MONTHS.get(m[1].casefold()) or FULL_MONTHS.get(m[1].casefold())
            if month is None:
                raise ValueError(f"no month {m[1]!r}")
            return dt.date(int(m[3]), month, int(m[2]))
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return dt.date.fromisoformat(text)
    except ValueError as e:
        raise InvoiceParseError("unparseable_date", f"{text!r}: {e}") from None
    raise InvoiceParseError("unparseable_date", f"{text!r} is neither 'Jan 1, 2024' nor '2024-01-01'")
