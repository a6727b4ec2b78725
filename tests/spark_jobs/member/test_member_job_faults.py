"""Faults of the member_merge job on local Spark and Delta: a crash before the commit, a crash after it,
and two runs of one batch at once. Each must leave one effective change and no duplicate key."""

from __future__ import annotations

import threading

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from lakehouse_jobs import hadoop_fs
from lakehouse_jobs.member import job as member_merge
from lakehouse_jobs.member import merge_dim_member
from tests.spark_jobs.member.test_member_job import (
    AT_1,
    AT_2,
    BATCH_1,
    BATCH_2,
    GOOD_ROWS,
    Lake,
    delta_version,
    member_id,
    member_row,
    write_batch,
)

pytestmark = pytest.mark.integration


def merge_commits(spark, table: str) -> int:
    return DeltaTable.forPath(spark, table).history().where("operation = 'MERGE'").count()


def assert_one_row_per_member(spark, table: str, expected: int) -> None:
    members = spark.read.format("delta").load(table)
    assert members.count() == members.select("member_id").distinct().count() == expected


def test_crash_while_writing_files_leaves_the_tables_unchanged_and_the_retry_commits_once(
        spark, tmp_path, monkeypatch):
    lake = Lake(tmp_path)
    manifest_path, _ = write_batch(lake.landing, BATCH_1, GOOD_ROWS, AT_1)
    real_protect = member_merge.protect

    @F.udf("boolean")
    def executor_dies(member_id):
        raise RuntimeError("executor lost while writing the MERGE's files")

    def dying_protect(df):  # the first MERGE's write stage fails after it has started
        return real_protect(df).where(executor_dies("member_id"))

    monkeypatch.setattr(member_merge, "protect", dying_protect)
    with pytest.raises(Exception, match="executor lost"):
        lake.run(manifest_path, BATCH_1)
    for table in (lake.table, lake.dim):  # the tables exist (created), unmerged
        assert merge_commits(spark, table) == 0
        assert spark.read.format("delta").load(table).count() == 0
    assert not lake.result_path(BATCH_1).exists()

    monkeypatch.setattr(member_merge, "protect", real_protect)
    lake.run(manifest_path, BATCH_1)
    assert merge_commits(spark, lake.table) == merge_commits(spark, lake.dim) == 1
    assert_one_row_per_member(spark, lake.table, len(GOOD_ROWS))
    assert_one_row_per_member(spark, lake.dim, len(GOOD_ROWS))


def test_crash_between_the_two_merges_is_finished_by_the_retry(spark, tmp_path, monkeypatch):
    """dim_member committed, the member table did not: the retry finds the change again (it is detected
    against the member table) and must not open a second version in dim_member."""
    lake = Lake(tmp_path)
    first, _ = write_batch(lake.landing, BATCH_1, GOOD_ROWS, AT_1)
    lake.run(first, BATCH_1)
    changed = [member_row(0, email="changed@example.com")] + GOOD_ROWS[1:]
    second, _ = write_batch(lake.landing, BATCH_2, changed, AT_2)
    real_merge = member_merge.merge_members

    def dies(*args, **kwargs):
        raise RuntimeError("driver killed between the MERGEs")

    monkeypatch.setattr(member_merge, "merge_members", dies)
    with pytest.raises(RuntimeError, match="between the MERGEs"):
        lake.run(second, BATCH_2)
    monkeypatch.setattr(member_merge, "merge_members", real_merge)
    dim_version = delta_version(spark, lake.dim)

    result = lake.run(second, BATCH_2)

    assert delta_version(spark, lake.dim) == dim_version  # nothing left to do there
    assert lake.reconcile(second, result)["updated_rows"] == 1
    versions = spark.read.format("delta").load(lake.dim).where(f"member_id = '{member_id(0)}'")
    assert sorted((r["is_current"], r["valid_to"] is not None) for r in versions.collect()) == [
        (False, True), (True, True)]


def test_crash_after_the_commit_is_harmless_to_retry(spark, tmp_path, monkeypatch):
    lake = Lake(tmp_path)
    manifest_path, _ = write_batch(lake.landing, BATCH_1, GOOD_ROWS, AT_1)
    real_write = hadoop_fs.write_text

    def dies_before_the_result(*args):
        raise RuntimeError("driver killed after the commit")

    monkeypatch.setattr(hadoop_fs, "write_text", dies_before_the_result)
    with pytest.raises(RuntimeError, match="driver killed"):
        lake.run(manifest_path, BATCH_1)
    monkeypatch.setattr(hadoop_fs, "write_text", real_write)
    versions = delta_version(spark, lake.table), delta_version(spark, lake.dim)

    result = lake.run(manifest_path, BATCH_1)  # the task's retry: everything is applied already

    assert (delta_version(spark, lake.table), delta_version(spark, lake.dim)) == versions
    assert lake.reconcile(manifest_path, result) == {
        "batch_id": BATCH_1, "landed_rows": 20, "unchanged_rows": 20, "valid_rows": 0, "quarantined_rows": 0,
        "quarantine_reasons": {}, "inserted_rows": 0, "updated_rows": 0, "deleted_rows": 0, "delta_rows": 20,
        "delta_version": None, "dim_member_versions_opened": 0, "dim_member_versions_closed": 0,
        "dim_member_version": None, "dim_member_rows": 20, "dim_member_current_rows": 20,
        "change_detection": "full snapshot: the batch has no change set (no change state when it was extracted)"}


