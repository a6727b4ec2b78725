"""Standardised forms of free-text source values: ISO 3166-1 country codes and E.164 phone numbers.

The raw value is always kept beside the standardised one; a value that cannot be standardised with
confidence becomes None, never a guess. Plain Python functions, plus pandas UDF bodies that apply them
to Arrow batches inside Spark's Python workers (installed from the jobs wheel there, so the module-level
caches below live once per worker process).
"""

from __future__ import annotations

import functools
import re
import unicodedata

import pandas as pd
import phonenumbers
import pycountry

# Former or everyday English names that pycountry no longer lists; "Korea" stays unresolved on purpose.
COUNTRY_ALIASES = {
    "cape verde": "CV",
    "libyan arab jamahiriya": "LY",
    "palestinian territory": "PS",
    "pitcairn islands": "PN",
    "svalbard & jan mayen islands": "SJ",
    "swaziland": "SZ",
    "turkey": "TR",
    "uk": "GB",
    "united states virgin islands": "VI",
}


def fold(text: str) -> str:
    """Case- and accent-insensitive form of a name: "Côte d'Ivoire" -> "cote d'ivoire"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(ascii_text.casefold().split())


@functools.cache
def _country_index() -> dict[str, str]:
    """Folded name or code -> alpha-2 for every ISO 3166 country (pycountry's data), plus the aliases."""
    index = {}
    for country in pycountry.countries:
        for field in ("alpha_2", "alpha_3", "name", "official_name", "common_name"):
            if value := getattr(country, field, None):
                index[fold(value)] = country.alpha_2
    index.update(COUNTRY_ALIASES)
    return index


def country_to_code(name: str | None) -> str | None:
    """ISO 3166-1 alpha-2 code of a country name or code, or None when unknown or ambiguous.

    Matches names, official and common names and codes ignoring case and accents, then the name without
    a bracketed suffix ("Slovakia (Slovak Republic)"), then pycountry's fuzzy search when that finds
    exactly one country.
    """
    if name is None:
        return None
    index = _country_index()
    for candidate in (name, re.sub(r"\(.*\)", "", name)):
        if code := index.get(fold(candidate)):
            return code
    try:
        matches = pycountry.countries.search_fuzzy(name)
    except LookupError:
        return None
    return matches[0].alpha_2 if len(matches) == 1 else None


def phone_to_e164(phone: str | None, region: str | None) -> str | None:
    """E.164 form of a phone number valid in `region` (alpha-2) or else in the US, or None.

    The US fallback exists because the brief's Faker generator writes US-style numbers for members of
    every country. The extension ("x123") is dropped, as E.164 has none.
    """
    if phone is None:
        return None
    for candidate_region in dict.fromkeys(r for r in (region, "US") if r):
        try:
            number = phonenumbers.parse(phone, candidate_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def country_codes(countries: pd.Series) -> pd.Series:
    """pandas UDF body: country_to_code over a column."""
    # a batch has a few hundred distinct countries at most: resolve each once per Arrow batch
    codes = {name: country_to_code(name) for name in countries.dropna().unique()}
    return countries.map(codes)


def phones_e164(phones: pd.Series, regions: pd.Series) -> pd.Series:
    """pandas UDF body: phone_to_e164 over two columns."""
    # no per-value cache: phone numbers are nearly unique, so it would only cost memory
    return pd.Series([phone_to_e164(p, r) for p, r in zip(phones, regions)], index=phones.index, dtype=object)
