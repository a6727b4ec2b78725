"""Invoice PDFs in the landing bucket: files arrive under an incoming prefix and each DAG run claims what
has arrived into a batch of its own, which the Spark job (lakehouse_jobs.invoice_load) then reads.

    s3://<landing>/invoices/incoming/<any name>               where senders put files (any name, any type)
    s3://<landing>/invoices/batches/<batch_id>/<same name>    claimed by one DAG run; kept (the originals)

Claiming moves each incoming object into the batch (S3 has no rename: copy, then delete the original), so
the job reads a fixed set of files however many arrive meanwhile, and a file that arrives during a run is
claimed by the next one. A claim that dies half-way is finished by its retry: the retry claims what is
still incoming into the same batch (the batch id is the DAG run's), and an object copied but not yet
deleted is copied again over its identical copy. Each file is processed once all the same: the job keeps a
ledger of content hashes, so a file sent twice, or claimed twice, is loaded once.

Claimed objects are written with the extract's server-side encryption and are kept: an invoice is a
financial record, which the business must be able to produce for years (Hong Kong's Inland Revenue
Ordinance, s.51C: seven years), so unlike landed member batches they carry no landing-retention tag and the
bucket's lifecycle rule (include/landing_retention.py) leaves them alone. They hold personal data
(bill-to and ship-to names and addresses): access to the landing bucket is the pipeline's and the data
stewards' only (docs/pii.md), and their record-retention period is the business's rule to set.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

INCOMING_PREFIX = "invoices/incoming/"
BATCHES_PREFIX = "invoices/batches/"


def batch_prefix(batch_id: str) -> str:
    return f"{BATCHES_PREFIX}{batch_id}/"


def claim_incoming(s3, bucket: str, batch_id: str, *, sse_args: dict[str, str]) -> dict:
    """Move every object under INCOMING_PREFIX into the batch's prefix, keeping its name below the prefix;
    returns {"batch_id", "prefix", "files" (claimed by this call), "batch_files" (in the batch now),
    "bytes"}.

    `s3` is a boto3 S3 client; `sse_args` the extract's encryption arguments (include.extract.s3_upload.sse_args).
    Raises botocore's ClientError when S3 refuses a copy or delete (the task's retry resumes). Logs counts
    only: file names can carry personal data (a customer's name in a PDF's name).
    """
    prefix = batch_prefix(batch_id)
    claimed = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=INCOMING_PREFIX):
        for obj in page.get("Contents", []):
            name = obj["Key"][len(INCOMING_PREFIX):]
            if not name or name.endswith("/"):  # a "folder" placeholder object
                continue
            s3.copy_object(Bucket=bucket, Key=prefix + name, CopySource={"Bucket": bucket, "Key": obj["Key"]},
                           MetadataDirective="COPY", **sse_args)
            s3.delete_object(Bucket=bucket, Key=obj["Key"])
            claimed += 1
    files = total = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            files, total = files + 1, total + obj["Size"]
    log.info("invoice batch %s: %d file(s) claimed now, %d in the batch (%d bytes)", batch_id, claimed, files, total)
    return {"batch_id": batch_id, "prefix": prefix, "files": claimed, "batch_files": files, "bytes": total}