def assert_one_current_version_per_member(spark, dim_path: str, rows: int, members: int) -> None:
    dim = spark.read.format("delta").load(dim_path)
    assert dim.count() == rows
    assert dim.where("is_current").select("member_id").distinct().count() == dim.where("is_current").count() == members


def commit_between_the_plan_and_the_merge(monkeypatch, other_run) -> list[bool]:
    """Make `other_run` commit after this run has planned dim_member's MERGE and before the MERGE starts:
    the interleaving two drivers meet only sometimes. Returns a list that is non-empty once it happened."""
    real_materialise = merge_dim_member.materialise
    happened: list[bool] = []

    def materialise_then_let_the_other_run_commit(df):
        planned = real_materialise(df)
        if "_op" in df.columns and not happened:  # dim_member's MERGE source
            happened.append(True)
            other_run()
        return planned

    monkeypatch.setattr(merge_dim_member, "materialise", materialise_then_let_the_other_run_commit)
    return happened


CHANGED_ROWS = [member_row(0, email="changed@example.com")] + GOOD_ROWS[1:] + [member_row(50)]


def test_the_same_batch_committing_between_the_plan_and_the_merge_leaves_one_version(spark, tmp_path, monkeypatch):
    lake = Lake(tmp_path)
    lake.run(write_batch(lake.landing, BATCH_1, GOOD_ROWS, AT_1)[0], BATCH_1)
    manifest_2, _ = write_batch(lake.landing, BATCH_2, CHANGED_ROWS, AT_2)
    happened = commit_between_the_plan_and_the_merge(
        monkeypatch, lambda: lake.run(manifest_2, BATCH_2, spark=spark.newSession()))

    result = lake.run(manifest_2, BATCH_2, spark=spark.newSession())

    assert happened
    assert_one_row_per_member(spark, lake.table, 21)
    assert_one_current_version_per_member(spark, lake.dim, rows=22, members=21)
    assert lake.reconcile(manifest_2, result)["dim_member_versions_opened"] == 0


def test_a_newer_batch_committing_between_the_plan_and_the_merge_fails_the_older_run(
        spark, tmp_path, monkeypatch):
    # check_order passed before the newer batch committed; the older batch's MERGE would close the newer
    # version at an earlier time: the CHECK valid_from < valid_to refuses it, before any table changes
    lake = Lake(tmp_path)
    lake.run(write_batch(lake.landing, BATCH_1, GOOD_ROWS, AT_1)[0], BATCH_1)
    manifest_2, _ = write_batch(lake.landing, BATCH_2, CHANGED_ROWS, AT_2)
    batch_3 = "extract_date=2026-11-22"
    manifest_3, _ = write_batch(lake.landing, batch_3, [member_row(0, email="newer@example.com")] + GOOD_ROWS[1:],
                                "2026-11-22T19:00:00+00:00")
    versions_after_the_newer_batch = []

    def the_newer_batch_commits() -> None:
        lake.run(manifest_3, batch_3, spark=spark.newSession())
        versions_after_the_newer_batch.append((delta_version(spark, lake.table), delta_version(spark, lake.dim)))

    commit_between_the_plan_and_the_merge(monkeypatch, the_newer_batch_commits)

    with pytest.raises(Exception, match="valid_range"):
        lake.run(manifest_2, BATCH_2, spark=spark.newSession())

    assert versions_after_the_newer_batch == [(delta_version(spark, lake.table), delta_version(spark, lake.dim))]
    assert_one_current_version_per_member(spark, lake.dim, rows=21, members=20)
    current = spark.read.format("delta").load(lake.dim).where("is_current").where(
        F.col("member_id") == member_id(0)).select("_batch_id").collect()
    assert [r["_batch_id"] for r in current] == [batch_3]


def test_two_runs_of_one_batch_at_once_make_one_change(spark, tmp_path):
    lake = Lake(tmp_path)
    first_manifest, _ = write_batch(lake.landing, BATCH_1, GOOD_ROWS, AT_1)
    lake.run(first_manifest, BATCH_1)
    manifest_2, _ = write_batch(lake.landing, BATCH_2, CHANGED_ROWS, AT_2)

    results, errors = [], []

    def run() -> None:
        try:  # a session each, as two drivers would have
            results.append(lake.run(manifest_2, BATCH_2, spark=spark.newSession()))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not errors, errors
    assert_one_row_per_member(spark, lake.table, 21)
    # dim_member: member 0 has two versions (one current), member 50 one; nobody has two current versions
    assert_one_current_version_per_member(spark, lake.dim, rows=22, members=21)
    # both runs planned against the table before either committed; the MERGE decided last (or retried after
    # a conflict) found nothing left to change
    assert sorted(lake.reconcile(manifest_2, r)["inserted_rows"] + lake.reconcile(manifest_2, r)["updated_rows"]
                  for r in results) == [0, 2]
