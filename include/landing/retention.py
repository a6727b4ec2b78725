"""Retention of landed batches: the landing bucket's S3 lifecycle configuration, as code.

Batches hold members' names, emails, phones and addresses in plaintext (the Spark job needs them so, to
standardise and hash them), and a new one lands every day. So every object of a batch, its Parquet files
and its ``_manifest.json``, expires LANDING_RETENTION_DAYS (default 14, include/settings.py) after it was
written, by a lifecycle rule of the bucket: S3 deletes them, not a task that could stop running.

S3 lifecycle filters select objects by key prefix and/or object tags, never by exclusion, and the objects
that must stay (the extract's state ``<table>/_state/high_watermark.json``, and the lease ``_lease.json``
inside the batch's own prefix) share the batch's prefixes. So the extract and the erasure tag each batch
object as they write it (``batch_object_args``) and the rule selects that tag; untagged objects never
expire. A second rule aborts multipart uploads still open after a day (a killed extract's parts,
which no object lists and no tag reaches).

    python -m include.landing.retention apply   # put the rules on LANDING_BUCKET through AWS_CONN_ID
    python -m include.landing.retention show    # print the configuration, e.g. for infrastructure code

Applying is idempotent and keeps rules of the bucket whose IDs are not ours (a PUT replaces the whole
configuration, so they are read first and sent back). On AWS the worker's role needs
s3:GetLifecycleConfiguration and s3:PutLifecycleConfiguration for `apply`, and the extract's role
s3:PutObjectTagging, which S3 checks for a PUT carrying tags.

MinIO (the local S3) honours the tag rule, but refuses a rule whose only action is
AbortIncompleteMultipartUpload ("not well-formed", up to at least the release dev/stack.sh builds) and
aborts uploads older than 24 hours by itself (its `api stale_uploads_expiry`); so `apply` leaves that rule
out on a server that answers as MinIO.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
from urllib.parse import urlencode

from botocore.exceptions import ClientError

from include import settings
from include.landing.cleanup import delete_batch
from include.landing.listing import batch_ids
from include.landing.manifest_io import published_manifest

log = logging.getLogger(__name__)

# The tag every batch object carries, and the x-amz-tagging value that sets it at upload
BATCH_OBJECT_TAGS = {"lakehouse-retention": "landing-batch"}
BATCH_OBJECT_TAGGING = urlencode(BATCH_OBJECT_TAGS)

EXPIRE_RULE_ID = "lakehouse-landing-batch-expiry"
ABORT_RULE_ID = "lakehouse-abort-incomplete-multipart-uploads"
RULE_IDS = (EXPIRE_RULE_ID, ABORT_RULE_ID)  # the rules this module owns on the bucket
ABORT_AFTER_DAYS = 1  # an extract runs for minutes (its task times out after 20): a day-old upload is dead


def batch_object_args(extra_args: dict) -> dict:
    """`extra_args` (a PUT's or multipart upload's boto3 arguments, e.g. s3_writer.sse_args) plus the
    retention tag: for the objects of a batch (data files, manifest), which expire. Never for the lease or
    the extract's state, which must not."""
    return {**extra_args, "Tagging": BATCH_OBJECT_TAGGING}


def lifecycle_configuration(days: int | None = None, *, abort_incomplete_uploads: bool = True) -> dict:
    """The boto3 `LifecycleConfiguration` of the landing bucket: batch objects expire after `days`
    (default LANDING_RETENTION_DAYS); with `abort_incomplete_uploads`, uploads open for a day are aborted.

    S3 counts the days from an object's creation and rounds up to the next midnight UTC.
    """
    days = settings.LANDING_RETENTION_DAYS if days is None else days
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"retention must be a whole number of days, at least 1, not {days!r}")
    [(key, value)] = BATCH_OBJECT_TAGS.items()
    rules = [{
        "ID": EXPIRE_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Tag": {"Key": key, "Value": value}},
        "Expiration": {"Days": days},
    }]
    if abort_incomplete_uploads:
        # a rule of its own: S3 refuses AbortIncompleteMultipartUpload in a rule filtered by tags
        rules.append({
            "ID": ABORT_RULE_ID,
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_AFTER_DAYS},
        })
    return {"Rules": rules}


