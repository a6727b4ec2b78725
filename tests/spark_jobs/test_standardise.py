"""Standardised country codes and phone numbers (lakehouse_jobs.standardise). Plain Python, no Spark."""

from __future__ import annotations

import pytest

from lakehouse_jobs import standardise


@pytest.mark.unit
@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("France", "FR"),
        ("united kingdom", "GB"),  # case-insensitive
        ("USA", "US"),  # alpha-3 code
        ("Côte d'Ivoire", "CI"),
        ("Reunion", "RE"),  # accent-insensitive ("Réunion")
        ("Slovakia (Slovak Republic)", "SK"),  # bracketed suffix dropped
        ("Turkey", "TR"),  # former name
        ("Micronesia", "FM"),  # unique fuzzy match
        ("Korea", None),  # ambiguous: North or South
        ("Atlantis", None),
        (None, None),
    ],
)
def test_country_to_code(name, code):
    assert standardise.country_to_code(name) == code


@pytest.mark.unit
@pytest.mark.parametrize(
    ("phone", "region", "e164"),
    [
        ("030 12345678", "DE", "+493012345678"),  # national format of the member's country
        ("(213)948-8645x530", "GH", "+12139488645"),  # not valid in Ghana: US fallback, extension dropped
        ("+1-213-948-8645", None, "+12139488645"),
        ("+44 20 7946 0958", "FR", "+442079460958"),  # an explicit country code wins over the region
        ("(555)123-4567", "US", None),  # parseable, but 555 is no US area code
        ("not a phone", "US", None),
        (None, "US", None),
    ],
)
def test_phone_to_e164(phone, region, e164):
    assert standardise.phone_to_e164(phone, region) == e164
