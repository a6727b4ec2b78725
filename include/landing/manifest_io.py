"""Reading and publishing a landed batch's ``_manifest.json``, always through lakehouse_jobs.manifest's
BatchManifest: nothing is published that its readers (the Spark jobs, the reconciliation) would refuse,
and nothing is read without the same checks.

Publishing is one PUT of the manifest (atomic on S3): the batch readers see switches from the files the
old manifest lists to those of the new one at once (docs/conventions.md).
"""

from __future__ import annotations

from include.landing.layout import manifest_key
from lakehouse_jobs.manifest import BatchManifest


def read_manifest(s3, bucket: str, table: str, batch_id: str) -> BatchManifest:
    """The published manifest of a batch (`s3`: a boto3 S3 client). Raises the client's NoSuchKey when the
    batch has none, lakehouse_jobs.manifest.ManifestError when it is invalid."""
    key = manifest_key(table, batch_id)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return BatchManifest.from_json(body, source=f"s3://{bucket}/{key}")


def published_manifest(s3, bucket: str, table: str, batch_id: str) -> BatchManifest | None:
    """read_manifest, or None when the batch has published nothing (no manifest yet, or an attempt of a
    first extract in progress)."""
    try:
        return read_manifest(s3, bucket, table, batch_id)
    except s3.exceptions.NoSuchKey:
        return None


def publish_manifest(s3, bucket: str, manifest: BatchManifest, extra_args: dict) -> str:
    """Write `manifest` as its batch's ``_manifest.json`` in one PUT; return the key written.

    `extra_args`: the PUT's encryption and tagging arguments (s3_writer.sse_args, retention.batch_object_args).
    Raises lakehouse_jobs.manifest.ManifestError, before writing anything, when the manifest would not pass
    its readers' checks; botocore's ClientError when S3 refuses the PUT.
    """
    key = manifest_key(manifest.table, manifest.batch_id)
    body = manifest.to_json()
    BatchManifest.from_json(body, source=f"s3://{bucket}/{key}")
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="application/json", **extra_args)
    return key
