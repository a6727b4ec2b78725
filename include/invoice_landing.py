"""Invoice PDFs in the landing bucket: files arrive under an incoming prefix and each DAG run claims what
has arrived into a batch of its own, which the Spark job (lakehouse_jobs.invoice.job) then reads.

    s3://<landing>/invoices/incoming/<any name>          where senders put files (any name, any type)
    s3://<landing>/invoices/batches/<batch_id>/<hash>.<ext>   claimed by one DAG run; kept (the originals)
    s3://<landing>/invoices/batches/<batch_id>/_files.json    the run's file list, written last
    s3://<landing>/invoices/open/<batch_id>              a batch not yet loaded and checked to the end

Claiming moves each incoming object into the batch (S3 has no rename: copy, then delete the original), so
the job reads a fixed set of files however many arrive meanwhile, and a file that arrives during a run is
claimed by the next one. The claim then writes the run's file list (lakehouse_jobs.manifest.FileList),
which is what the job reads: Spark's own listing hides names starting with "_" or "." and never returns a
zero-byte file, and a file it does not see would be lost without a word.

Nothing claimed is left behind: a batch is open from its claim until its run's check passes with nothing
deferred (``close_batches``), and every claim lists the files of every open batch besides its own. Files
of a run that failed for good, or that the job deferred, are read by the next run; the job's ledger skips
the ones an earlier run did load.

Each file gets a name in the batch that any reader takes literally and that says nothing about its
content (``claimed_name``): a hash of its incoming name and ETag, and its extension. Two files cannot
collide, a re-upload under the same name gets a name of its own rather than replacing the first upload,
and a customer's name in a file name does not reach the tables' ``source_path``. The incoming name and the
arrival time go into the copy's metadata and the file list (``source_key``, ``arrived_at``): arrival
orders two issues of one invoice in a batch, as it orders them across batches.

A claim that dies half-way is finished by its retry: the retry claims what is still incoming into the same
batch (the batch id is the DAG run's), an object copied but not yet deleted is copied again over its
identical copy (same name and ETag, same claimed name), and the file list is written again. Each file is
processed once all the same: the job keeps a ledger of content hashes, so a file sent twice, or claimed
twice, is loaded once.

Claimed objects are written with the extract's server-side encryption and are kept: an invoice is a
financial record, which the business must be able to produce for years (Hong Kong's Inland Revenue
Ordinance, s.51C: seven years), so unlike landed member batches they carry no landing-retention tag and the
bucket's lifecycle rule (include/landing/retention.py) leaves them alone. They hold personal data
(bill-to and ship-to names and addresses): access to the landing bucket is the pipeline's and the data
stewards' only (docs/pii.md), and their record-retention period is the business's rule to set.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from urllib.parse import quote, unquote

from lakehouse_jobs.manifest import FILE_LIST_NAME, FileList, ListedFile

log = logging.getLogger(__name__)

INCOMING_PREFIX = "invoices/incoming/"
BATCHES_PREFIX = "invoices/batches/"
OPEN_PREFIX = "invoices/open/"
_EXTENSION = re.compile(r"(?<=.)\.[A-Za-z0-9]{1,10}$")  # as os.path.splitext: ".bashrc" has none
SOURCE_KEY_LIMIT = 1800  # characters of the percent-encoded incoming key kept in metadata (S3: 2 KB in all)


def batch_prefix(batch_id: str) -> str:
    return f"{BATCHES_PREFIX}{batch_id}/"


def file_list_key(batch_id: str) -> str:
    return batch_prefix(batch_id) + FILE_LIST_NAME


def claimed_name(incoming_name: str, etag: str) -> str:
    """The object's name in its batch: 16 hex digits of SHA-256 over the incoming name and ETag, then the
    name's extension (a dot and up to 10 letters or digits): ``"scans/_Chris Wong [2].PDF"`` ->
    ``"3f0c9a1e2b4d5a6b.PDF"``. Spark reads it literally; it carries no personal data."""
    digest = hashlib.sha256(f"{incoming_name}\n{etag}".encode()).hexdigest()[:16]
    extension = _EXTENSION.search(incoming_name.rsplit("/", 1)[-1])
    return digest + (extension.group(0) if extension else "")


def is_file(obj: dict) -> bool:
    """An S3 listing entry that is a file, not a "folder" placeholder (a key ending in "/", as the S3 and
    MinIO consoles create)."""
    return not obj["Key"].endswith("/")


def has_incoming_files(files: list[dict]) -> bool:
    """S3KeySensor's check_fn: any matched object (needs metadata_keys with "Key") is a file."""
    return any(is_file(f) for f in files)


