"""kill -9 of a running extract: no manifest appears, and the retry publishes an exact batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dev.seed_members import generate_members, load_members, setup_schema

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
    env["EXTRACT_ROWS_PER_FILE"] = "100000"
    return env


def test_killed_extract_publishes_nothing_and_retry_is_exact(kill_source, mysql_env, s3, scratch_bucket):
    cmd = [sys.executable, "-m", "include.extract", "--date", "2026-11-26"]
    env = extract_cmd_env(mysql_env, scratch_bucket)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_file = "member/extract_date=2026-11-26/part-00000.parquet"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            listed = s3.list_objects_v2(Bucket=scratch_bucket).get("Contents", [])
            if any(o["Key"] == first_file for o in listed):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the extract finished before it could be killed: give it more rows"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=scratch_bucket).get("Contents", [])]
    assert first_file in keys
    assert not any(k.endswith("_manifest.json") for k in keys), "a killed extract published its batch"

    retry = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert retry.returncode == 0, retry.stderr[-3000:]
    manifest = json.loads(s3.get_object(Bucket=scratch_bucket,
                                        Key="member/extract_date=2026-11-26/_manifest.json")["Body"].read())
    assert manifest.row_count == ROWS
    assert [f.rows for f in manifest.files] == [100_000] * 4
    listed = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=scratch_bucket)["Contents"]}
    assert {f.path.split("/", 3)[3]: f.bytes for f in manifest.files} == \
        {k: v for k, v in listed.items() if not k.endswith("_manifest.json")}
    assert not s3.list_multipart_uploads(Bucket=scratch_bucket).get("Uploads")
