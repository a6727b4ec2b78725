"""Erasure of one member from the landed batches (a GDPR request): every published batch of a table is
republished without the member's rows, with a manifest that stays true, and nothing half-written is ever
visible to a reader.

For each batch ``<table>/<batch_id>/`` (one with a ``_manifest.json``, or with a ``_lease.json`` only: a
first extract running or killed), holding the batch's lease all along (include/landing/lease.py):

1. scan: read only the key column of each file the manifest lists, one row group at a time, through ranged
   GETs (pyarrow reads the footer, then just that column's chunks); a row is the member's when its key,
   trimmed of whitespace and lower-cased, is the member_id (the job keys members the same way);
2. rewrite each file that holds the member: download it (one file in memory at a time; its size and sha256
   checked against the manifest), write it again without those rows into
   ``<table>/<batch_id>/erasure=<request_id>/<the file's path below its attempt folder>`` (same Arrow
   schema, same compression and row-group size as the file itself, i.e. the extract's), through
   include/landing/s3_writer.py's S3MultipartWriter with the extract's SSE and retention tag, set when each
   object is created;
3. confirm the lease is still ours (else publish nothing and delete what step 2 wrote), then replace
   ``_manifest.json`` (one PUT: files, rows, bytes, sha256, row_count, created_at; everything else as the
   extract wrote it) with a manifest that passes BatchManifest.from_json;
4. delete every object under the batch's prefix that the manifest does not list: the replaced files, and
   leftovers of killed extracts or erasures (which may hold the member too), as the extract does after it
   publishes. A batch with no manifest has published nothing: all its objects are such leftovers.

So readers (who read exactly a manifest's files) see the old batch or the new one, never a mix: a Spark job
still reading the previous manifest's files when step 4 deletes them fails on a missing file, and its retry
reads the new batch (the same as when an extract re-publishes, docs/conventions.md). A killed erasure leaves
either the old manifest and unlisted new files, or the new manifest and the unlisted replaced files: the
rerun finds the member in no listed file and deletes the unlisted ones in step 4. A rerun after success, with
the same or another request_id, rewrites nothing, deletes nothing and returns zero files.

Concurrency with the extract: the erasure takes the batch's lease, as an extract does, under the run id
``erasure__<request_id>``, so the two never interleave on one batch. While an extract holds a batch's lease,
the erasure does every other batch and then raises LeaseHeld naming the ones left (the task's retry does
them; no batch it finished is touched again). An extract starting while the erasure holds a batch fails
with LeaseHeld naming the run ``erasure__<request_id>`` and its task's retry runs after the erasure. An
extract's re-publish removes the erasure's files with everything else its manifest does not list: a new
snapshot has no member, provided the member was deleted at the source before the erasure started. Taking
the lease for the scan, not only for a rewrite, is what guarantees an extract that was running when the
erasure started cannot publish the member afterwards.

Nothing here logs or returns the member_id or any row value: logs name batches and counts, the result is
counts only (it goes to XCom), and errors name batches and object keys (ids and dates, no row content).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import logging
import re
import uuid

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from include import settings
from include.landing import lease
from include.landing.cleanup import remove_unlisted
from include.landing.layout import landing_prefix, manifest_key
from include.landing.listing import batch_ids
from include.landing.manifest_io import publish_manifest, published_manifest
from include.landing.retention import batch_object_args
from include.landing.s3_writer import S3MultipartWriter, sse_args
from lakehouse_jobs.contracts import MEMBER, SourceContract
from lakehouse_jobs.keys import UUID_PATTERN, member_key_arrow
from lakehouse_jobs.manifest import BatchManifest, FileEntry

log = logging.getLogger(__name__)

MEMBER_ID_PATTERN = re.compile(UUID_PATTERN)
# request ids name a folder of every rewritten batch (and Hadoop paths refuse ':'), so only safe characters
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
ERASURE_FOLDER = "erasure="
LEASE_RUN_PREFIX = "erasure__"


class LandingMismatch(RuntimeError):
    """A listed file is not what its manifest says (size, sha256, rows): the batch is left untouched."""


def erase_from_landing(s3, bucket: str, table: str, member_id: str, contract: SourceContract = MEMBER, *,
                       request_id: str, sse: str | None = None, sse_kms_key_id: str | None = None,
                       lease_seconds: float = 30 * 60) -> dict[str, int]:
    """Remove the rows of `member_id` from every batch of `table` in `bucket`; return counts only:
    {"batches_scanned", "batches_rewritten", "files_rewritten", "rows_removed"}.

    `member_id`: a UUID in lower case (ValueError otherwise). `request_id`: the erasure request, 1-64 of
    ``A-Z a-z 0-9 _ . -``, never containing the member_id (it names objects and appears in logs).
    `sse` / `sse_kms_key_id`: default S3_SSE / S3_SSE_KMS_KEY_ID, what the extract writes with.
    `lease_seconds`: how long a crashed erasure blocks extracts of the batch it held (as the extract's).
    Raises lease.LeaseHeld after doing every other batch when extracts (or other erasures) hold some
    batches' leases,
    lease.LeaseLost if an extract took a batch over mid-rewrite, LandingMismatch for a file that does not
    match its manifest; a batch is then left as it was published (plus, at worst, unlisted objects that
    the next run deletes).
    """
    _check_member_id(member_id)
    if not isinstance(request_id, str) or not REQUEST_ID_PATTERN.fullmatch(request_id):
        raise ValueError("request_id must be 1-64 characters of A-Z a-z 0-9 _ . -")
    if member_id.replace("-", "") in request_id.lower().replace("-", ""):
        raise ValueError("request_id must not contain the member_id: it names objects and appears in logs")
    if table != contract.table:
        raise ValueError(f"table {table!r} is not the contract's table {contract.table!r}")
    extra = sse_args(sse or settings.S3_SSE, sse_kms_key_id if sse else settings.S3_SSE_KMS_KEY_ID)
    counts = {"batches_scanned": 0, "batches_rewritten": 0, "files_rewritten": 0, "rows_removed": 0}
    held_elsewhere = []
    for batch_id in batch_ids(s3, bucket, table):
        try:
            done = _erase_batch(s3, bucket, table, batch_id, member_id, contract.key, request_id=request_id,
                                extra=extra, lease_seconds=lease_seconds)
        except lease.LeaseHeld:
            log.warning("batch %s: an extract (or another erasure) holds its lease; left for a retry", batch_id)
            held_elsewhere.append(batch_id)
            continue
        if done is None:  # nothing published
            continue
        files, rows = done
        counts["batches_scanned"] += 1
        counts["batches_rewritten"] += bool(files)
        counts["files_rewritten"] += files
        counts["rows_removed"] += rows
    log.info("erasure %s from s3://%s/%s/: %s", request_id, bucket, table, counts)
    if held_elsewhere:
        raise lease.LeaseHeld(
            f"erasure {request_id}: the lease of batch(es) {held_elsewhere} is held by an extract or another "
            f"erasure; every other batch is done ({counts}). Retry when they finish: a rerun does the rest and "
            "repeats nothing.")
    return counts


def _check_member_id(member_id) -> None:
    if not isinstance(member_id, str) or not MEMBER_ID_PATTERN.fullmatch(member_id):
        # the value itself is not repeated: a near-miss of a real id is personal data too
        raise ValueError("member_id must be a UUID in lower case (8-4-4-4-12 hex digits)")


def member_in_source(hook, member_id: str, contract: SourceContract = MEMBER) -> bool:
    """Whether the source table still holds a row of the member, keyed as the erasure keys it (trimmed of
    whitespace, lower case). The erasure DAG checks this first: a member still at the source comes back
    with the next snapshot.

    `hook`: a MySqlHook (anything with get_conn()), or an open DB-API connection to the source database.
    The indexed equality finds the member at once (the contract's collation ignores case and trailing
    spaces); only if it does not is the key index scanned for other spellings (leading whitespace, a
    case-sensitive collation), which takes seconds on millions of rows.
    """
    _check_member_id(member_id)
    conn = hook.get_conn() if hasattr(hook, "get_conn") else hook
    table, key = contract.table, contract.key
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT 1 FROM `{table}` WHERE `{key}` = %s LIMIT 1", (member_id,))
        found = cur.fetchone() is not None
        if not found:
            cur.execute(f"SELECT 1 FROM `{table}` WHERE LOWER(REGEXP_REPLACE(`{key}`, "
                        "'^[[:space:]]+|[[:space:]]+$', '')) = %s LIMIT 1", (member_id,))
            found = cur.fetchone() is not None
        cur.close()
        return found
    finally:
        conn.rollback()  # ends the read's snapshot: the next check on this connection sees the table as it is
        if conn is not hook:
            conn.close()


def is_member(keys: pa.Array | pa.ChunkedArray, member_id: str) -> pa.Array:
    """True where the key, trimmed of whitespace and lower-cased, is `member_id`; never null."""
    return pc.fill_null(pc.equal(member_key_arrow(keys), member_id), False)


def _erase_batch(s3, bucket: str, table: str, batch_id: str, member_id: str, key_column: str, *,
                 request_id: str, extra: dict, lease_seconds: float) -> tuple[int, int] | None:
    """Erase the member from one batch under its lease; (files rewritten, rows removed), or None if the
    batch has no manifest (its leftovers are then removed)."""
    prefix = landing_prefix(table, batch_id)
    held = lease.acquire(s3, bucket, prefix, run_id=LEASE_RUN_PREFIX + request_id, seconds=lease_seconds,
                         extra_args=extra)
    try:
        manifest = published_manifest(s3, bucket, table, batch_id)
        if manifest is None:
            log.info("batch %s: no manifest; removing an unpublished extract's leftovers", batch_id)
            remove_unlisted(s3, bucket, prefix, keep=(held.key,))
            return None
        if manifest.table != table or key_column not in manifest.column_names:
            raise LandingMismatch(f"batch {batch_id}: the manifest describes table {manifest.table!r} with columns "
                                  f"{manifest.column_names}, not {table!r} keyed by {key_column!r}")
        keys = {entry.path: _key_of(bucket, entry.path, batch_id) for entry in manifest.files}
        affected, missing = [], 0
        for entry in manifest.files:
            holds = _holds_member(s3, bucket, keys[entry.path], entry, key_column, member_id, batch_id)
            missing += holds is None
            if holds:
                affected.append(entry)
        if missing:  # lifecycle expiry deletes a batch's objects in no order: what is gone holds nobody
            log.warning("batch %s: %d listed file(s) missing (expiring?)", batch_id, missing)
        rows_removed = 0
        # a change set (include/extract/change_set.py) names member ids, deleted ones too, which no snapshot
        # file holds: it goes whole, with its files; the job then compares the whole snapshot, as it must
        # after an erasure changed the table anyway
        if affected or manifest.change_set is not None:
            replaced, rows_removed = _rewrite_files(s3, bucket, prefix, affected, keys, key_column, member_id,
                                                    request_id=request_id, batch_id=batch_id,
                                                    extra_args=batch_object_args(extra), held=held) \
                if affected else ({}, 0)
            manifest = _publish(s3, bucket, manifest, replaced, batch_object_args(extra))
            log.info("batch %s: republished with %d of %d file(s) rewritten, %d row(s) removed", batch_id,
                     len(affected), len(manifest.files), rows_removed)
        listed = tuple(_key_of(bucket, entry.path, batch_id) for entry in manifest.files)
        remove_unlisted(s3, bucket, prefix, keep=(manifest_key(table, batch_id), held.key, *listed))
        return len(affected), rows_removed
    finally:
        held.release()


def _key_of(bucket: str, path: str, batch_id: str) -> str:
    path_bucket, _, key = path.removeprefix("s3://").partition("/")
    if not path.startswith("s3://") or path_bucket != bucket or not key:
        raise LandingMismatch(f"batch {batch_id}: the manifest lists {path}, outside s3://{bucket}/")
    return key


def _holds_member(s3, bucket: str, key: str, entry: FileEntry, key_column: str, member_id: str,
                  batch_id: str) -> bool | None:
    """Whether the file holds a row of the member (None: the file is gone), reading only its key column."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    if head["ContentLength"] != entry.bytes:
        raise LandingMismatch(f"batch {batch_id}: {entry.path} has {head['ContentLength']} bytes, "
                              f"the manifest says {entry.bytes}; the batch is left untouched")
    parquet = pq.ParquetFile(_RangedObject(s3, bucket, key, entry.bytes, head["ETag"]))
    if key_column not in parquet.schema_arrow.names:
        raise LandingMismatch(f"batch {batch_id}: {entry.path} has no column {key_column!r}")
    for i in range(parquet.num_row_groups):
        if pc.any(is_member(parquet.read_row_group(i, columns=[key_column]).column(0), member_id)).as_py():
            return True
    return False


class _RangedObject(io.RawIOBase):
    """A seekable, read-only view of one S3 object: each read is one ranged GET of exactly the bytes asked
    for, conditional on the object's ETag. pyarrow reads the Parquet footer, then only the column chunks it
    needs."""

    def __init__(self, s3, bucket: str, key: str, size: int, etag: str):
        super().__init__()
        self.s3, self.bucket, self.key, self.size, self.etag = s3, bucket, key, size, etag
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer) -> int:
        end = min(self.position + len(buffer), self.size)
        if end <= self.position:
            return 0
        data = self.s3.get_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag,
                                  Range=f"bytes={self.position}-{end - 1}")["Body"].read()
        memoryview(buffer)[: len(data)] = data
        self.position += len(data)
        return len(data)


