"""The row hash that change detection compares: computed by the extract as it streams a table
(include/extract/change_set.py), landed with every row as ``_row_hash``, stored by the member job as the
member table's ``source_hash``, and compared against the job's change state the next day.

``row_hashes``: BLAKE2b (RFC 7693) keyed with LAKEHOUSE_CHANGE_HASH_KEY, 32-byte digests, over an unambiguous
encoding of the row (each value as ``<UTF-8 length>:<text>`` or ``-`` for null, joined with ``|``) prefixed
with the contract's effective_rules_version and ENCODING. Keyed, because a bare hash of a row with a known member_id
would let anyone holding the table confirm a guessed email or phone number. The key lives where the
extract runs (Airflow) and where the rows are plaintext anyway; docs/pii.md draws that trust boundary.

Built on pyarrow compute (the encoding) and hashlib (the digests): about 0.5 µs a row
(tests/spark_jobs/test_change_hash.py checks the encoding and the key). Pure pyarrow: no pyspark.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse_jobs.secret_keys import read_key

CHANGE_HASH_KEY_ENV = "LAKEHOUSE_CHANGE_HASH_KEY"
DIGEST_BYTES = 32  # 256 bits, stored as 64 hex digits in the member table's source_hash (lakehouse_jobs.tables)
ENCODING = "h1"  # change it with the encoding below; every stored hash then differs and all rows reprocess


def change_hash_key(env: Mapping[str, str] | None = None) -> bytes:
    """The 32-byte key from LAKEHOUSE_CHANGE_HASH_KEY (base64). Raises secret_keys.PiiKeyError when unset or
    malformed."""
    return read_key(os.environ if env is None else env, CHANGE_HASH_KEY_ENV,
                    "the extract's change-detection key, from the Airflow deployment's secrets (docs/pii.md)")


def _encoded(values: pa.Array) -> pa.Array:
    text = pc.cast(values, pa.string())  # dates as YYYY-MM-DD
    length = pc.cast(pc.binary_length(text), pa.string())
    return pc.fill_null(pc.binary_join_element_wise(length, text, ":"), "-")


def _contiguous(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def row_hashes(rows: pa.RecordBatch | pa.Table, columns: list[str], rules_version: str, key: bytes) -> pa.Array:
    """One 32-byte digest (pa.binary(32), never null) per row of `rows`, over `columns` in that order.

    Equal values give equal digests whatever the chunking; the version prefix makes every digest change
    with `rules_version` or ENCODING. Raises KeyError for a missing column.
    """
    n = rows.num_rows
    if n == 0:
        return pa.array([], pa.binary(DIGEST_BYTES))
    prefix = pa.array([f"{ENCODING}|{rules_version}"] * n, pa.string())
    encoded = [_encoded(_contiguous(rows.column(c))) for c in columns]
    joined = pc.cast(pc.binary_join_element_wise(prefix, *encoded, "|"), pa.binary())
    base = hashlib.blake2b(key=key, digest_size=DIGEST_BYTES)

    def digest(message: bytes) -> bytes:
        h = base.copy()
        h.update(message)
        return h.digest()

    out = b"".join([digest(m) for m in joined.to_pylist()])
    return pa.Array.from_buffers(pa.binary(DIGEST_BYTES), n, [None, pa.py_buffer(out)])
