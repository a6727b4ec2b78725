"""kill -9 of a running re-extract: the published batch stays readable and unchanged, and the retry
publishes an exact batch and removes what the killed attempt left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from dev.seed_members import generate_members, load_members, setup_schema
from lakehouse_jobs.manifest import BatchManifest

pytestmark = pytest.mark.integration

DB = "extract_kill_test"
ROWS = 400_000


@pytest.fixture
def kill_source(mysql_env, mysql_root):
    cur = mysql_root.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")
    setup_schema(mysql_root, DB, mysql_env["MYSQL_EXTRACT_USER"], mysql_env["MYSQL_EXTRACT_PASSWORD"])
    load_members(mysql_root, generate_members(ROWS, seed=5))
    yield
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")


def extract_cmd_env(mysql_env, bucket: str) -> dict[str, str]:
    env = dict(os.environ)
    env["AIRFLOW_CONN_MYSQL_MEMBERS"] = (
        f"mysql://{mysql_env['MYSQL_EXTRACT_USER']}:{mysql_env['MYSQL_EXTRACT_PASSWORD']}"
        f"@{mysql_env['MYSQL_HOST']}:{mysql_env['MYSQL_PORT']}/{DB}?charset=utf8mb4")
    env["LANDING_BUCKET"] = bucket
    # and no change state: the test profile's lakehouse bucket may hold one the e2e tests left (a change set
    # would land beside the snapshot)
    env["LAKEHOUSE_BUCKET"] = bucket
    env["EXTRACT_ROWS_PER_FILE"] = "100000"
    return env


def listing(s3, bucket: str) -> dict[str, str]:
    return {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_killed_rerun_leaves_the_batch_and_retry_is_exact(kill_source, mysql_env, s3, scratch_bucket):
    # one run id for all three, as the tries of one task: the retry takes over the killed try's lease
    cmd = [sys.executable, "-m", "include.extract", "--date", "2026-11-26", "--run-id", "manual__killed"]
    env = extract_cmd_env(mysql_env, scratch_bucket)
    manifest_key = "member/extract_date=2026-11-26/_manifest.json"
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    published = listing(s3, scratch_bucket)
    assert len(published) == 5  # the manifest and its 4 files

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if any(k.endswith("/part-00000.parquet") for k in listing(s3, scratch_bucket).keys() - published):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the extract finished before it could be killed: give it more rows"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    after_kill = listing(s3, scratch_bucket)
    assert {k: v for k, v in after_kill.items() if k in published} == published, "the killed re-run changed the batch"
    assert any(k.endswith("/_lease.json") for k in after_kill), "the killed re-run held no lease"

    # the retry is the same run (as Airflow's next try of the task is): it takes the killed try's lease over
    retry = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert retry.returncode == 0, retry.stderr[-3000:]
    manifest = BatchManifest.from_json(s3.get_object(Bucket=scratch_bucket, Key=manifest_key)["Body"].read())
    assert manifest.row_count == ROWS
    assert [f.rows for f in manifest.files] == [100_000] * 4
    listed = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=scratch_bucket)["Contents"]}
    assert {f.path.split("/", 3)[3]: f.bytes for f in manifest.files} == \
        {k: v for k, v in listed.items() if k != manifest_key}
    assert not s3.list_multipart_uploads(Bucket=scratch_bucket).get("Uploads")
