"""Deleting landed objects: what no manifest lists (after a publish, an erasure, or a killed attempt), or
a whole batch (retention).

Readers only ever read the files a manifest lists (docs/conventions.md), so deleting unlisted objects is
invisible to them; a batch is deleted with its manifest last, so it is never published with files missing.
"""

from __future__ import annotations

from include.landing.layout import landing_prefix, manifest_key
from include.landing.listing import object_keys

DELETE_BATCH_SIZE = 1000  # S3's limit of keys per DeleteObjects request


def delete_keys(s3, bucket: str, keys: list[str]) -> None:
    """Delete `keys` from `bucket` (`s3`: a boto3 S3 client), DELETE_BATCH_SIZE per request."""
    for i in range(0, len(keys), DELETE_BATCH_SIZE):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + DELETE_BATCH_SIZE]],
                                                 "Quiet": True})


def remove_unlisted(s3, bucket: str, prefix: str, keep: tuple[str, ...] = ()) -> None:
    """Delete every object under `prefix` whose key starts with none of `keep`, and abort the multipart
    uploads still open there (a killed attempt's), except those under `keep`.

    `keep`: key prefixes, typically the manifest's key, the lease's and each listed file's (or an attempt
    folder). Raises botocore's ClientError when S3 refuses a request; what was deleted until then stays so.
    """
    delete_keys(s3, bucket, [k for k in object_keys(s3, bucket, prefix) if not k.startswith(keep)])
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            if not upload["Key"].startswith(keep):
                s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])


def delete_batch(s3, bucket: str, table: str, batch_id: str) -> int:
    """Delete every object of the batch, its manifest last; return how many objects were deleted (the
    manifest included)."""
    manifest = manifest_key(table, batch_id)
    keys = [k for k in object_keys(s3, bucket, landing_prefix(table, batch_id)) if k != manifest]
    delete_keys(s3, bucket, keys)
    s3.delete_object(Bucket=bucket, Key=manifest)
    return len(keys) + 1