def _rewrite_files(s3, bucket: str, prefix: str, affected: list[FileEntry], keys: dict[str, str], key_column: str,
                   member_id: str, *, request_id: str, batch_id: str, extra_args: dict,
                   held: lease.Lease) -> tuple[dict[str, FileEntry], int]:
    """Write each affected file again without the member's rows; confirm the lease. Returns the new entries
    by replaced path and the rows removed; on any failure deletes what it wrote (nothing is listed yet)."""
    folder = f"{prefix}{ERASURE_FOLDER}{request_id}/"
    if any(k.startswith(folder) for k in keys.values()):
        # the batch lists files of this request id already (an id reused for another member): a folder of
        # its own, so that no listed object is ever overwritten
        folder = f"{prefix}{ERASURE_FOLDER}{request_id}.{uuid.uuid4().hex[:8]}/"
    # a file's path below its attempt (or earlier erasure) folder is unique in the batch: keep it, so a
    # partitioned batch keeps its `col=value/` folders
    targets = {e.path: folder + keys[e.path][len(prefix):].partition("/")[2] for e in affected}
    if len(set(targets.values())) != len(targets):
        raise LandingMismatch(f"batch {batch_id}: two listed files share a path below their folders")
    written: list[str] = []
    replaced: dict[str, FileEntry] = {}
    removed = 0
    try:
        for entry in affected:
            written.append(targets[entry.path])
            replaced[entry.path], rows = _rewrite(s3, bucket, keys[entry.path], targets[entry.path], entry,
                                                  key_column, member_id, batch_id=batch_id, extra_args=extra_args)
            removed += rows
        held.confirm()  # LeaseLost if an extract took the batch over: publish nothing
    except BaseException:
        for key in written:
            try:
                s3.delete_object(Bucket=bucket, Key=key)
            except Exception:
                log.warning("batch %s: could not delete %s; the next run removes it", batch_id, key, exc_info=True)
        raise
    return replaced, removed


