"""Standardised country codes, phone numbers and email addresses (lakehouse_jobs.standardise). Plain Python,
no Spark: the pandas UDF bodies are called on pandas Series, as Spark's Python workers call them."""

from __future__ import annotations

import random
import types

import pandas as pd
import phonenumbers
import pycountry
import pytest
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES
from faker import Faker
from faker.providers.address.en_US import Provider as EnUsAddress

from lakehouse_jobs import standardise

pytestmark = pytest.mark.unit


# ------------------------------------------------------------------------------------------ country


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("France", "FR"),
        ("united kingdom", "GB"),  # case-insensitive
        ("  Japan ", "JP"),
        ("Côte d'Ivoire", "CI"),
        ("COTE D’IVOIRE", "CI"),  # accents and the typographic apostrophe ignored
        ("Guinea Bissau", "GW"),  # punctuation ignored
        ("Türkiye", "TR"),  # ISO name
        ("Turkey", "TR"),  # former ISO name (alias)
        ("DE", "DE"),  # alpha-2
        ("DEU", "DE"),  # alpha-3
        ("deu", None),  # lower case is a word, not a code ...
        ("no", None),  # ... "no" is not Norway, nor "it" Italy
        ("it", None),
        ("USA", "US"),
        ("U.K.", "GB"),  # alias: not an ISO code
        ("Deu", None),  # a capitalised word is a name, not a code ...
        ("Est", None),  # ... such as Burkina Faso's region Est (EST would be Estonia)
        ("NA", None),  # "not available" more often than Namibia
        ("Namibia", "NA"),
        ("Republic of Korea", "KR"),  # not North Korea, as fuzzy search had it
        ("South Korea", "KR"),
        ("Korea, Republic of", "KR"),
        ("North Korea", "KP"),
        ("Democratic People's Republic of Korea", "KP"),
        ("Korea", None),  # North or South
        ("Congo", None),  # the Republic or the Democratic Republic
        ("Republic of the Congo", "CG"),
        ("DR Congo", "CD"),
        ("Kosovo", "XK"),  # user-assigned code, never Serbia's RS
        ("Georgia", "GE"),  # an ISO country name, though also a US state
        ("Victoria", None),  # an Australian state and several cities: fuzzy search made it AU
        ("New South Wales", None),
        ("Bavaria", None),
        ("Paris", None),
        ("Seoul", None),
        ("Micronesia", "FM"),
        ("Korea (South)", None),  # no bracket stripping: "Guinea (Bissau)" would become Guinea
        ("Atlantis", None),
        ("", None),
        (None, None),
    ],
)
def test_country_to_code(name, code):
    assert standardise.country_to_code(name) == code


# Faker en_US names that pycountry's exact lookup does not find (or that are overruled), with the code
# they must get; reviewed one by one. Every other name must get the code pycountry finds for it.
FAKER_REVIEWED = {
    "Antarctica (the territory South of 60 deg S)": "AQ",
    "Bouvet Island (Bouvetoya)": "BV",
    "British Indian Ocean Territory (Chagos Archipelago)": "IO",
    "Cape Verde": "CV",
    "Cote d'Ivoire": "CI",
    "Libyan Arab Jamahiriya": "LY",
    "Micronesia": "FM",
    "Palestinian Territory": "PS",
    "Pitcairn Islands": "PN",
    "Reunion": "RE",
    "Saint Barthelemy": "BL",
    "Saint Helena": "SH",
    "Saint Martin": "MF",
    "Slovakia (Slovak Republic)": "SK",
    "Svalbard & Jan Mayen Islands": "SJ",
    "Swaziland": "SZ",
    "Turkey": "TR",
    "United States Virgin Islands": "VI",
    "Congo": None,  # pycountry: CG; Faker's list holds it twice, for CG and CD
    "Korea": None,
    "Netherlands Antilles": None,
}


def pycountry_exact(name: str) -> str | None:
    for field in ("name", "official_name", "common_name"):
        if country := pycountry.countries.get(**{field: name}):
            return country.alpha_2
    return None


def test_the_list_enumerated_below_is_what_the_seed_draws_from():
    fake = Faker("en_US")  # as dev/seed_members.py
    fake.seed_instance(1)

    drawn = {fake.country() for _ in range(5000)}

    assert drawn <= set(EnUsAddress.countries) and len(drawn) > 200


@pytest.mark.parametrize("name", sorted(set(EnUsAddress.countries)))
def test_every_country_name_of_the_generator(name):
    expected = FAKER_REVIEWED[name] if name in FAKER_REVIEWED else pycountry_exact(name)
    assert expected or name in FAKER_REVIEWED, f"{name!r} is new in Faker's list: review it"

    assert standardise.country_to_code(name) == expected
    if expected is None:
        assert standardise.NOT_A_COUNTRY[name], "a name left unresolved needs its reason"


