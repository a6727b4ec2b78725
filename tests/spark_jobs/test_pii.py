"""Tests of lakehouse_jobs.pii: keyed hashes against Python's hmac and RFC 4231, AES-GCM round trips, key
loading, and keys kept out of query plans and error messages."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import pytest
from pyspark.sql import functions as F

from lakehouse_jobs import pii

KEYS = pii.PiiKeys(hmac_key=secrets.token_bytes(32), encryption_key=secrets.token_bytes(32))
TEXTS = ["member1@example.com", "李小龍", "👩‍👩‍👧 O'Brien", "Zoe\u0301", "", None]


def hashed(spark, keys: pii.PiiKeys, values: list[str | None]) -> list[str | None]:
    df = spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i int, v string")
    out = pii.with_keys(spark, df, keys).select("i", pii.keyed_hash(F.col("v")).alias("h"))
    return [r["h"] for r in sorted(out.collect())]


@pytest.mark.unit
def test_keyed_hash_is_hmac_sha256(spark):
    expected = [None if v is None else hmac.new(KEYS.hmac_key, v.encode(), hashlib.sha256).hexdigest()
                for v in TEXTS]
    assert hashed(spark, KEYS, TEXTS) == expected


@pytest.mark.unit
@pytest.mark.parametrize(("key", "data", "digest"), [
    # RFC 4231, test cases 1 and 2 (a key shorter than the hash, and one shorter than 4 bytes)
    (b"\x0b" * 20, "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", "what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
])
def test_keyed_hash_matches_rfc_4231(spark, key, data, digest):
    assert hashed(spark, pii.PiiKeys(hmac_key=key, encryption_key=KEYS.encryption_key), [data]) == [digest]


@pytest.mark.unit
def test_row_hash_tells_null_from_empty_and_changes_with_the_rules_version(spark):
    df = spark.createDataFrame([(1, "a", None), (2, "a", ""), (3, "a", None)], "i int, x string, y string")
    keyed = pii.with_keys(spark, df, KEYS)
    rows = {r["i"]: r for r in keyed.select(
        "i", pii.row_hash("x", "y", version="v1").alias("v1"), pii.row_hash("x", "y", version="v2").alias("v2"),
    ).collect()}
    assert rows[1]["v1"] == rows[3]["v1"] != rows[2]["v1"]
    assert rows[1]["v1"] != rows[1]["v2"]


@pytest.mark.unit
def test_encryption_round_trips_is_randomised_and_needs_the_key(spark):
    df = spark.createDataFrame([(i, v) for i, v in enumerate(TEXTS)], "i int, v string")
    def encrypted_once(name: str):
        return pii.drop_keys(pii.with_keys(spark, df, KEYS).select("i", "v", pii.encrypt("v").alias(name)))

    # two separate encryptions (in one projection Spark would compute the same expression once)
    encrypted = encrypted_once("c1").join(encrypted_once("c2").drop("v"), "i")
    rows = sorted(pii.with_keys(spark, encrypted, KEYS).select("i", "v", "c1", "c2", pii.decrypt("c1").alias("d"))
                  .collect())
    assert [r["d"] for r in rows] == TEXTS
    # GCM with a random IV: the same value encrypts differently every time, and never to itself
    assert all(r["c1"] != r["c2"] for r in rows if r["v"] is not None)
    assert all(r["v"].encode() not in r["c1"] for r in rows if r["v"])
    other = pii.PiiKeys(hmac_key=KEYS.hmac_key, encryption_key=secrets.token_bytes(32))
    wrong = pii.with_keys(spark, encrypted, other).select(pii.decrypt("c1").alias("d")).collect()
    assert {r["d"] for r in wrong} == {None}  # the tag does not authenticate: null, not garbage


@pytest.mark.unit
def test_keys_stay_out_of_plans_and_error_messages(spark):
    """A query that fails analysis prints its plan in the exception (and the driver log); keys that were
    literals would be in it. As columns of a joined row they are not."""
    df = spark.createDataFrame([("x@example.com",)], "email string")
    protected = pii.with_keys(spark, df, KEYS).select(pii.keyed_hash(F.col("email")).alias("h"),
                                                      pii.encrypt("email").alias("c"), "email")
    with pytest.raises(Exception) as failure:
        protected.select("no_such_column").collect()
    plan = protected._jdf.queryExecution().toString()
    for text in (str(failure.value), plan):
        for key in (KEYS.hmac_key, KEYS.encryption_key):
            assert key.hex() not in text.lower() and base64.b64encode(key).decode() not in text


@pytest.mark.unit
def test_keys_from_the_environment_with_errors_that_never_show_the_value():
    good = base64.b64encode(b"k" * 32).decode()
    keys = pii.PiiKeys.from_env({pii.HMAC_KEY_ENV: good, pii.ENCRYPTION_KEY_ENV: good})
    assert keys.hmac_key == b"k" * 32 and "k" * 32 not in repr(keys)

    short = base64.b64encode(b"secret-but-short").decode()
    cases = {
        "is not set": {pii.ENCRYPTION_KEY_ENV: good},
        "is not valid base64": {pii.HMAC_KEY_ENV: "not base64 at all!", pii.ENCRYPTION_KEY_ENV: good},
        "must be base64 of 32 bytes, it decodes to 16": {pii.HMAC_KEY_ENV: short, pii.ENCRYPTION_KEY_ENV: good},
    }
    for message, env in cases.items():
        with pytest.raises(pii.PiiKeyError, match=message) as failure:
            pii.PiiKeys.from_env(env)
        assert pii.HMAC_KEY_ENV in str(failure.value)
        assert short not in str(failure.value) and "not base64 at all" not in str(failure.value)
