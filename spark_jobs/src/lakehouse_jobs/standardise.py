"""Standardised forms of free-text source values: country codes, E.164 phone numbers, normalised emails.

The raw value is always kept beside the standardised one; a value that cannot be standardised with
confidence becomes None, never a guess. Plain Python functions, plus pandas UDF bodies that apply them
to Arrow batches inside Spark's Python workers (installed from the jobs wheel there, so the module-level
caches below live once per worker process).

Rules and their sources:

- Country (``country_to_code``): ISO 3166-1 alpha-2, from pycountry's copy of the ISO 3166 data (Debian's
  iso-codes). A value resolves only exactly, never by similarity:
  1. Reviewed tables first: ``NOT_A_COUNTRY``, names that deliberately stay None, each with its reason
     ("Korea" and "Congo" name two countries each), then ``COUNTRY_ALIASES``, former and everyday English
     names. Together with pycountry's names they cover every name of Faker's en_US country list, which
     the seed's generator draws from.
  2. A code: alpha-2 or alpha-3, written in capitals ("DE", "DEU"). A lower-case word is not a code
     ("no", "it", "is" are English words far more often than Norway, Italy, Iceland), and a capitalised
     word ("Est", "Ba") is a name: those are a region of Burkina Faso and a province of Fiji.
  3. A name: pycountry's name, official name or common name, ignoring case, accents, punctuation and
     spacing ("COTE D'IVOIRE", "Guinea Bissau").
  There is no fuzzy matching: pycountry's ``search_fuzzy`` also matches subdivision names and returns their
  country ("Victoria" became AU) and matches parts of names ("Republic of Korea" became KP). So a name that
  is only a subdivision or a city stays None, while a name that *is* a country's ISO name resolves to that
  country even where a subdivision shares it ("Georgia" is GE, not the US state; "Niger", "Luxembourg").
  Kosovo is ``XK``: a user-assigned code outside ISO 3166-1 proper, used by the European Commission,
  Unicode CLDR and libphonenumber (so a Kosovar number resolves); it is never RS.
- Phone (``phone_to_e164``): libphonenumber's semantics (the ``phonenumbers`` port). ``parse``'s default
  region is "the region that we are expecting the number to be from", used only when the number is not
  written in international format: "+44 20 ..." is read as written whatever the region, while a national
  number, or one after the region's international prefix ("00" in Switzerland, "011" in the US), is read
  as dialled from that region. Two regions are tried: the member's country, only when it was resolved
  exactly (``country_to_code`` never guesses), and the US, because the brief's Faker en_US generator
  writes NANP numbers for members of every country. The result is the E.164 form when the readings that
  ``is_valid_number`` accepts agree on one number. A national number valid both in the member's country
  and, as a different number, in the US (Russia's "902-286-1208" is +7 902 ... or +1 902 ...) is
  ambiguous and None: neither the data nor libphonenumber can tell which was meant. A number valid in
  neither is None. The extension ("x123") is dropped, as E.164 has none.
- Email (``email_to_normalised``): email-validator's syntax check, without network (no DNS lookups):
  RFC 5322/5321 addresses with the internationalisation of RFC 6531 (SMTPUTF8) and IDNA 2008 domains, so
  ``info@bücher.example`` and ``info@xn--h1alffa9f.xn--p1ai`` are valid. Not accepted (the library's
  defaults): quoted local parts, domain literals (``user@[127.0.0.1]``), special-use domains (``.test``,
  ``localhost``), domains without a dot. The stored form is the library's ``normalized``: domain lower-cased
  and in Unicode (``info@россия.рф``), both parts NFC-normalised; the local part keeps its case, which
  RFC 5321 section 2.4 leaves to the receiving server, except role names such as ``Info`` and
  ``Postmaster`` (RFC 2142 defines them case-insensitive), which the library lower-cases.
  The library costs ~30 µs a value, so a plain ASCII address is first tried against the library's own
  ASCII rule, built from its constants (``_ascii_normalised``); every other address goes to the library.
  ``tests/spark_jobs/test_standardise.py`` proves the two equal on 1,000,000 fuzzed addresses.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import email_validator
import pandas as pd
import phonenumbers
import pycountry
from email_validator.rfc_constants import (
    CASE_INSENSITIVE_MAILBOX_NAMES,
    DNS_LABEL_LENGTH_LIMIT,
    DOMAIN_MAX_LENGTH,
    DOMAIN_NAME_REGEX,
    DOT_ATOM_TEXT,
    DOT_ATOM_TEXT_HOSTNAME,
    EMAIL_MAX_LENGTH,
    LOCAL_PART_MAX_LENGTH,
)

# Names that must not resolve, with the reason; looked up first, so an entry overrides pycountry's names.
NOT_A_COUNTRY: dict[str, str] = {
    "Korea": "North (KP) or South (KR); Faker's list holds it twice, once for each",
    "Congo": "the Republic (CG, ISO's short name) or the Democratic Republic (CD); Faker's list holds it twice",
    "Netherlands Antilles": "dissolved in 2010 into CW, SX and BQ; its code AN was withdrawn",
    "NA": "the 'not available' of R, pandas and spreadsheets; Namibia resolves by name or as NAM",
    "Macedonia": "also a region of Greece; the country resolves as North Macedonia or MK",
}
# Reviewed aliases: English names pycountry does not list -> alpha-2.
COUNTRY_ALIASES: dict[str, str] = {
    # Faker en_US names: former ISO 3166 short names, and names with Faker's own bracketed notes
    "Antarctica (the territory South of 60 deg S)": "AQ",
    "Bouvet Island (Bouvetoya)": "BV",
    "British Indian Ocean Territory (Chagos Archipelago)": "IO",
    "Cape Verde": "CV",  # ISO name until 2013
    "Libyan Arab Jamahiriya": "LY",  # ISO name until 2011
    "Micronesia": "FM",  # CLDR's English short name of the Federated States of Micronesia
    "Palestinian Territory": "PS",  # ISO's "Palestinian Territory, Occupied" until 2013
    "Pitcairn Islands": "PN",  # ISO: "Pitcairn"
    "Saint Helena": "SH",  # ISO name until 2010
    "Saint Martin": "MF",  # CLDR's "St. Martin" is the French part; the Dutch part is Sint Maarten (SX)
    "Slovakia (Slovak Republic)": "SK",
    "Svalbard & Jan Mayen Islands": "SJ",
    "Swaziland": "SZ",  # ISO name until 2018
    "Turkey": "TR",  # ISO name until 2022
    "United States Virgin Islands": "VI",
    # everyday names
    "Republic of Korea": "KR",  # the official name, which pycountry lacks
    "Kosovo": "XK",  # user-assigned code (module docstring)
    "Republic of Kosovo": "XK",
    "UK": "GB",  # not an ISO code: GB is
    "Great Britain": "GB",
    "Russia": "RU",
    "Brunei": "BN",
    "Burma": "MM",
    "East Timor": "TL",
    "Ivory Coast": "CI",
    "Vatican City": "VA",
    "Democratic Republic of the Congo": "CD",
    "DR Congo": "CD",
    "Congo-Kinshasa": "CD",
    "Congo-Brazzaville": "CG",
}


def fold(text: str) -> str:
    """Comparable form of a name: case, accents, punctuation and spacing ignored.

    "Côte d'Ivoire" -> "cote divoire", "Guinea-Bissau" -> "guinea bissau".
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold()
    # an apostrophe or a dot joins ("d'Ivoire", "U.K."), other punctuation separates ("Guinea-Bissau")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", re.sub(r"['.]", "", ascii_text)).split())