def _listed_file(s3, bucket: str, obj: dict, known: dict[str, ListedFile]) -> ListedFile:
    if (listed := known.get(obj["Key"])) is not None:
        return listed
    metadata = s3.head_object(Bucket=bucket, Key=obj["Key"])["Metadata"]  # claimed by an earlier claim
    source = metadata.get("source-key")
    return ListedFile(f"s3://{bucket}/{obj['Key']}", obj["Size"], unquote(source) if source else None,
                      metadata.get("arrived-at"))


def claim_incoming(s3, bucket: str, batch_id: str, *, sse_args: dict[str, str]) -> dict:
    """Open the batch, move every file under INCOMING_PREFIX into it under its ``claimed_name``, then write
    the run's file list (FILE_LIST_NAME in the batch): the files of this batch and of every other open
    batch. Returns {"batch_id", "prefix", "file_list" (its s3:// URI), "files" (claimed by this call),
    "batch_files" (in the list), "bytes" (their sum), "open_batches" (the batches the list covers, this
    one included: close_batches' argument)}.

    `s3` is a boto3 S3 client; `sse_args` the extract's encryption arguments (include.landing.s3_writer.sse_args).
    Raises botocore's ClientError when S3 refuses a copy, delete or put (the task's retry resumes). Logs counts
    only: file names can carry personal data (a customer's name in a PDF's name).
    """
    s3.put_object(Bucket=bucket, Key=OPEN_PREFIX + batch_id, Body=b"", **sse_args)
    prefix = batch_prefix(batch_id)
    claimed: dict[str, ListedFile] = {}  # claimed key -> its entry, of this call
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=INCOMING_PREFIX):
        for obj in filter(is_file, page.get("Contents", [])):
            key = prefix + claimed_name(obj["Key"][len(INCOMING_PREFIX):], obj["ETag"])
            arrived_at = obj["LastModified"].astimezone(dt.timezone.utc).isoformat()
            head = s3.head_object(Bucket=bucket, Key=obj["Key"])
            # kept in the copy's metadata too, so a retry's file list still has them: the key percent-encoded
            # (metadata is ASCII) and left out when too long for S3's 2 KB of metadata
            metadata = {**head["Metadata"], "arrived-at": arrived_at}
            if len(encoded := quote(obj["Key"], safe="/")) <= SOURCE_KEY_LIMIT:
                metadata["source-key"] = encoded
            s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": obj["Key"]},
                           MetadataDirective="REPLACE", Metadata=metadata,
                           ContentType=head.get("ContentType", "binary/octet-stream"), **sse_args)
            s3.delete_object(Bucket=bucket, Key=obj["Key"])
            claimed[key] = ListedFile(f"s3://{bucket}/{key}", obj["Size"], obj["Key"], arrived_at)
    open_batches = sorted(obj["Key"][len(OPEN_PREFIX):] for page in
                          s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=OPEN_PREFIX)
                          for obj in page.get("Contents", []))
    files = [_listed_file(s3, bucket, obj, claimed)
             for open_batch in open_batches
             for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=batch_prefix(open_batch))
             for obj in page.get("Contents", []) if not obj["Key"].endswith("/" + FILE_LIST_NAME)]
    s3.put_object(Bucket=bucket, Key=prefix + FILE_LIST_NAME, Body=FileList(batch_id, files).to_json().encode(),
                  ContentType="application/json", **sse_args)
    total = sum(f.bytes for f in files)
    log.info("invoice batch %s: %d file(s) claimed now, %d listed from %d open batch(es) (%d bytes)", batch_id,
             len(claimed), len(files), len(open_batches), total)
    return {"batch_id": batch_id, "prefix": prefix, "file_list": f"s3://{bucket}/{prefix}{FILE_LIST_NAME}",
            "files": len(claimed), "batch_files": len(files), "bytes": total, "open_batches": open_batches}


def close_batches(s3, bucket: str, batch_ids: list[str]) -> None:
    """Mark the batches loaded and checked: later claims no longer list their files."""
    for batch_id in batch_ids:
        s3.delete_object(Bucket=bucket, Key=OPEN_PREFIX + batch_id)
