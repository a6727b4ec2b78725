"""The member key's three forms (lakehouse_jobs.keys) agree on tricky inputs, and the UUID pattern is the
one every check uses."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from lakehouse_jobs.keys import UUID_PATTERN, is_member_id, member_key, member_key_arrow, member_key_column

pytestmark = pytest.mark.unit

ID = "0b9c6c1e-4f3a-4d2b-9a51-3c2e1f0a7b6d"
# input -> member_key: white space of every kind trimmed at both ends (not inside), case folded, blank -> None
CASES = {
    ID: ID,
    ID.upper(): ID,
    f"  {ID}\t": ID,
    f"\n{ID}\r\n": ID,
    f"\u00a0{ID}\u2003": ID,           # no-break space, em space
    f"\u3000{ID.upper()}\u202f": ID,   # ideographic space, narrow no-break space
    "\u2028\x0b\x0c\x85": None,        # line separator, vertical tab, form feed, next line: blank
    "": None,
    "   ": None,
    None: None,
    "Ab Cd": "ab cd",                  # inner white space is kept
    "\x1cX\x1c": "\x1cx\x1c",          # information separators are not white space (Unicode PropList)
    "ÉCOLE": "école",
}


def test_the_python_rule():
    assert {k: member_key(k) for k in CASES} == CASES


def test_the_arrow_twin_agrees():
    assert member_key_arrow(pa.array(list(CASES), pa.string())).to_pylist() == list(CASES.values())
    chunked = pa.chunked_array([list(CASES)[:3], list(CASES)[3:]], pa.string())
    assert member_key_arrow(chunked).to_pylist() == list(CASES.values())


def test_the_spark_twin_agrees(spark):
    df = spark.createDataFrame([(i, k) for i, k in enumerate(CASES)], "i int, member_id string")
    got = [r["k"] for r in df.select("i", member_key_column("member_id").alias("k")).orderBy("i").collect()]
    assert got == list(CASES.values())


def test_one_uuid_pattern():
    assert is_member_id(ID) and not is_member_id(ID.upper()) and not is_member_id(f"{ID}\n")
    assert not is_member_id(None) and not is_member_id(ID[:-1])
    assert re.fullmatch(UUID_PATTERN, ID)
