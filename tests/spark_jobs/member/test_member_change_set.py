"""Change detection across the extract and the job, on the real MariaDB, MinIO and Spark: the extract lands
a change set against the job's change state, the job applies only that, and falls back to the whole snapshot
whenever the state no longer describes the table (issue 22, items 3 and 5)."""

from __future__ import annotations

import datetime as dt

import pytest
from delta.tables import DeltaTable

from dev.seed_members import COLUMNS, generate_members, load_members, setup_schema
from include.extract.change_set import StateLocation
from include.extract.engine import extract_table
from include.reconcile import ReconciliationError, confirm_unchanged_batch
from lakehouse_jobs.contracts import MEMBER
from lakehouse_jobs.member import job as member_merge
from tests.services import mysql_connect

pytestmark = pytest.mark.integration

DB = "change_set_test"


@pytest.fixture
def source(mysql_env, mysql_root):
    cur = mysql_root.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")
    setup_schema(mysql_root, DB, mysql_env["MYSQL_EXTRACT_USER"], mysql_env["MYSQL_EXTRACT_PASSWORD"])
    cur.execute(f"USE {DB}")
    load_members(mysql_root, generate_members(400, seed=11))
    mysql_root.commit()
    reader = mysql_connect(mysql_env, mysql_env["MYSQL_EXTRACT_USER"], mysql_env["MYSQL_EXTRACT_PASSWORD"], DB)
    yield reader, cur, mysql_root
    reader.close()
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")


class Day:
    """One bucket holding the landing batches, the Delta tables and the change state, as on S3."""

    def __init__(self, s3, bucket: str, conn):
        self.s3, self.bucket, self.conn, self.day = s3, bucket, conn, 0
        self.location = StateLocation(bucket, "_state/member/", "delta/member/")

    def extract(self, *, rerun: bool = False):
        """The next day's batch, or with `rerun` the last day's batch extracted again (a cleared DAG run)."""
        self.day += not rerun
        return extract_table(self.conn, self.s3, contract=MEMBER, bucket=self.bucket,
                             batch_id=f"extract_date=2026-11-{self.day:02d}", run_id=f"day{self.day}",
                             change_state=self.location)

    def job(self, spark, manifest) -> dict:
        root = f"s3://{self.bucket}"
        return member_merge.main([
            "--manifest", f"{root}/member/{manifest.batch_id}/_manifest.json", "--tables-root", f"{root}/delta",
            "--result-path", f"{root}/_results/{manifest.batch_id}.json", "--change-state", f"{root}/_state/member",
        ], spark=spark).to_dict()


def table(spark, bucket: str, name: str = "member"):
    return spark.read.format("delta").load(f"s3://{bucket}/delta/{name}")


def test_a_daily_change_lands_and_applies_as_a_change_set(spark, s3, scratch_bucket, source):
    conn, cur, root = source
    day = Day(s3, scratch_bucket, conn)

    first = day.extract()
    assert first.change_set is None  # no state yet: the job compares the whole snapshot
    result = day.job(spark, first)
    assert result["change_detection"].startswith("full snapshot")
    members = result["rows_after"]
    history = DeltaTable.forPath(spark, f"s3://{scratch_bucket}/delta/member").history(1).first()
    # a first load MERGEs with its insert clause only (delta.is_empty): nothing matched, nothing rewritten
    assert history["operation"] == "MERGE" and int(history["operationMetrics"]["numTargetRowsUpdated"]) == 0

    unchanged = day.extract()
    assert unchanged.change_set is not None and unchanged.change_set.is_empty
    assert unchanged.change_set.counts["unchanged"] == unchanged.row_count

    cur.execute("SELECT member_id FROM member WHERE email LIKE '%@%' ORDER BY member_id LIMIT 3")
    changed_ids = [r[0] for r in cur.fetchall()]
    cur.execute("UPDATE member SET email = CONCAT('moved.', email) WHERE member_id IN (%s, %s)", changed_ids[:2])
    cur.execute("DELETE FROM member WHERE member_id = %s", (changed_ids[2],))
    new_id = "00000000-0000-4000-8000-00000000abcd"
    cur.execute(f"INSERT INTO member ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * 9)})",
                (new_id, "Ada", "Lovelace", "ada@example.com", None, None, "London", "United Kingdom",
                 dt.date(2020, 1, 1)))
    root.commit()

    changed = day.extract()
    counts = changed.change_set.counts
    assert (counts["changed"], counts["new"], counts["deleted"]) == (2, 1, 1)
    assert sum(f.rows for f in changed.change_set.files) == 3

    result = day.job(spark, changed)

    assert result["change_detection"] == "change set"
    assert result["rows_after"] == members  # one new, one deleted
    assert result["unchanged_rows"] == changed.row_count - 3
    emails = {r["member_id"]: r["email_hash"] for r in table(spark, scratch_bucket).collect()}
    assert new_id in emails and changed_ids[2] not in emails
    dim = table(spark, scratch_bucket, "dim_member")
    assert dim.where(f"member_id = '{changed_ids[0]}'").count() == 2  # SCD2: a new version
    assert table(spark, scratch_bucket).count() == result["rows_after"]


