"""Which batches of a table exist in the landing bucket, and which objects a batch holds.

A batch is a folder ``<table>/<batch_id>/`` holding a manifest (published) or a lease (an extract that
has not published yet, running or killed). Folders starting with "_" are the extract's state
(``<table>/_state/``), never batches.
"""

from __future__ import annotations

from collections.abc import Iterator

from include.landing.lease import LEASE_NAME
from lakehouse_jobs.manifest import MANIFEST_NAME


def batch_ids(s3, bucket: str, table: str) -> list[str]:
    """Every batch of `table` in `bucket` (`s3`: a boto3 S3 client), in order: the ids of the folders
    ``<table>/<batch_id>/`` that hold a manifest or a lease."""
    found = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{table}/"):
        for obj in page.get("Contents", []):
            parts = obj["Key"].split("/")
            if len(parts) == 3 and parts[2] in (MANIFEST_NAME, LEASE_NAME) and not parts[1].startswith("_"):
                found.add(parts[1])
    return sorted(found)


def object_keys(s3, bucket: str, prefix: str) -> Iterator[str]:
    """The key of every object under `prefix`, in S3's (lexicographic) order."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield obj["Key"]