@functools.cache
def _code_index() -> dict[str, str]:
    """Upper-case alpha-2 and alpha-3 code -> alpha-2, for every ISO 3166-1 country, and Kosovo's XK / XKX,
    so that a code this module emits reads back as itself."""
    codes = {code: c.alpha_2 for c in pycountry.countries for code in (c.alpha_2, c.alpha_3)}
    return codes | {"XK": "XK", "XKX": "XK"}


@functools.cache
def _name_index() -> dict[str, str]:
    """Folded name, official name or common name -> alpha-2, for every ISO 3166-1 country.

    Raises ValueError if two countries' names fold alike (the lookup would then pick one silently).
    """
    index: dict[str, str] = {}
    for country in pycountry.countries:
        for field in ("name", "official_name", "common_name"):
            if value := getattr(country, field, None):
                if index.setdefault(fold(value), country.alpha_2) != country.alpha_2:
                    raise ValueError(f"{value!r} folds like a name of {index[fold(value)]}")
    return index


@functools.cache
def _alias_index() -> dict[str, str | None]:
    """Folded name -> alpha-2 of COUNTRY_ALIASES, or None for NOT_A_COUNTRY."""
    return {fold(name): code for name, code in COUNTRY_ALIASES.items()} | dict.fromkeys(map(fold, NOT_A_COUNTRY))


