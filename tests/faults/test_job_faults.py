"""Faults of the member job as a process of its own, as on a cluster (issue 23 item 1): killed with SIGKILL in
the middle of its MERGE, and S3 gone between its commit and its result file. The job runs in a child Python
with its own local Spark (dev/local_spark.py, the runner's configuration); after each fault the table is
readable at every version, holds each member once (I2), and the retry leaves one effective change (I4).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from delta.tables import DeltaTable

from lakehouse_jobs.member import job as member_merge
from tests.faults.conftest import s3_through
from tests.spark_jobs.member.test_member_job import AT_1, BATCH_1, GOOD_ROWS, Lake, member_row, write_batch

pytestmark = pytest.mark.faults

JOB = """
import json, sys
from pyspark.sql import SparkSession
from dev.local_spark import local_spark_conf
builder = SparkSession.builder.master("local[1]").appName("fault")
for key, value in {**local_spark_conf(), **json.loads(sys.argv[2])}.items():
    builder = builder.config(key, value)
from lakehouse_jobs.member import job
job.main(json.loads(sys.argv[1]), spark=builder.getOrCreate())
"""
# S3A retries a refused connection for about a minute by default: one attempt, so the fault shows at once
S3A_FAIL_FAST = {"spark.hadoop.fs.s3a.attempts.maximum": "1", "spark.hadoop.fs.s3a.retry.limit": "1",
                 "spark.hadoop.fs.s3a.retry.interval": "100ms"}


def start_job(args: list[str], env: dict[str, str] | None = None, conf: dict[str, str] | None = None,
              ) -> subprocess.Popen:
    # without the test session's gateway variables: the child must start a JVM of its own, not drive ours
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_GATEWAY_")}
    return subprocess.Popen([sys.executable, "-c", JOB, json.dumps(args), json.dumps(conf or {})],
                            env={**inherited, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def versions_readable(spark, path: str) -> list[int]:
    """Every version of the table, each read in full (a version naming a missing file fails here)."""
    out = []
    for row in DeltaTable.forPath(spark, path).history().select("version").collect():
        spark.read.format("delta").option("versionAsOf", row["version"]).load(path).count()
        out.append(row["version"])
    return sorted(out)


def assert_one_row_per_member(spark, path: str) -> None:
    table = spark.read.format("delta").load(path)
    assert table.count() == table.select("member_id").distinct().count()


def test_the_job_killed_mid_merge_leaves_the_table_as_it_was_and_the_retry_commits_once(spark, tmp_path):
    """SIGKILL while the member MERGE writes its files (dim_member's MERGE, which comes first, has committed)."""
    lake = Lake(tmp_path)
    rows = [member_row(n) for n in range(100_000)]  # files written over seconds: a kill falls between them
    manifest, _ = write_batch(lake.landing, BATCH_1, rows, AT_1)
    args = ["--manifest", manifest, "--tables-root", str(lake.root), "--result-path",
            str(lake.result_path(BATCH_1))]
    job = start_job(args)
    member = Path(lake.table)
    deadline = time.monotonic() + 300
    # the member MERGE is the job's last write of data: its first file, before its commit, is the moment
    while not (list(member.glob("*.parquet")) or list(member.glob("*/*.parquet"))):
        assert job.poll() is None, f"the job ended before its MERGE wrote a file:\n{job.stdout.read()[-3000:]}"
        assert time.monotonic() < deadline, "the job wrote no file of the member table in 5 minutes"
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGKILL)  # the driver JVM and its Python workers with it
    job.wait(30)
    assert not lake.result_path(BATCH_1).exists()

    before = versions_readable(spark, lake.table)  # created by ensure_table, no data commit: killed before it
    assert spark.read.format("delta").load(lake.table).count() == 0
    # dim_member's MERGE runs first and had committed: the kill fell between the two tables' commits
    dim_before = versions_readable(spark, lake.dim)
    assert spark.read.format("delta").load(lake.dim).count() == len(rows)

    retry = lake.run(manifest, BATCH_1, spark=spark)
    assert retry["rows_after"] == len(rows)
    assert versions_readable(spark, lake.table) == before + [before[-1] + 1]  # one commit
    assert_one_row_per_member(spark, lake.table)
    # the retry finds the batch's versions in dim_member already: no second version of any member
    assert versions_readable(spark, lake.dim) == dim_before
    assert spark.read.format("delta").load(lake.dim).where("is_current").count() == len(rows)
    again = lake.run(manifest, BATCH_1, spark=spark)
    assert again["delta_version"] is None  # I4: nothing to change


def test_s3_gone_after_the_commit_fails_the_job_and_the_retry_changes_nothing(spark, s3, s3_env, s3_proxy,
                                                                                scratch_bucket, tmp_path):
    """The job commits its MERGEs, then S3 goes away before its result file: the run fails (no result, so
    the DAG's reconcile never sees a half-reported run); the retry finds the change applied, commits nothing
    new to member and writes its result."""
    local = Lake(tmp_path)
    manifest_path, _ = write_batch(local.landing, BATCH_1, GOOD_ROWS, AT_1)
    through = s3_through(s3_proxy, s3_env)
    prefix = f"member/{BATCH_1}/"
    manifest = json.loads(Path(manifest_path).read_text())
    for f in manifest["files"]:  # the batch on S3, as the extract lands it
        key = prefix + Path(f["path"]).name
        s3.put_object(Bucket=scratch_bucket, Key=key, Body=Path(f["path"]).read_bytes())
        f["path"] = f"s3://{scratch_bucket}/{key}"
    s3.put_object(Bucket=scratch_bucket, Key=prefix + "_manifest.json", Body=json.dumps(manifest).encode())
    root = f"s3://{scratch_bucket}"
    args = ["--manifest", f"{root}/{prefix}_manifest.json", "--tables-root", f"{root}/delta",
            "--result-path", f"{root}/_results/{BATCH_1}.json"]

    job = start_job(args, {"S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_proxy.port}"}, S3A_FAIL_FAST)
    deadline = time.monotonic() + 300
    commit = "delta/member/_delta_log/00000000000000000001.json"  # the MERGE after the table's creation
    while not through.list_objects_v2(Bucket=scratch_bucket, Prefix=commit).get("KeyCount"):
        assert job.poll() is None, f"the job ended before its commit:\n{job.stdout.read()[-3000:]}"
        assert time.monotonic() < deadline, "no commit of the member table in 5 minutes"
        time.sleep(0.05)
    s3_proxy.enabled(False)
    output, _ = job.communicate(timeout=600)
    assert job.returncode != 0, output[-3000:]
    s3_proxy.enabled(True)
    assert not s3.list_objects_v2(Bucket=scratch_bucket, Prefix="_results/").get("KeyCount")

    path = f"{root}/delta/member"
    committed = versions_readable(spark, path)
    retry = member_merge.main(args, spark=spark).to_dict()
    assert retry["delta_version"] is None and retry["rows_after"] == len(GOOD_ROWS)
    assert versions_readable(spark, path) == committed
    assert_one_row_per_member(spark, path)
    assert s3.list_objects_v2(Bucket=scratch_bucket, Prefix="_results/").get("KeyCount") == 1
