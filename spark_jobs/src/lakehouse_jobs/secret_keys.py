"""Secret keys from the environment: base64 of exactly 32 bytes, checked, never echoed. Pure Python, so the
Spark jobs (lakehouse_jobs.pii) and the extract (lakehouse_jobs.change_hash) read their keys one way."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

KEY_BYTES = 32  # AES-256; and an HMAC-SHA-256 or keyed BLAKE2b key of 256 bits (RFC 2104, section 3)


class PiiKeyError(RuntimeError):
    """A key is missing or malformed. The message names the variable, never its value."""


def read_key(env: Mapping[str, str], name: str, where: str) -> bytes:
    """The 32-byte key in `env[name]` (standard base64). `where` tells the reader of an error where the key
    should come from. Raises PiiKeyError when the variable is unset, not base64, or of another length."""
    value = env.get(name)
    if not value:
        raise PiiKeyError(f"{name} is not set: {where}")
    try:
        key = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise PiiKeyError(f"{name} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise PiiKeyError(f"{name} must be base64 of {KEY_BYTES} bytes, it decodes to {len(key)}")
    return key
