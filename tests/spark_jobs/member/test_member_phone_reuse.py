"""A changed member's phone is standardised again only when its phone or resolved country changed, and a stored
phone_e164 is reused only from rows written under today's rules (lakehouse_jobs.member.clean.known_phones;
issue 22 item 6). To tell a reused value from a recomputed one, the member table's stored phone_e164 is
replaced by a sentinel that phonenumbers never gives for these inputs: a reused phone keeps the sentinel."""

from __future__ import annotations

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from lakehouse_jobs import pii, standardise
from tests.spark_jobs.member.test_member_job import Lake, decrypted, member_id, member_row, write_batch

pytestmark = pytest.mark.integration

SENTINEL = "+19999999999"
JP_PHONE, OTHER_JP_PHONE = "03-1234-5678", "03-9876-5432"


def phones(spark, path: str, current_only: bool = False) -> dict[str, str | None]:
    table = decrypted(spark, path, "phone_e164")
    if current_only:
        table = table.where("is_current")
    return {r["member_id"]: r["phone_e164"] for r in table.select("member_id", "phone_e164").collect()}


def plant_sentinel(spark, path: str) -> None:
    """Every stored phone_e164 of the table at `path` replaced by SENTINEL, encrypted with the job's key."""
    key = bytearray(pii.PiiKeys.from_env().encryption_key)
    DeltaTable.forPath(spark, path).update(
        set={"phone_e164_enc": F.aes_encrypt(F.lit(SENTINEL), F.lit(key), F.lit("GCM"))})


def test_only_a_changed_phone_or_country_is_standardised_again(spark, tmp_path):
    lake = Lake(tmp_path)
    day1 = [member_row(n, phone_number=JP_PHONE) for n in range(4)]
    day2 = [
        member_row(0, phone_number=JP_PHONE, email="new0@example.com"),  # phone and country as they were
        member_row(1, phone_number=OTHER_JP_PHONE, email="new1@example.com"),  # a new phone
        member_row(2, phone_number=JP_PHONE, country="United States"),  # a new country: JP_PHONE is no US number
        member_row(3, phone_number=JP_PHONE),  # unchanged: not even a candidate
    ]
    day3 = [*day2[1:], member_row(0, phone_number=JP_PHONE, email="newer0@example.com")]
    manifests = [write_batch(lake.landing, f"extract_date=2026-11-2{i}", rows, f"2026-11-2{i}T19:00:00+00:00")
                 for i, rows in enumerate((day1, day2, day3), start=1)]

    lake.run(manifests[0][0], "extract_date=2026-11-21")
    assert set(phones(spark, lake.table).values()) == {standardise.phone_to_e164(JP_PHONE, "JP")} == {"+81312345678"}
    plant_sentinel(spark, lake.table)

    result = lake.run(manifests[1][0], "extract_date=2026-11-22")
    assert result["valid_rows"] == 3 and result["rules_version"]
    assert phones(spark, lake.table) == {
        member_id(0): SENTINEL,  # reused, as stored
        member_id(1): "+81398765432",  # standardised again
        member_id(2): None,  # standardised again: read in the US and as a US number, JP_PHONE is neither
        member_id(3): SENTINEL,  # untouched
    }
    # dim_member's new versions take the same values as the member table
    assert phones(spark, lake.dim, current_only=True) == {
        member_id(0): SENTINEL, member_id(1): "+81398765432", member_id(2): None, member_id(3): "+81312345678"}

    # the rows of day 2 as if another phonenumbers release had written them: nothing stored is reused
    DeltaTable.forPath(spark, f"{lake.root}/member_batches").update(
        condition="batch_id = 'extract_date=2026-11-22'",
        set={"result": F.regexp_replace("result", r'"rules_version": "[^"]*"', '"rules_version": "older"')})
    lake.run(manifests[2][0], "extract_date=2026-11-23")
    assert phones(spark, lake.table)[member_id(0)] == "+81312345678"