def _server(response: dict) -> str:
    return response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("server", "")


def current_rules(s3, bucket: str) -> tuple[list[dict], dict]:
    """The bucket's lifecycle rules (none: []) and the rest of the GET's answer."""
    try:
        response = s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    except ClientError as e:
        if e.response["Error"]["Code"] != "NoSuchLifecycleConfiguration":
            raise
        return [], e.response
    return response.get("Rules", []), response


def _canonical(rules: list[dict]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in rules)


def apply_lifecycle(s3, bucket: str, days: int | None = None) -> dict:
    """Put the retention rules on `bucket` (a boto3 S3 client), keeping the bucket's other rules.

    Idempotent: when the bucket already has exactly these rules nothing is written. Returns what was done:
    {"bucket", "changed", "rules" (ours), "kept" (other rules' IDs), "abort_incomplete_uploads"}.
    """
    rules, response = current_rules(s3, bucket)
    minio = _server(response).lower() == "minio"
    if minio:
        log.info("%s is MinIO: no AbortIncompleteMultipartUpload rule (MinIO refuses it and aborts uploads "
                 "older than its api stale_uploads_expiry, 24 h by default, by itself)", bucket)
    ours = lifecycle_configuration(days, abort_incomplete_uploads=not minio)["Rules"]
    kept = [r for r in rules if r.get("ID") not in RULE_IDS]
    wanted = kept + ours
    done = {"bucket": bucket, "changed": _canonical(rules) != _canonical(wanted),
            "rules": [r["ID"] for r in ours], "kept": [r.get("ID") for r in kept],
            "abort_incomplete_uploads": not minio}
    if kept:
        log.info("%s: keeping lifecycle rules that are not ours: %s", bucket, done["kept"])
    if not done["changed"]:
        log.info("%s: lifecycle rules already in place", bucket)
        return done
    params = {"Bucket": bucket, "LifecycleConfiguration": {"Rules": wanted}}
    if response.get("TransitionDefaultMinimumObjectSize"):  # AWS: a bucket setting the PUT would reset
        params["TransitionDefaultMinimumObjectSize"] = response["TransitionDefaultMinimumObjectSize"]
    s3.put_bucket_lifecycle_configuration(**params)
    log.info("%s: batch objects expire %d days after they were written", bucket, ours[0]["Expiration"]["Days"])
    return done


def expire_batches(s3, bucket: str, table: str, days: int | None = None, now: dt.datetime | None = None) -> dict:
    """Delete every object of each batch of `table` whose manifest says it was extracted more than `days`
    (LANDING_RETENTION_DAYS) ago: what the lifecycle rule does, done now and exactly, by the maintenance DAG.
    The manifest goes last, so a batch is never published with files missing. Returns counts only."""
    days = settings.LANDING_RETENTION_DAYS if days is None else days
    cutoff = (now or dt.datetime.now(dt.timezone.utc)) - dt.timedelta(days=days)
    expired = objects = 0
    for batch_id in batch_ids(s3, bucket, table):
        manifest = published_manifest(s3, bucket, table, batch_id)
        if manifest is None:
            continue  # not a published batch (an attempt in progress)
        if dt.datetime.fromisoformat(manifest.extracted_at) >= cutoff:
            continue
        objects += delete_batch(s3, bucket, table, batch_id)
        expired += 1
    return {"batches_expired": expired, "objects_deleted": objects, "retention_days": days}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The landing bucket's retention: an S3 lifecycle configuration.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("apply", help=f"put the rules on LANDING_BUCKET ({settings.LANDING_BUCKET}) through "
                                      f"the Airflow connection {settings.AWS_CONN_ID}")
    commands.add_parser("show", help="print the LifecycleConfiguration as JSON (AWS's, with the abort rule)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.command == "show":
        print(json.dumps(lifecycle_configuration(), indent=2))
        return 0
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook  # as the extract gets its client

    print(json.dumps(apply_lifecycle(S3Hook(aws_conn_id=settings.AWS_CONN_ID).get_conn(), settings.LANDING_BUCKET)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