# pycountry subdivision names that resolve: each is exactly a country's ISO name, which wins
SUBDIVISION_NAMES_THAT_ARE_COUNTRY_NAMES = {
    "American Samoa": "AS", "Aruba": "AW", "Belize": "BZ", "Curaçao": "CW", "Djibouti": "DJ",
    "Georgia": "GE", "Guadeloupe": "GP", "Guam": "GU", "Guatemala": "GT", "Luxembourg": "LU",
    "Mali": "ML", "Martinique": "MQ", "Mayotte": "YT", "México": "MX", "Niger": "NE",
    "Northern Mariana Islands": "MP", "Panamá": "PA", "Puerto Rico": "PR", "Saint Helena": "SH",
    "Saint-Barthélemy": "BL", "Saint-Martin": "MF", "United States Minor Outlying Islands": "UM",
    "Virgin Islands, U.S.": "VI",
}


def test_a_subdivision_name_resolves_only_where_it_is_a_country_name():
    resolved = {}
    for subdivision in pycountry.subdivisions:
        if code := standardise.country_to_code(subdivision.name):
            resolved[subdivision.name] = code

    assert resolved == SUBDIVISION_NAMES_THAT_ARE_COUNTRY_NAMES


@pytest.fixture
def fresh_indexes():
    standardise._name_index.cache_clear()
    yield
    standardise._name_index.cache_clear()


def test_country_names_that_fold_alike_fail_loudly(monkeypatch, fresh_indexes):
    fake = [types.SimpleNamespace(alpha_2=code, name=name) for code, name in (("AA", "Saint-Foo"), ("BB", "Saint Foo"))]
    monkeypatch.setattr(pycountry, "countries", fake)

    with pytest.raises(ValueError, match="'Saint Foo' folds like a name of AA"):
        standardise.country_to_code("Saint Foo")


# -------------------------------------------------------------------------------------------- phone


@pytest.mark.parametrize(
    ("phone", "region", "e164"),
    [
        # valid only as a national number of the member's country
        ("030 12345678", "DE", "+493012345678"),
        ("02-312-3456", "KR", "+8223123456"),  # Seoul
        ("044 123 456", "XK", "+38344123456"),  # Kosovo's own region in libphonenumber
        # valid only as a US number (the generator's NANP numbers); the extension is dropped
        ("(213)948-8645x530", "GH", "+12139488645"),
        ("(213)948-8645", None, "+12139488645"),  # country unknown: the US reading alone
        # valid in the member's country and, as another number, in the US: ambiguous
        ("902-286-1208", "RU", None),  # +7 902 286-12-08 or +1 902-286-1208
        ("367.626.5401x4478", "IT", None),
        # a NANP member country reads it as the US does: one number
        ("(213)948-8645", "CA", "+12139488645"),
        # international format: the number's own country code, whatever the region
        ("+44 20 7946 0958", "FR", "+442079460958"),
        ("+44 20 7946 0958", None, "+442079460958"),
        ("+82 2-312-3456", "US", "+8223123456"),
        ("001-437-303-0348", "CH", "+14373030348"),  # "00" is Switzerland's international prefix ...
        ("001-437-303-0348", "US", None),  # ... not the US's (011)
        # valid nowhere
        ("02-312-3456", None, None),  # the "Korea" member: never read as North Korea (+850)
        ("(555)123-4567", "US", None),  # parseable, but 555 is no US area code
        ("12345", "DE", None),
        ("not a phone", "US", None),
        (None, "US", None),
    ],
)
def test_phone_to_e164(phone, region, e164):
    assert standardise.phone_to_e164(phone, region) == e164


@pytest.mark.parametrize(("phone", "region"), [("902-286-1208", "RU"), ("367.626.5401x4478", "IT")])
def test_ambiguous_numbers_are_valid_in_both_regions(phone, region):
    """The premise of the ambiguous cases above: libphonenumber accepts both readings, and they differ."""
    readings = [phonenumbers.parse(phone, r) for r in (region, "US")]
    assert all(map(phonenumbers.is_valid_number, readings))
    assert readings[0].country_code != readings[1].country_code


def test_the_korea_member_keeps_an_absent_number_and_the_south_korean_one_gets_seouls():
    assert standardise.phone_to_e164("02-312-3456", standardise.country_to_code("Korea")) is None
    assert standardise.phone_to_e164("02-312-3456", standardise.country_to_code("Republic of Korea")) == (
        "+8223123456"
    )


# -------------------------------------------------------------------------------------------- email


