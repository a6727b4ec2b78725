"""Retention of landed batches (include/landing/retention.py): the lifecycle configuration is valid for S3,
MinIO stores it as given and applies it to exactly the batch objects an extract writes."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import os
import re
import subprocess
import sys

import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from include import settings
from include.extract.engine import extract_table
from include.landing import lease, retention
from include.landing.retention import (
    ABORT_RULE_ID,
    BATCH_OBJECT_TAGS,
    EXPIRE_RULE_ID,
    apply_lifecycle,
    expire_batches,
    lifecycle_configuration,
)
from include.landing.s3_writer import MiB, S3MultipartWriter, sse_args
from lakehouse_jobs.contracts import MEMBER, Column, SourceContract, mysql_ddl
from tests.services import mysql_connect, require_env

DB = "retention_test"
# the member table with a watermark column, so that an incremental extract writes the state object too
CONTRACT = SourceContract("member", "member_id", MEMBER.columns + (Column("updated_at", "timestamp"),),
                          watermark_column="updated_at")
TAG_SET = [{"Key": k, "Value": v} for k, v in BATCH_OBJECT_TAGS.items()]


def put_params_errors(configuration: dict) -> str:
    """botocore's own validation of PutBucketLifecycleConfiguration's parameters, offline ("" if valid)."""
    model = botocore.session.get_session().get_service_model("s3")
    shape = model.operation_model("PutBucketLifecycleConfiguration").input_shape
    report = ParamValidator().validate({"Bucket": "landing", "LifecycleConfiguration": configuration}, shape)
    return report.generate_report() if report.has_errors() else ""


# ------------------------------------------------------------------------------------------------ unit
@pytest.mark.unit
@pytest.mark.parametrize("abort", [True, False])
@pytest.mark.parametrize("days", [1, 14, 3650])
def test_configuration_passes_botocores_parameter_validation(days, abort):
    configuration = lifecycle_configuration(days, abort_incomplete_uploads=abort)
    assert put_params_errors(configuration) == ""
    rules = {r["ID"]: r for r in configuration["Rules"]}
    assert sorted(rules) == sorted([EXPIRE_RULE_ID] + [ABORT_RULE_ID] * abort)
    assert rules[EXPIRE_RULE_ID] == {"ID": EXPIRE_RULE_ID, "Status": "Enabled", "Expiration": {"Days": days},
                                     "Filter": {"Tag": {"Key": "lakehouse-retention", "Value": "landing-batch"}}}
    if abort:  # S3 refuses AbortIncompleteMultipartUpload in a rule that filters on tags
        assert rules[ABORT_RULE_ID] == {"ID": ABORT_RULE_ID, "Status": "Enabled", "Filter": {"Prefix": ""},
                                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}


@pytest.mark.unit
def test_the_validation_catches_a_broken_configuration():
    """The check above can fail: botocore refuses what S3 would."""
    broken = lifecycle_configuration(14)
    broken["Rules"][0]["Expiration"]["Days"] = "14"
    del broken["Rules"][1]["Status"]
    report = put_params_errors(broken)
    assert "Invalid type for parameter LifecycleConfiguration.Rules[0].Expiration.Days" in report
    assert 'Missing required parameter in LifecycleConfiguration.Rules[1]: "Status"' in report


@pytest.mark.unit
def test_retention_days_default_and_bounds():
    assert lifecycle_configuration()["Rules"][0]["Expiration"]["Days"] == settings.LANDING_RETENTION_DAYS
    assert settings._int({}, "LANDING_RETENTION_DAYS", 14, minimum=1) == 14
    assert settings._int({"LANDING_RETENTION_DAYS": "30"}, "LANDING_RETENTION_DAYS", 14, minimum=1) == 30
    for bad in ("0", "-3", "two weeks"):
        with pytest.raises(ValueError, match="LANDING_RETENTION_DAYS="):
            settings._int({"LANDING_RETENTION_DAYS": bad}, "LANDING_RETENTION_DAYS", 14, minimum=1)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="at least 1"):
            lifecycle_configuration(bad)
    assert retention.BATCH_OBJECT_TAGGING == "lakehouse-retention=landing-batch"


# ---------------------------------------------------------------------------------- against MinIO
def rules_of(s3, bucket: str) -> list[dict]:
    return s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]


@pytest.mark.integration
def test_applied_to_minio_reads_back_equal_and_twice_is_harmless(s3, scratch_bucket):
    other = {"ID": "infra-tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 3}}
    s3.put_bucket_lifecycle_configuration(Bucket=scratch_bucket, LifecycleConfiguration={"Rules": [other]})
    ours = lifecycle_configuration(abort_incomplete_uploads=False)["Rules"]

    first = apply_lifecycle(s3, scratch_bucket)
    assert first == {"bucket": scratch_bucket, "changed": True, "rules": [EXPIRE_RULE_ID], "kept": ["infra-tmp"],
                     "abort_incomplete_uploads": False}  # MinIO: see the next test
    assert rules_of(s3, scratch_bucket) == [other] + ours  # the bucket's other rule is kept

    again = apply_lifecycle(s3, scratch_bucket)
    assert again == {**first, "changed": False}
    assert rules_of(s3, scratch_bucket) == [other] + ours

    shorter = apply_lifecycle(s3, scratch_bucket, days=7)
    assert shorter["changed"]
    assert rules_of(s3, scratch_bucket) == [other] + lifecycle_configuration(7, abort_incomplete_uploads=False)["Rules"]


@pytest.mark.integration
def test_minio_refuses_the_abort_rule(s3, scratch_bucket):
    """Why apply_lifecycle leaves the abort rule out on MinIO. If this fails, MinIO takes it now: send it."""
    with pytest.raises(ClientError) as err:
        s3.put_bucket_lifecycle_configuration(Bucket=scratch_bucket, LifecycleConfiguration=lifecycle_configuration())
    assert "not well-formed" in err.value.response["Error"]["Message"]
    assert err.value.response["ResponseMetadata"]["HTTPHeaders"]["server"] == "MinIO"


@pytest.mark.integration
def test_the_command_applies_it_through_the_airflow_connection(s3, scratch_bucket):
    require_env("AIRFLOW_CONN_AWS_LAKEHOUSE")
    env = {**os.environ, "LANDING_BUCKET": scratch_bucket, "LANDING_RETENTION_DAYS": "9"}
    cmd = [sys.executable, "-m", "include.landing.retention", "apply"]
    for changed in (True, False):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        # the result is the last line (Airflow's hook logs to stdout before it)
        assert json.loads(done.stdout.splitlines()[-1])["changed"] is changed
        assert rules_of(s3, scratch_bucket) == lifecycle_configuration(9, abort_incomplete_uploads=False)["Rules"]


def tags_and_expiry(s3, bucket: str, key: str) -> tuple[list[dict], str | None]:
    """The object's tags and MinIO's prediction of its expiry under the bucket's lifecycle (x-amz-expiration)."""
    return (s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"],
            s3.head_object(Bucket=bucket, Key=key).get("Expiration"))


