"""Protection of personal data in the Delta tables: keyed hashes and column encryption.

The scheme (docs/pii.md says why, and who sees what):
- Direct identifiers (contract columns of PII class "direct": names, email, phone, street address) are
  stored only as AES-256-GCM ciphertext, ``<column>_enc`` (Spark's ``aes_encrypt`` in GCM mode: a random
  96-bit IV per value and a 128-bit tag, so the same value encrypts differently each time).
- Because ciphertext is randomised, nothing joins, groups or compares on it: joins use ``email_hash``
  and change detection uses row hashes, each an HMAC-SHA-256 (RFC 2104) under a second secret key, so
  that the low-entropy values cannot be found by hashing guesses without the key.
- Quasi-identifiers (city, country, registration date) stay in plaintext for analytics; Unity Catalog
  tags them and can mask them (lakehouse_jobs.unity_catalog).

Keys: two 256-bit keys, base64 in the driver's environment (``LAKEHOUSE_PII_HMAC_KEY``,
``LAKEHOUSE_PII_ENCRYPTION_KEY``). On Databricks the run's cluster sets them from the secret scope with
``spark_env_vars`` secret references (include/databricks_runs.py), so no key is in a job parameter, a
task log or the run's JSON; locally the runner resolves the same references from its secret store.

Keys never enter a query plan as literals: Spark prints literals in plans, in the SQL UI and in the
message of any analysis error, which would put the key in the driver log. They travel as the columns of a
one-row DataFrame cross-joined (broadcast) onto the rows being protected (``with_keys``), so plans show
only a column name. tests/spark_jobs/test_pii.py fails a query on purpose and checks its error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse_jobs.secret_keys import KEY_BYTES, PiiKeyError, read_key

HMAC_KEY_ENV = "LAKEHOUSE_PII_HMAC_KEY"
ENCRYPTION_KEY_ENV = "LAKEHOUSE_PII_ENCRYPTION_KEY"
__all__ = ["KEY_BYTES", "PiiKeyError", "PiiKeys", "with_keys", "drop_keys", "keyed_hash", "row_hash", "encrypt",
           "decrypt"]

# columns with_keys adds; key material, dropped by drop_keys before anything is written
_IPAD, _OPAD, _AES = "_pii_hmac_ipad", "_pii_hmac_opad", "_pii_aes_key"
_SHA256_BLOCK = 64  # bytes (FIPS 180-4): the HMAC pads its key to the hash's block size


@dataclass(frozen=True)
class PiiKeys:
    hmac_key: bytes = field(repr=False)
    encryption_key: bytes = field(repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PiiKeys:
        """Both keys from `env` (default os.environ): base64 of exactly 32 bytes each.

        Raises PiiKeyError when a variable is unset, not base64, or of another length."""
        env = os.environ if env is None else env
        return cls(hmac_key=_key(env, HMAC_KEY_ENV), encryption_key=_key(env, ENCRYPTION_KEY_ENV))


def _key(env: Mapping[str, str], name: str) -> bytes:
    return read_key(env, name, "the PII keys come from the Databricks secret scope through the cluster's "
                               "spark_env_vars (docs/pii.md)")


def with_keys(spark: SparkSession, df: DataFrame, keys: PiiKeys) -> DataFrame:
    """`df` with the key columns that keyed_hash() and encrypt() read (module docstring: why columns, not
    literals). Remove them with drop_keys() before writing."""
    padded = keys.hmac_key.ljust(_SHA256_BLOCK, b"\0")
    row = (
        bytearray(b ^ 0x36 for b in padded),  # RFC 2104: K XOR ipad
        bytearray(b ^ 0x5C for b in padded),  # RFC 2104: K XOR opad
        bytearray(keys.encryption_key),
    )
    key_df = spark.createDataFrame([row], f"{_IPAD} binary, {_OPAD} binary, {_AES} binary")
    return df.crossJoin(F.broadcast(key_df))


def drop_keys(df: DataFrame) -> DataFrame:
    return df.drop(_IPAD, _OPAD, _AES)


def keyed_hash(value: Column) -> Column:
    """HMAC-SHA-256 (RFC 2104) of `value`'s UTF-8 bytes as 64 lower-case hex characters; null for null.

    Needs with_keys' columns. Built from Spark's sha2 so it runs in the JVM, vectorised, with no Python
    worker; tests/spark_jobs/test_pii.py checks it against Python's hmac module and RFC 4231's vectors.
    """
    message = value if isinstance(value, Column) else F.col(value)
    data = F.when(message.isNotNull(), F.encode(message.cast("string"), "UTF-8"))
    inner = F.unhex(F.sha2(F.concat(F.col(_IPAD), data), 256))
    return F.sha2(F.concat(F.col(_OPAD), inner), 256)


def row_hash(*columns: str | Column, version: str) -> Column:
    """keyed_hash of the columns' values as one JSON object (names, values and nulls are unambiguous),
    prefixed with `version`, so that changing the rules the hash stands for changes every hash."""
    return keyed_hash(F.concat(F.lit(f"{version}|"), F.to_json(F.struct(*columns), {"ignoreNullFields": "false"})))


def encrypt(value: Column | str) -> Column:
    """AES-256-GCM ciphertext (binary: 12-byte IV, ciphertext, 16-byte tag) of `value`; null for null.
    Needs with_keys' columns."""
    column = value if isinstance(value, Column) else F.col(value)
    return F.when(column.isNotNull(), F.aes_encrypt(column.cast("string"), F.col(_AES), F.lit("GCM")))


def decrypt(ciphertext: Column | str) -> Column:
    """The plaintext string of an encrypt() value; null for null or for a value this key cannot
    authenticate. Needs with_keys' columns."""
    column = ciphertext if isinstance(ciphertext, Column) else F.col(ciphertext)
    return F.try_aes_decrypt(column, F.col(_AES), F.lit("GCM")).cast("string")