@pytest.mark.parametrize(
    ("email", "normalised"),
    [
        ("member1@example.com", "member1@example.com"),
        ("info@xn--h1alffa9f.xn--p1ai", "info@россия.рф"),  # punycode domain, stored in Unicode
        ("info@bücher.example", "info@bücher.example"),  # Unicode domain
        ("用户@例子.广告", "用户@例子.广告"),  # SMTPUTF8 local part
        ("John.Doe@Example.COM", "John.Doe@example.com"),  # domain lower-cased, local part kept ...
        ("Info@Example.com", "info@example.com"),  # ... except a role name (RFC 2142), case-insensitive
        ("e\u0301@example.com", "\u00e9@example.com"),  # NFC
    ],
)
def test_valid_email_is_normalised(email, normalised):
    assert standardise.email_to_normalised(email) == (normalised, None)


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        ("not-an-email", "An email address must have an @-sign."),
        ("a@b", "The part after the @-sign is not valid. It should have a period."),
        ("a..b@example.com", "An email address cannot have two periods in a row."),
        ("x@foo.test", "The part after the @-sign is a special-use or reserved name that cannot be used with email."),
        ("user@[127.0.0.1]", "A bracketed IP address after the @-sign is not allowed here."),
        ("x" * 250 + "@example.com", "The email address is too long (8 characters too many)."),
    ],
)
def test_invalid_email_gets_the_librarys_reason(email, reason):
    assert standardise.email_to_normalised(email) == (None, reason)


def test_no_email_is_neither_valid_nor_invalid():
    assert standardise.email_to_normalised(None) == (None, None)


# The fast path (_ascii_normalised) against the library. An address the fast path declines goes to the
# library by construction; one it accepts must be what the library would have returned.

_ATEXT_SPECIALS = "!#$%&'*+-/=?^_`{|}~"
# characters a mutation inserts: the ASCII specials of both parts, white space, quotes and brackets, and
# non-ASCII that the library maps or refuses (combining acute, Kelvin sign, dotless i, ligature fi,
# full-width and small at-signs, zero-width space, non-breaking space, a Cyrillic a)
_NOISE = _ATEXT_SPECIALS + '.-@ \t\n\r"<>[]():;,\\' + "é\u0301\u212aıﬁ＠﹫\u200b\u00a0а"
_NAMES = ["john", "Jane", "o'brien", "MARIA", "li", "x", "anne-marie", "jp", "müller", "zoë"]
_DOMAINS = ["gmail.com", "Example.COM", "mail.co.uk", "sub.domain.org", "x.io", "a-b.c-d.net", "123.com"]
_ODD_DOMAINS = [
    "1.2.3.4", "x.123", "x.c1", "x.1c", "-x.com", "x-.com", "x.-com", "x.com-", "a--b.com", "ab--c.com",
    "xn--h1alffa9f.xn--p1ai", "xn--x.com", "XN--abc.com", "x..com", ".x.com", "x.com.", "com", "x", "x_y.com",
    "[127.0.0.1]", "[IPv6:::1]", "[x]", "localhost", "x.local", "x.onion", "1.in-addr.arpa", "home.arpa",
    "x.invalid", "foo.test", "FOO.TEST", "test", "x.testing", "xtest.com", "example", "example.com",
    "mail.example.org", "bücher.example", "россия.рф", "x.com\n", "x.com ", "x.com\t",
]


def _fuzzed_address(rng: random.Random) -> str:
    """One address of a random kind: realistic, unusual ASCII, unusual domain, role name, trailing white
    space, at a length limit, or mutated."""
    kind = rng.random()
    name = rng.choice(_NAMES)
    if kind < 0.3:  # realistic
        local = name + rng.choice(["", ".", "_", "-", "+tag."]) + rng.choice(_NAMES) + str(rng.randrange(100))
        return local + "@" + rng.choice(_DOMAINS)
    if kind < 0.45:  # every ATEXT special, dots anywhere
        local = "".join(rng.choice(_ATEXT_SPECIALS + ".aZ9") for _ in range(rng.randrange(0, 8)))
        return local + "@" + rng.choice(_DOMAINS + _ODD_DOMAINS)
    if kind < 0.55:  # unusual domains: edge hyphens, numeric TLDs, special-use names, literals, IDNA
        return name + "@" + rng.choice(_ODD_DOMAINS)
    if kind < 0.6:  # role names in any case, and near-misses
        role = "".join(c.upper() if rng.random() < 0.5 else c for c in rng.choice(CASE_INSENSITIVE_MAILBOX_NAMES))
        return role + rng.choice(["", "", "1", ".x", "\u212a"]) + "@" + rng.choice(_DOMAINS)
    if kind < 0.65:  # white space at the end of either part: re's $ would match before a final newline
        space = rng.choice(["\n", "\r\n", " ", "\t", "\n\n"])
        return rng.choice([name + space + "@x.com", name + "@x.com" + space, name + "@x" + space + ".com"])
    if kind < 0.8:  # lengths around every limit: local 64, label 63, domain 253, address 254
        local = "a" * rng.choice([1, 63, 64, 65, rng.randrange(1, 70)])
        label = "b" * rng.choice([62, 63, 64, rng.randrange(1, 70)])
        domain = label + ".com"
        if rng.random() < 0.5:  # pad the domain with labels to a total around 253
            target = rng.choice([252, 253, 254, 255, 250 - len(local), 253 - len(local), 254 - len(local)])
            while len(domain) < target:
                domain = "c" * min(63, max(1, target - len(domain) - 1)) + "." + domain
        return local + "@" + domain
    # mutations of a realistic address: insert, delete, duplicate, swap case; '@' counts 0, 1, 2
    address = list(name + "." + rng.choice(_NAMES) + "@" + rng.choice(_DOMAINS))
    for _ in range(rng.randrange(1, 4)):
        i = rng.randrange(len(address) + 1)
        op = rng.randrange(5)
        if op == 0:
            address.insert(i, rng.choice(_NOISE))
        elif op == 1 and address:
            del address[min(i, len(address) - 1)]
        elif op == 2 and i < len(address):
            address.insert(i, address[i])
        elif op == 3 and i < len(address):
            address[i] = address[i].swapcase()
        else:
            address.append(rng.choice(["\n", " ", "\t", "\r\n", "."]))
    return "".join(address)