def _rewrite(s3, bucket: str, key: str, new_key: str, entry: FileEntry, key_column: str, member_id: str, *,
             batch_id: str, extra_args: dict) -> tuple[FileEntry, int]:
    """One file without the member's rows, at `new_key`: its manifest entry and the rows removed.

    Memory holds the file, one row group read and less than two row groups to write. The new file has the
    old one's Arrow schema, compression and row-group size, and its rows in their order, so it is what the
    extract would have written without those rows.
    """
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if len(body) != entry.bytes or hashlib.sha256(body).hexdigest() != entry.sha256:
        raise LandingMismatch(f"batch {batch_id}: {entry.path} does not match the size and sha256 its manifest "
                              "lists; the batch is left untouched")
    source = pq.ParquetFile(pa.BufferReader(body))
    meta = source.metadata
    if meta.num_rows != entry.rows:
        raise LandingMismatch(f"batch {batch_id}: {entry.path} holds {meta.num_rows} rows, the manifest says "
                              f"{entry.rows}; the batch is left untouched")
    # the extract's row-group size: its largest group (every group but a file's last is one, give or take
    # the extract's fetch-batch boundaries); a file that holds the member has a row group
    group_rows = max(meta.row_group(i).num_rows for i in range(meta.num_row_groups))
    compression = meta.row_group(0).column(0).compression
    schema = source.schema_arrow
    removed = kept = 0
    with S3MultipartWriter(s3, bucket, new_key, extra_args=extra_args) as upload:
        with pq.ParquetWriter(upload, schema, compression="none" if compression == "UNCOMPRESSED" else compression
                              ) as writer:
            pending = schema.empty_table()
            for i in range(meta.num_row_groups):
                group = source.read_row_group(i)
                rest = group.filter(pc.invert(is_member(group.column(key_column), member_id)))
                removed += group.num_rows - rest.num_rows
                kept += rest.num_rows
                pending = pa.concat_tables([pending, rest])
                full = pending.num_rows - pending.num_rows % group_rows
                if full:  # full row groups only, as the extract writes them; the rest waits for more rows
                    writer.write_table(pending.slice(0, full), row_group_size=group_rows)
                    pending = pending.slice(full).combine_chunks()
            if pending.num_rows:
                writer.write_table(pending, row_group_size=group_rows)
    return FileEntry(path=f"s3://{bucket}/{new_key}", rows=kept, bytes=upload.size,
                     sha256=upload.sha256.hexdigest()), removed


def _publish(s3, bucket: str, manifest: BatchManifest, replaced: dict[str, FileEntry],
             extra_args: dict) -> BatchManifest:
    """Replace the batch's manifest (one PUT) with one listing the rewritten files and no change set; return
    it."""
    files = [replaced.get(entry.path, entry) for entry in manifest.files]
    updated = dataclasses.replace(manifest, files=files, row_count=sum(f.rows for f in files), change_set=None,
                                  created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    publish_manifest(s3, bucket, updated, extra_args)
    return updated
