"""The member key and the UUID pattern, each written once.

A member_id is compared in one spelling everywhere: leading and trailing white space removed, lower case
(UUID text is case-insensitive, RFC 9562 section 4), blank -> null. The same rule has three forms that
must agree, kept here side by side and each tested against one table of cases
(tests/spark_jobs/test_keys.py): ``member_key`` (plain Python), ``member_key_column`` (a Spark Column, in
the jobs) and ``member_key_arrow`` (pyarrow.compute, where include/erasure_landing.py scans landed
Parquet). White space is Unicode's White_Space property (tabs, line breaks, no-break and ideographic
spaces...; PropList.txt), written out below rather than taken from pyarrow's utf8_trim_whitespace, which
also strips U+001C..U+001F: a landed id padded with a no-break space is the same member in the landing
erasure, the merge and the Delta erasure, so an erasure misses none of its rows. (The invoice load once
trimmed ASCII spaces only, Spark's trim(); it now uses this rule.)

Lower-casing is each engine's own: Python and Java agree, Arrow's utf8proc differs on a few characters
('İ', a word-final sigma). None of them lower-cases any character into a UUID's alphabet [0-9a-f-], so a
key that is a member_id (UUID_PATTERN) is the same in all three; any other value is quarantined.

Imports neither pyspark nor pyarrow at module level: the Airflow side imports UUID_PATTERN.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column

# a member_id as the tables hold it: a UUID in lower case, 8-4-4-4-12 hex digits
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

# Unicode's White_Space property (PropList.txt), as literal characters: one class that Python's re,
# Java's regex (Spark) and RE2 (pyarrow) read alike
WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_EDGES = f"^[{WHITE_SPACE}]+|[{WHITE_SPACE}]+$"
_EDGES_RE = re.compile(_EDGES)


def member_key(value: str | None) -> str | None:
    """`value` trimmed of white space and lower-cased; None for None or blank."""
    if value is None:
        return None
    return _EDGES_RE.sub("", value).lower() or None


def member_key_column(column: str | Column) -> Column:
    """member_key as a Spark Column expression of a string column (name or Column)."""
    from pyspark.sql import functions as F

    return F.lower(trimmed_column(column))


def trimmed_column(column: str | Column) -> Column:
    """A string column (name or Column) without the white space member_key trims at either end (tabs,
    no-break and ideographic spaces too, not only Spark trim()'s spaces); null when nothing is left."""
    from pyspark.sql import functions as F

    col = F.col(column) if isinstance(column, str) else column
    return F.nullif(F.regexp_replace(col, _EDGES, ""), F.lit(""))


def member_key_arrow(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """member_key of each value of a pyarrow string array."""
    import pyarrow as pa
    import pyarrow.compute as pc

    trimmed = pc.utf8_lower(pc.replace_substring_regex(values, _EDGES, ""))
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def is_member_id(value: object) -> bool:
    """True for a str that is a member_id as the tables hold it (UUID_PATTERN)."""
    return isinstance(value, str) and re.fullmatch(UUID_PATTERN, value) is not None