def expiry_of(s3, bucket: str, key: str) -> dt.datetime:
    tags, expiration = tags_and_expiry(s3, bucket, key)
    assert tags == TAG_SET, key
    match = re.fullmatch(r'expiry-date="([^"]+)", rule-id="([^"]+)"', expiration or "")
    assert match and match[2] == EXPIRE_RULE_ID, (key, expiration)
    return email.utils.parsedate_to_datetime(match[1])


def assert_expires_after_retention(s3, bucket: str, key: str) -> None:
    """S3 (and MinIO) expire an object at the first midnight UTC after its creation plus the retention."""
    written = s3.head_object(Bucket=bucket, Key=key)["LastModified"]
    due = written + dt.timedelta(days=settings.LANDING_RETENTION_DAYS + 1)
    assert expiry_of(s3, bucket, key) == due.replace(hour=0, minute=0, second=0, microsecond=0), key


@pytest.fixture
def source(mysql_env, mysql_root):
    """A member table with a watermark column, 50 rows, readable by the extract user."""
    cur = mysql_root.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")
    cur.execute(f"CREATE DATABASE {DB} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    cur.execute(f"USE {DB}")
    cur.execute(mysql_ddl(CONTRACT))
    cur.executemany("INSERT INTO member (member_id, first_name, email, updated_at) VALUES (%s, %s, %s, %s)",
                    [(f"m{i:03d}", f"name {i}", f"m{i}@example.com", dt.datetime(2026, 1, 1) + dt.timedelta(hours=i))
                     for i in range(50)])
    cur.execute(f"GRANT SELECT ON {DB}.member TO %s@'%%'", (mysql_env["MYSQL_EXTRACT_USER"],))
    conn = mysql_connect(mysql_env, mysql_env["MYSQL_EXTRACT_USER"], mysql_env["MYSQL_EXTRACT_PASSWORD"], DB)
    yield conn
    conn.close()
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")


@pytest.mark.integration
def test_an_extract_tags_its_batch_objects_and_nothing_else(source, s3, scratch_bucket, monkeypatch):
    apply_lifecycle(s3, scratch_bucket)
    lease_writes = []
    real_put = lease.Lease._put

    def recording_put(self, **condition):  # the lease exists only while an extract runs: look at each write
        real_put(self, **condition)
        lease_writes.append((self.key, *tags_and_expiry(s3, self.bucket, self.key)))

    monkeypatch.setattr(lease.Lease, "_put", recording_put)
    batches = [
        extract_table(source, s3, contract=CONTRACT, bucket=scratch_bucket, batch_id="extract_date=2026-11-26",
                      run_id="t", rows_per_file=20, partition_cols=("country",)),
        extract_table(source, s3, contract=CONTRACT, bucket=scratch_bucket, batch_id="extract_date=2026-11-27",
                      run_id="t", mode="incremental", rows_per_file=20),
    ]
    batch_keys = set()
    for manifest in batches:
        assert len(manifest.files) == 3 and manifest.row_count == 50
        batch_keys |= {f"member/{manifest.batch_id}/_manifest.json"}
        batch_keys |= {f.path.removeprefix(f"s3://{scratch_bucket}/") for f in manifest.files}
    state = "member/_state/high_watermark.json"
    stored = {o["Key"] for o in s3.list_objects_v2(Bucket=scratch_bucket)["Contents"]}
    assert stored == batch_keys | {state}  # every object the extracts left is checked below
    for key in sorted(batch_keys):
        assert_expires_after_retention(s3, scratch_bucket, key)
    assert tags_and_expiry(s3, scratch_bucket, state) == ([], None)
    # each extract writes its lease twice (taken, then confirmed before publishing): never tagged
    assert [key for key, *_ in lease_writes] == [f"member/{m.batch_id}/_lease.json" for m in batches for _ in "12"]
    assert all((tags, expiry) == ([], None) for _, tags, expiry in lease_writes), lease_writes


@pytest.mark.integration
def test_a_multipart_upload_carries_the_tag(s3, scratch_bucket):
    """Files above one part (16 MiB in the extract) are multipart uploads: the tag rides on their creation."""
    apply_lifecycle(s3, scratch_bucket)
    extra = {**sse_args("AES256"), "Tagging": retention.BATCH_OBJECT_TAGGING}
    with S3MultipartWriter(s3, scratch_bucket, "member/b/attempt=x/part-00000.parquet", extra_args=extra,
                           part_size=5 * MiB) as out:
        out.write(b"x" * (6 * MiB))  # two parts
    assert out._parts and len(out._parts) == 2
    assert_expires_after_retention(s3, scratch_bucket, "member/b/attempt=x/part-00000.parquet")


@pytest.mark.integration
def test_expire_batches_removes_whole_batches_older_than_the_retention(s3, scratch_bucket):
    """The maintenance DAG's sweep: a batch extracted 15 days ago goes, manifest included; a batch of
    yesterday and the extract's state stay."""
    from lakehouse_jobs.manifest import BatchManifest

    now = dt.datetime(2026, 11, 30, 12, tzinfo=dt.timezone.utc)
    for batch_id, age in (("extract_date=2026-11-15", 15), ("extract_date=2026-11-29", 1)):
        at = (now - dt.timedelta(days=age)).isoformat()
        s3.put_object(Bucket=scratch_bucket, Key=f"member/{batch_id}/part-00000.parquet", Body=b"x")
        manifest = BatchManifest(table="member", batch_id=batch_id, run_id="r", mode="snapshot", source_query="q",
                                 row_count=0, schema=[], schema_hash="sha256:" + "0" * 64, files=[],
                                 created_at=at, extracted_at=at)
        s3.put_object(Bucket=scratch_bucket, Key=f"member/{batch_id}/_manifest.json", Body=manifest.to_json())
    s3.put_object(Bucket=scratch_bucket, Key="member/_state/high_watermark.json", Body=b"{}")

    result = expire_batches(s3, scratch_bucket, "member", days=14, now=now)

    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=scratch_bucket)["Contents"])
    assert result == {"batches_expired": 1, "objects_deleted": 2, "retention_days": 14}
    assert keys == ["member/_state/high_watermark.json", "member/extract_date=2026-11-29/_manifest.json",
                    "member/extract_date=2026-11-29/part-00000.parquet"]
    assert expire_batches(s3, scratch_bucket, "member", days=14, now=now)["batches_expired"] == 0
