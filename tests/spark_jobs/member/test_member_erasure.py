"""The erasure proof: after lakehouse_jobs.member.erasure, the member cannot be recovered from any retained
version of any table (time travel), nor from any file left in the tables' folders, while every other
member is untouched; rerunning the request changes nothing."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from delta.tables import DeltaTable

from dev.pii_scan import searchable
from lakehouse_jobs import pii
from lakehouse_jobs.member import erasure as member_erasure
from lakehouse_jobs.tables import MEMBER_PII_TABLES
from tests.spark_jobs.member.test_member_job import (
    AT_1,
    AT_2,
    BATCH_1,
    BATCH_2,
    GOOD_ROWS,
    Lake,
    member_id,
    member_row,
    write_batch,
)

pytestmark = pytest.mark.integration

ERASED = member_id(0)
BATCH_3 = "extract_date=2026-11-22"


def member_rows_by_version(spark, path: str):
    """Each retained version of a table: (version, the member's rows in it, or the error reading them
    raised: a version whose files are vacuumed cannot be read, which is the point)."""
    for row in DeltaTable.forPath(spark, path).history().select("version").collect():
        df = spark.read.format("delta").option("versionAsOf", row["version"]).load(path)
        try:
            yield row["version"], df.where(f"lower(trim(member_id)) = '{ERASED}'").collect()
        except Exception as e:  # noqa: BLE001 - a version whose files are gone is unrecoverable
            assert "FILE_NOT_EXIST" in str(e) or "FileNotFound" in str(e), e
            yield row["version"], e


def traces(spark, lake: Lake) -> set[bytes]:
    """Everything that would identify the member in a file: its id, its email hash and every ciphertext
    it ever had, from every version of every table."""
    found = {ERASED.encode(), ERASED.upper().encode()}
    for spec in MEMBER_PII_TABLES:
        path = str(lake.root / spec.name)
        for _, rows in member_rows_by_version(spark, path):
            for r in rows:
                found |= {bytes(v) for k, v in r.asDict().items() if k.endswith("_enc") and v}
                found |= {r[k].encode() for k in ("email_hash",) if k in r and r[k]}
    return found


def files_holding(lake: Lake, needles: set[bytes]) -> list[str]:
    hits = []
    for file in (lake.root).rglob("*"):
        if file.is_file() and not file.name.endswith(".crc"):
            text = searchable(file.name, file.read_bytes())
            if any(n in text for n in needles):
                hits.append(str(file.relative_to(lake.root)))
    return hits


def others(spark, lake: Lake) -> dict[str, set]:
    """Every other member's rows in each table, as comparable tuples."""
    def rows(name: str) -> set:
        df = (spark.read.format("delta").load(str(lake.root / name))
              .where(f"lower(trim(coalesce(member_id, ''))) != '{ERASED}'").drop("_updated_at", "quarantined_at"))
        return {tuple(bytes(v) if isinstance(v, bytearray) else v for v in r) for r in df.collect()}

    return {spec.name: rows(spec.name) for spec in MEMBER_PII_TABLES}


def test_an_erased_member_is_unrecoverable_and_nobody_else_changes(spark, tmp_path):
    lake = Lake(tmp_path)
    # the member in every table: two versions in dim_member, then a quarantined row with its id in
    # another spelling (as the source may hold it)
    rows = GOOD_ROWS
    lake.run(write_batch(lake.landing, BATCH_1, rows, AT_1)[0], BATCH_1)
    changed = [member_row(0, email="new@example.com")] + rows[1:]
    lake.run(write_batch(lake.landing, BATCH_2, changed, AT_2)[0], BATCH_2)
    bad = member_row(0, member_id=f" {ERASED.upper()} ", email="not-an-address")
    lake.run(write_batch(lake.landing, BATCH_3, [bad] + rows[1:], "2026-11-22T19:00:00+00:00")[0], BATCH_3,
             "--max-quarantine-ratio", "0.1")
    needles = traces(spark, lake)
    assert len(needles) > 10 and files_holding(lake, needles), "the member must be in the tables first"
    before = others(spark, lake)

    # what a writer still running beside the erasure has written and not yet committed (no log names it),
    # and what a writer that failed two hours ago left: the purge keeps the first (deleting it would break the
    # writer's commit: delta-io/delta#1470) and removes the second, older than any running writer's files
    in_flight, orphan = lake.root / "member" / "part-in-flight.parquet", lake.root / "member" / "part-orphan.parquet"
    for f in (in_flight, orphan):
        pq.write_table(pa.table({"note": ["written, not yet committed"]}), f)
    two_hours_ago = time.time() - 2 * 3600
    os.utime(orphan, (two_hours_ago, two_hours_ago))

    def erase() -> dict:
        return member_erasure.main(["--member-id", ERASED, "--tables-root", str(lake.root), "--request-id", "t",
                                    "--result-path", str(tmp_path / "erasure.json"), "--writer-hours", "1"],
                                   spark=spark).to_dict()

    result = erase()

    assert in_flight.exists() and not orphan.exists()

    assert result["rows_removed"] == {"member": 1, "dim_member": 2, "member_quarantine": 1}
    assert result["rows_left"] == {"member": 0, "dim_member": 0, "member_quarantine": 0}
    for spec in MEMBER_PII_TABLES:  # time travel: every retained version is empty of the member, or unreadable
        for version, rows in member_rows_by_version(spark, str(lake.root / spec.name)):
            assert isinstance(rows, Exception) or rows == [], (spec.name, version)
    assert files_holding(lake, needles) == []  # nor any file left: data, deletion vectors, log, checkpoints
    assert others(spark, lake) == before

    again = erase()  # harmless to rerun

    assert again["rows_removed"] == {"member": 0, "dim_member": 0, "member_quarantine": 0}
    assert others(spark, lake) == before
    requests = spark.read.format("delta").load(str(lake.root / "erasure_requests")).collect()
    keys = pii.PiiKeys.from_env()
    assert [r["request_hash"] for r in requests] == [hmac.new(keys.hmac_key, ERASED.encode(), hashlib.sha256)
                                                     .hexdigest()]
    assert '"member": 1' in requests[0]["removed"]  # the first run's counts are kept
    assert files_holding(lake, {ERASED.encode()}) == []


def test_a_member_id_that_is_not_a_uuid_is_refused(spark, tmp_path):
    with pytest.raises(ValueError, match="must be a lower-case UUID"):
        member_erasure.main(["--member-id", "x' OR 1=1 --", "--tables-root", str(tmp_path), "--request-id", "t",
                             "--result-path", str(Path(tmp_path) / "r.json")], spark=spark)