def country_to_code(name: str | None) -> str | None:
    """ISO 3166-1 alpha-2 code (or XK) of a country name or code; None when unknown or ambiguous.

    Rules and their order in the module docstring. Raises ValueError if pycountry's data holds two
    countries whose names fold alike (_name_index).
    """
    if name is None:
        return None
    text = name.strip()
    key = fold(text)
    if key in _alias_index():
        return _alias_index()[key]
    if text.isascii() and text.isupper() and len(text) in (2, 3):
        if code := _code_index().get(text.upper()):
            return code
    return _name_index().get(key)


def _reading(phone: str, region: str) -> phonenumbers.PhoneNumber | None:
    """libphonenumber's reading of `phone` as written in `region`, if it is a valid number."""
    try:
        number = phonenumbers.parse(phone, region, keep_raw_input=True)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def phone_to_e164(phone: str | None, region: str | None) -> str | None:
    """E.164 form of a phone number, or None when it is valid nowhere or ambiguous.

    `region` is the member's alpha-2 country code, or None when the country is unknown; it must come from
    an exact resolution (country_to_code), never a guess. Readings: `region`, then the US (module
    docstring). A number written with "+" needs no region and is read once.
    """
    if phone is None:
        return None
    results = set()
    for candidate in dict.fromkeys(r for r in (region, "US") if r):
        number = _reading(phone, candidate)
        if number is None:
            continue
        results.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
        if number.country_code_source == phonenumbers.CountryCodeSource.FROM_NUMBER_WITH_PLUS_SIGN:
            break  # the number names its country: every region reads it alike
    return results.pop() if len(results) == 1 else None


def email_to_normalised(email: str | None) -> tuple[str | None, str | None]:
    """(normalised address, None) for a valid address, (None, the library's reason) for an invalid one,
    (None, None) for None. Never raises for bad input and never uses the network (module docstring)."""
    if email is None:
        return None, None
    if (normalised := _ascii_normalised(email)) is not None:
        return normalised, None
    return _library_normalised(email)


# Read once: both are lists the library reads at every call (email_validator/__init__.py and
# rfc_constants.py); nothing here changes them.
_SPECIAL_USE_SUFFIXES = tuple("." + name for name in email_validator.SPECIAL_USE_DOMAIN_NAMES)
_ROLE_NAMES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


