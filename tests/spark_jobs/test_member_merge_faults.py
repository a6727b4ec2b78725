"""Faults of the member_merge job on local Spark and Delta: a crash before the commit, a crash after it,
and two runs of one batch at once. Each must leave one effective change and no duplicate key."""

from __future__ import annotations

import threading

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from lakehouse_jobs import hadoop_fs, member_merge
from tests.spark_jobs.test_member_merge import BATCH_1, GOOD_ROWS, Lake, delta_version, member_row, write_batch

pytestmark = pytest.mark.integration


def merge_commits(spark, table: str) -> int:
    return DeltaTable.forPath(spark, table).history().where("operation = 'MERGE'").count()


def assert_one_row_per_member(spark, table: str, expected: int) -> None:
    members = spark.read.format("delta").load(table)
    assert members.count() == members.select("member_id").distinct().count() == expected


def test_crash_while_writing_files_leaves_the_table_unchanged_and_the_retry_commits_once(
        spark, tmp_path, monkeypatch):
    lake = Lake(tmp_path)
    manifest_path, _ = write_batch(lake.landing, BATCH_1, GOOD_ROWS)
    real_source = member_merge.merge_source

    @F.udf("boolean")
    def executor_dies(member_id):
        raise RuntimeError("executor lost while writing the MERGE's files")

    def dying_source(valid, quarantined):  # the MERGE's write stage fails after it has started writing
        return real_source(valid, quarantined).where(executor_dies("member_id"))

    monkeypatch.setattr(member_merge, "merge_source", dying_source)
    with pytest.raises(Exception, match="executor lost"):
        lake.run(manifest_path, BATCH_1)
    version_after_crash = delta_version(spark, lake.table)  # the table may exist (created), unmerged
    assert merge_commits(spark, lake.table) == 0
    assert spark.read.format("delta").load(lake.table).count() == 0
    assert not lake.result_path(BATCH_1).exists()

    monkeypatch.setattr(member_merge, "merge_source", real_source)
    lake.run(manifest_path, BATCH_1)
    assert delta_version(spark, lake.table) == version_after_crash + 1 and merge_commits(spark, lake.table) == 1
    assert_one_row_per_member(spark, lake.table, len(GOOD_ROWS))


def test_crash_after_the_commit_is_harmless_to_retry(spark, tmp_path, monkeypatch):
    lake = Lake(tmp_path)
    manifest_path, _ = write_batch(lake.landing, BATCH_1, GOOD_ROWS)
    real_write = hadoop_fs.write_text

    def dies_before_the_result(*args):
        raise RuntimeError("driver killed after the commit")

    monkeypatch.setattr(hadoop_fs, "write_text", dies_before_the_result)
    with pytest.raises(RuntimeError, match="driver killed"):
        lake.run(manifest_path, BATCH_1)
    monkeypatch.setattr(hadoop_fs, "write_text", real_write)
    table_after_crash = spark.read.format("delta").load(lake.table).drop("_updated_at").collect()

    result = lake.run(manifest_path, BATCH_1)  # the task's retry
    assert lake.reconcile(manifest_path, result) | {"delta_version": None} == {
        "batch_id": BATCH_1, "landed_rows": 20, "valid_rows": 20, "quarantined_rows": 0, "quarantine_reasons": {},
        "inserted_rows": 0,
        "updated_rows": 0, "deleted_rows": 0, "delta_rows": 20, "delta_version": None}
    assert sorted(spark.read.format("delta").load(lake.table).drop("_updated_at").collect()) == \
        sorted(table_after_crash)


def test_two_runs_of_one_batch_at_once_make_one_change(spark, tmp_path):
    lake = Lake(tmp_path)
    first_manifest, _ = write_batch(lake.landing, BATCH_1, GOOD_ROWS)
    lake.run(first_manifest, BATCH_1)
    batch_2 = "extract_date=2026-11-21"
    changed = [member_row(0, email="changed@example.com")] + GOOD_ROWS[1:] + [member_row(50)]
    manifest_2, _ = write_batch(lake.landing, batch_2, changed)

    results, errors = [], []

    def run() -> None:
        try:  # a session each, as two drivers would have
            results.append(lake.run(manifest_2, batch_2, spark=spark.newSession()))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not errors, errors
    assert_one_row_per_member(spark, lake.table, 21)
    # one run inserted and updated; the other, decided after the winner's commit (or retried after a
    # conflict), found nothing left to change
    changes = sorted((r["rows_after"] - r["rows_before"], lake.reconcile(manifest_2, r)["updated_rows"])
                     for r in results)
    assert changes == [(0, 0), (1, 1)]