def test_a_state_the_table_has_moved_past_is_not_used(spark, s3, scratch_bucket, source):
    conn, cur, root = source
    day = Day(s3, scratch_bucket, conn)
    day.job(spark, day.extract())
    path = f"s3://{scratch_bucket}/delta/member"

    # OPTIMIZE rewrites files but not data: the state still holds, and the day needs no job (the DAG's check)
    spark.sql(f"OPTIMIZE delta.`{path}`")
    unchanged = day.extract()
    assert unchanged.change_set.is_empty
    confirmed = confirm_unchanged_batch(s3, unchanged.batch_id, landing_bucket=scratch_bucket,
                                        lakehouse_bucket=scratch_bucket)
    assert confirmed["unchanged_rows"] == unchanged.row_count and confirmed["no_changes"]

    # a data change the job did not make (an erasure, a manual fix): the extract does not trust the state,
    # and the day it was confirmed for no longer reconciles as unchanged
    cur.execute("SELECT member_id FROM member ORDER BY member_id LIMIT 1")
    (gone,) = cur.fetchone()
    DeltaTable.forPath(spark, path).delete(f"member_id = '{gone}'")
    with pytest.raises(ReconciliationError, match="no longer version .* changed the table's data since"):
        confirm_unchanged_batch(s3, unchanged.batch_id, landing_bucket=scratch_bucket, lakehouse_bucket=scratch_bucket)
    stale = day.extract()
    assert stale.change_set is None

    result = day.job(spark, stale)
    assert result["change_detection"].startswith("full snapshot")
    assert result["valid_rows"] >= 1  # the erased-at-the-table member is back, as the source still has it
    assert day.extract().change_set.is_empty  # and the job wrote a new state


def test_the_job_refuses_a_change_set_when_the_table_changed_after_the_extract(spark, s3, scratch_bucket, source):
    conn, _, _ = source
    day = Day(s3, scratch_bucket, conn)
    day.job(spark, day.extract())
    landed = day.extract()
    assert landed.change_set is not None

    path = f"s3://{scratch_bucket}/delta/member"
    (some,) = table(spark, scratch_bucket).select("member_id").limit(1).collect()
    DeltaTable.forPath(spark, path).delete(f"member_id = '{some['member_id']}'")
    result = day.job(spark, landed)

    assert result["change_detection"].startswith("full snapshot: version ")
    assert result["rows_after"] == landed.row_count - result["quarantined_rows"]


def test_a_rule_library_upgrade_standardises_every_row_again_and_says_so(spark, s3, scratch_bucket, source,
                                                                         monkeypatch):
    """Issue 23 item 6: the installed version of a rule library is part of the rules version, so after an
    upgrade the extract lands no change set, the job compares and standardises every row again, names the
    change in its result and reports how many members' values the new library changed (here none: the
    "upgrade" is the same library under another version), and the next day is a change set again."""
    from lakehouse_jobs import contracts

    conn, _, _ = source
    day = Day(s3, scratch_bucket, conn)
    first = day.job(spark, day.extract())
    real = contracts._installed_version
    monkeypatch.setattr(contracts, "_installed_version",
                        lambda name: "99.0.0" if name == "phonenumbers" else real(name))

    upgraded = day.extract()
    assert upgraded.change_set is None  # the state's hashes are of the old library
    result = day.job(spark, upgraded)
    assert result["change_detection"].startswith("full snapshot: the rules changed from member-rules-1+")
    assert "phonenumbers==99.0.0" in result["change_detection"]
    assert result["unchanged_rows"] == 0 and result["valid_rows"] == first["valid_rows"]
    assert result["attributes_changed"] == 0  # same answers: no member gets a new dim_member version
    assert table(spark, scratch_bucket, "dim_member").count() == first["dim_member_rows"]
    assert day.extract().change_set.is_empty  # the new state is of the new rules


def test_a_rerun_of_a_batch_keeps_the_verdicts_it_does_not_evaluate_again(spark, s3, scratch_bucket, source):
    """A cleared DAG run re-extracts its batch after the batch was applied: the change set then holds only
    what changed since, and the rows the first run quarantined that the source still holds unchanged keep
    their quarantine rows; a quarantined row fixed in between loses its verdict and is loaded. Each run keeps
    its own member_batches row (issue 23 item 3)."""
    conn, cur, root = source
    cur.execute("SELECT member_id FROM member ORDER BY member_id LIMIT 3")
    still_bad, fixed, edited = (r[0] for r in cur.fetchall())
    cur.execute("UPDATE member SET registration_date = '2999-01-01' WHERE member_id IN (%s, %s)", (still_bad, fixed))
    root.commit()
    day = Day(s3, scratch_bucket, conn)
    first = day.job(spark, day.extract())
    quarantine = table(spark, scratch_bucket, "member_quarantine")
    verdicts = {r["member_id"]: r["quarantine_reason"] for r in quarantine.where(
        f"batch_id = '{first['batch_id']}'").collect()}
    assert verdicts[still_bad] == verdicts[fixed] == "registration_date_in_future"

    cur.execute("UPDATE member SET registration_date = '2020-01-01' WHERE member_id = %s", (fixed,))
    cur.execute("UPDATE member SET city = CONCAT(city, ' Town') WHERE member_id = %s", (edited,))
    root.commit()
    again = day.extract(rerun=True)
    # the edited member is in the table ("changed"); the fixed one was only quarantined ("new" to the table)
    assert again.batch_id == first["batch_id"]
    assert (again.change_set.counts["changed"], again.change_set.counts["new"]) == (1, 1)
    second = day.job(spark, again)

    after = {r["member_id"]: r["quarantine_reason"] for r in table(spark, scratch_bucket, "member_quarantine")
             .where(f"batch_id = '{first['batch_id']}'").collect()}
    assert after == {k: v for k, v in verdicts.items() if k != fixed}  # still_bad's verdict kept
    assert table(spark, scratch_bucket).where(f"member_id = '{fixed}'").count() == 1
    runs = table(spark, scratch_bucket, "member_batches").where(f"batch_id = '{first['batch_id']}'")
    assert sorted(r["member_version"] for r in runs.collect()) == [first["delta_version"], second["delta_version"]]