def _ascii_normalised(email: str) -> str | None:
    """email-validator's ``normalized`` of a plain ASCII address that is certainly valid, without calling
    the library; None for every other address, which only the library may judge.

    Accepted: one "@", a dot-atom local part and a host name as the library matches them (its own
    DOT_ATOM_TEXT and DOT_ATOM_TEXT_HOSTNAME, both anchored with \\Z), within its length limits
    (rfc_constants.py). Restated from email-validator 2.4.0 (lines of email_validator/syntax.py): the
    domain needs a dot (650) and must end with a letter (DOMAIN_NAME_REGEX, 654); a special-use name or
    any name under it is refused (SPECIAL_USE_DOMAIN_NAMES, 662); "--" is left to the library, which
    refuses R-LDH labels (577) and decodes Punycode ones (671). For such a domain UTS-46 mapping (551)
    only lower-cases. The local part is kept (272), but a role name is lower-cased (validate_email.py
    line 151), so it is left to the library. The result depends on none of the library's options: the
    local part's limit of 64, which the library checks only when ``strict`` (261), is applied here
    always; ``test_environment`` and ``globally_deliverable`` only relax rules applied here.
    """
    local, at, domain = email.partition("@")
    if not (
        at
        and email.isascii()
        and len(email) <= EMAIL_MAX_LENGTH  # ASCII: characters are octets; lower() keeps the length
        and len(local) <= LOCAL_PART_MAX_LENGTH
        and len(domain) <= DOMAIN_MAX_LENGTH
        and DOT_ATOM_TEXT.match(local)
        and DOT_ATOM_TEXT_HOSTNAME.match(domain)  # no "@": the domain is everything after the first one
        and "." in domain
        and "--" not in domain
        and DOMAIN_NAME_REGEX.search(domain)
        and max(map(len, domain.split("."))) <= DNS_LABEL_LENGTH_LIMIT
        and local.lower() not in _ROLE_NAMES
    ):
        return None
    domain = domain.lower()
    if ("." + domain).endswith(_SPECIAL_USE_SUFFIXES):  # the name itself or any name under it, as the library
        return None
    return local + "@" + domain


def _library_normalised(email: str) -> tuple[str | None, str | None]:
    """email_to_normalised by email-validator alone: the reference the fast path is tested against."""
    try:
        return email_validator.validate_email(email, check_deliverability=False).normalized, None
    except email_validator.EmailNotValidError as exc:
        return None, _without_address(str(exc), email)


def _without_address(message: str, email: str) -> str:
    """email-validator's message with the address and its local part and domain replaced by placeholders:
    some messages quote the domain ("The domain name x.example does not exist"), and the message is stored
    in plaintext in the quarantine table. Parts shorter than 4 characters are left alone, as replacing
    them would garble the message's own words."""
    local, _, domain = email.rpartition("@")
    for part, placeholder in ((email, "<address>"), (domain, "<domain>"), (local, "<local part>")):
        if len(part) >= 4:
            message = message.replace(part, placeholder)
    return message


# ------------------------------------------------------------------------------ pandas UDF bodies

# Spark type of emails_normalised's result (a struct column)
EMAIL_RESULT_TYPE = "email string, error string"


def country_codes(countries: pd.Series) -> pd.Series:
    """pandas UDF body: country_to_code over a column."""
    # a batch has a few hundred distinct countries at most: resolve each once per Arrow batch
    codes = {name: country_to_code(name) for name in countries.dropna().unique()}
    # dict.get rather than Series.map, which would turn a missing code into NaN instead of None
    return pd.Series([codes.get(name) for name in countries], index=countries.index, dtype=object)


def phones_e164(phones: pd.Series, regions: pd.Series) -> pd.Series:
    """pandas UDF body: phone_to_e164 over two columns."""
    # no per-value cache: phone numbers are nearly unique, so it would only cost memory
    return pd.Series([phone_to_e164(p, r) for p, r in zip(phones, regions)], index=phones.index, dtype=object)


def emails_normalised(emails: pd.Series) -> pd.DataFrame:
    """pandas UDF body: email_to_normalised over a column; columns ``email`` and ``error``
    (EMAIL_RESULT_TYPE)."""
    # no per-value cache: addresses are nearly unique
    return pd.DataFrame(
        [email_to_normalised(e) for e in emails], columns=["email", "error"], index=emails.index, dtype=object
    )
