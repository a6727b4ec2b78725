"""Invoice PDFs in the landing bucket: files arrive under an incoming prefix and each DAG run claims what
has arrived into a batch of its own, which the Spark job (lakehouse_jobs.invoice_load) then reads.

    s3://<landing>/invoices/incoming/<any name>               where senders put files (any name, any type)
    s3://<landing>/invoices/batches/<batch_id>/<claimed_name>  claimed by one DAG run; kept (the originals)
    s3://<landing>/invoices/batches/<batch_id>/_files.json     the batch's file list, written last

Claiming moves each incoming object into the batch (S3 has no rename: copy, then delete the original), so
the job reads a fixed set of files however many arrive meanwhile, and a file that arrives during a run is
claimed by the next one. The claim then writes the batch's file list (lakehouse_jobs.manifest.FileList,
``_files.json`` in the batch), which is what the job reads: Spark's own listing hides names starting with
"_" or "." and never returns a zero-byte file, and a file it does not see would be lost without a word.

Each file gets a name in the batch that any reader takes literally (``claimed_name``): a short hash of its
incoming name and ETag, then its base name reduced to letters, digits and ``._-``. Two files cannot
collide, a re-upload under the same name gets a name of its own rather than replacing the first upload,
and the incoming name is kept in the file list (``source_key``).

A claim that dies half-way is finished by its retry: the retry claims what is still incoming into the same
batch (the batch id is the DAG run's), an object copied but not yet deleted is copied again over its
identical copy (same name and ETag, same claimed name), and the file list is written again from the whole
batch. Each file is processed once all the same: the job keeps a ledger of content hashes, so a file sent
twice, or claimed twice, is loaded once.

Claimed objects are written with the extract's server-side encryption and are kept: an invoice is a
financial record, which the business must be able to produce for years (Hong Kong's Inland Revenue
Ordinance, s.51C: seven years), so unlike landed member batches they carry no landing-retention tag and the
bucket's lifecycle rule (include/landing_retention.py) leaves them alone. They hold personal data
(bill-to and ship-to names and addresses): access to the landing bucket is the pipeline's and the data
stewards' only (docs/pii.md), and their record-retention period is the business's rule to set.
"""

from __future__ import annotations

import hashlib
import logging
import re

from lakehouse_jobs.manifest import FILE_LIST_NAME, FileList, ListedFile

log = logging.getLogger(__name__)

INCOMING_PREFIX = "invoices/incoming/"
BATCHES_PREFIX = "invoices/batches/"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def batch_prefix(batch_id: str) -> str:
    return f"{BATCHES_PREFIX}{batch_id}/"


def file_list_key(batch_id: str) -> str:
    return batch_prefix(batch_id) + FILE_LIST_NAME


def claimed_name(incoming_name: str, etag: str) -> str:
    """The object's name in its batch: 12 hex digits of SHA-256 over the incoming name and ETag, "-", then
    the base name with every run of other characters than letters, digits and ``._-`` replaced by "_",
    without leading or trailing "._" (Spark hides "_x" and ".x" and skips "x._COPYING_"), at most 80
    characters: ``"scans/_Chris Wong [2].pdf"`` -> ``"3f0c9a1e2b4d-Chris_Wong_2_.pdf"``."""
    digest = hashlib.sha256(f"{incoming_name}\n{etag}".encode()).hexdigest()[:12]
    base = _UNSAFE.sub("_", incoming_name.rsplit("/", 1)[-1]).strip("._")[:80].rstrip("._")
    return f"{digest}-{base or 'file'}"


def claim_incoming(s3, bucket: str, batch_id: str, *, sse_args: dict[str, str]) -> dict:
    """Move every object under INCOMING_PREFIX into the batch's prefix under its ``claimed_name``, then
    write the batch's file list (every file in the batch, FILE_LIST_NAME) last; returns {"batch_id",
    "prefix", "file_list" (its s3:// URI), "files" (claimed by this call), "batch_files" (in the list),
    "bytes" (their sum)}.

    `s3` is a boto3 S3 client; `sse_args` the extract's encryption arguments (include.extract.s3_upload.sse_args).
    Raises botocore's ClientError when S3 refuses a copy, delete or put (the task's retry resumes). Logs counts
    only: file names can carry personal data (a customer's name in a PDF's name).
    """
    prefix = batch_prefix(batch_id)
    sources: dict[str, str] = {}  # claimed key -> incoming key, of this call
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=INCOMING_PREFIX):
        for obj in page.get("Contents", []):
            name = obj["Key"][len(INCOMING_PREFIX):]
            if not name or name.endswith("/"):  # a "folder" placeholder object
                continue
            key = prefix + claimed_name(name, obj["ETag"])
            # the incoming key goes into the copy's metadata, so a retry's file list still has it
            head = s3.head_object(Bucket=bucket, Key=obj["Key"])
            s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": obj["Key"]},
                           MetadataDirective="REPLACE", Metadata={**head["Metadata"], "source-key": obj["Key"]},
                           ContentType=head.get("ContentType", "binary/octet-stream"), **sse_args)
            s3.delete_object(Bucket=bucket, Key=obj["Key"])
            sources[key] = obj["Key"]
    files = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if obj["Key"] == prefix + FILE_LIST_NAME:
                continue
            if (source := sources.get(obj["Key"])) is None:  # claimed by an earlier try of this claim
                source = s3.head_object(Bucket=bucket, Key=obj["Key"])["Metadata"].get("source-key")
            files.append(ListedFile(f"s3://{bucket}/{obj['Key']}", obj["Size"], source))
    s3.put_object(Bucket=bucket, Key=prefix + FILE_LIST_NAME, Body=FileList(batch_id, files).to_json().encode(),
                  ContentType="application/json", **sse_args)
    total = sum(f.bytes for f in files)
    log.info("invoice batch %s: %d file(s) claimed now, %d in the batch (%d bytes)", batch_id, len(sources), len(files),
             total)
    return {"batch_id": batch_id, "prefix": prefix, "file_list": f"s3://{bucket}/{prefix}{FILE_LIST_NAME}",
            "files": len(sources), "batch_files": len(files), "bytes": total}