def test_the_fast_path_is_the_librarys_own_rule_on_a_million_fuzzed_addresses():
    rng = random.Random(22)
    library: dict[str, tuple[str | None, str | None]] = {}  # each distinct accepted address checked once
    accepted = 0
    for _ in range(1_000_000):
        email = _fuzzed_address(rng)
        fast = standardise._ascii_normalised(email)
        if fast is None:
            continue  # email_to_normalised asks the library
        accepted += 1
        if email not in library:
            library[email] = standardise._library_normalised(email)
        assert library[email] == (fast, None), email
    # the fuzz must exercise both outcomes: about half the addresses are plain and valid
    assert 0.2 < accepted / 1_000_000 < 0.8


@pytest.mark.parametrize(
    "email",
    [
        "a@example.com\n",  # re's $ would match before this newline; \Z does not
        "a@example.com\r\n",
        "Postmaster@x.com",  # a role name: the library lower-cases it
        "INFO@x.com",
        "a@x.test",
        "a@xn--h1alffa9f.xn--p1ai",
        "a" * 65 + "@x.com",  # valid for the library (its local-part limit is checked only when strict)
        "a@" + "b" * 64 + ".com",
    ],
)
def test_the_fast_path_leaves_to_the_library(email):
    assert standardise._ascii_normalised(email) is None
    assert standardise.email_to_normalised(email) == standardise._library_normalised(email)


def test_the_fast_path_takes_the_largest_plain_address():
    email = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * (254 - 64 - 1 - 64 - 64)
    assert len(email) == 254
    assert standardise._ascii_normalised(email) == email == standardise._library_normalised(email)[0]
    assert standardise._ascii_normalised(email + "e") is None


# -------------------------------------------------------------------------------- pandas UDF bodies


def test_udf_bodies_keep_the_batchs_index_and_nulls():
    index = [10, 11, 12, 13]
    countries = pd.Series(["Republic of Korea", None, "Korea", "Republic of Korea"], index=index)
    phones = pd.Series(["02-312-3456", "+44 20 7946 0958", "02-312-3456", None], index=index)
    emails = pd.Series(["info@xn--h1alffa9f.xn--p1ai", None, "bad", "a@example.com"], index=index)

    codes = standardise.country_codes(countries)
    e164 = standardise.phones_e164(phones, codes)
    normalised = standardise.emails_normalised(emails)

    # as lists: assert_series_equal would let NaN pass for None, which phonenumbers cannot take as a region
    assert codes.index.tolist() == e164.index.tolist() == normalised.index.tolist() == index
    assert codes.tolist() == ["KR", None, None, "KR"]
    assert e164.tolist() == ["+8223123456", "+442079460958", None, None]
    assert normalised.to_dict("list") == {
        "email": ["info@россия.рф", None, None, "a@example.com"],
        "error": [None, None, "An email address must have an @-sign.", None],
    }


@pytest.mark.unit
def test_every_code_this_module_emits_reads_back_as_itself():
    emitted = set(standardise.COUNTRY_ALIASES.values()) | {c.alpha_2 for c in pycountry.countries}
    # but Namibia's NA, which in a country column far more often means "not available" (NOT_A_COUNTRY)
    assert {code for code in emitted if standardise.country_to_code(code) != code} == {"NA"}
