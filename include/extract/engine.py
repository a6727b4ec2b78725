"""MySQL -> Parquet on S3, streamed in bounded memory and published atomically through a manifest.

    MySQL rows -> Arrow record batches -> ParquetWriter -> S3 multipart upload

The rows come from a reader (include/extract/readers.py: ConnectorX or mysqlclient's server-side cursor).
Memory holds one fetch batch, one Parquet row group and one upload part, whatever the table size.

A batch is one extraction interval under ``s3://<bucket>/<table>/<batch_id>/``; every attempt at it
writes beside the published batch, which stays readable and unchanged until the switch:

1. take the batch's lease (include/landing/lease.py): two extracts of one batch never interleave;
2. write the data files under ``attempt=<id>/`` (``part-00000.parquet``, ...), <id> unique per attempt;
3. publish: one PUT of ``_manifest.json`` naming them (atomic on S3), after confirming the lease is ours.
   Readers only ever read what a manifest lists, so files no manifest lists do not exist for them;
4. remove what the manifest no longer lists: the previous attempt's files, leftovers and open uploads
   of killed attempts. A failed attempt removes its own files; one killed outright leaves them to the
   next attempt that publishes.

The data files and the manifest are tagged as they are written (include/landing/retention.py): the landing
bucket's lifecycle rule expires tagged objects after LANDING_RETENTION_DAYS. The lease and the
high-watermark are written untagged and never expire.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from include.extract import watermark
from include.extract.change_set import ChangeDetector, StateLocation, load_state
from include.extract.readers import Reader, lift_statement_time_limit, locating, stream_record_batches
from include.extract.schema_drift import check_schema, live_columns, schema_hash, schema_json, select_sql
from include.landing import lease
from include.landing.cleanup import remove_unlisted
from include.landing.layout import landing_prefix
from include.landing.manifest_io import publish_manifest, published_manifest
from include.landing.retention import batch_object_args
from include.landing.s3_writer import S3MultipartWriter, sse_args
from lakehouse_jobs.change_hash import change_hash_key
from lakehouse_jobs.change_state import state_rules_version
from lakehouse_jobs.contracts import ROW_HASH_COLUMN, SourceContract, arrow_schema
from lakehouse_jobs.keys import member_key_arrow
from lakehouse_jobs.manifest import BatchManifest, ChangeSet, FileEntry, Watermark

log = logging.getLogger(__name__)

class _FileSequence:
    """Numbered Parquet files under one prefix, each of at most `rows_per_file` rows, written from a
    buffer that only ever holds less than one row group."""

    def __init__(self, s3, bucket: str, prefix: str, schema: pa.Schema, *, extra_args: dict,
                 rows_per_file: int, row_group_rows: int, compression: str, file_name: str = "part"):
        self.s3, self.bucket, self.prefix, self.schema = s3, bucket, prefix, schema
        self.file_name = file_name
        self.extra_args, self.compression = extra_args, compression
        self.rows_per_file, self.row_group_rows = rows_per_file, row_group_rows
        self.files: list[dict] = []
        self.pending = pa.Table.from_batches([], schema=schema)
        self.upload = self.writer = None
        self.rows_in_file = 0

    def add(self, table: pa.Table) -> None:
        self.pending = pa.concat_tables([self.pending, table])
        full = self.pending.num_rows - self.pending.num_rows % self.row_group_rows
        if full:
            self._write(self.pending.slice(0, full))
            self.pending = self.pending.slice(full).combine_chunks()

    def finish(self) -> list[dict]:
        self._write(self.pending)
        if self.writer is None and not self.files:
            self._open()  # an empty batch still gets a file, so it carries the schema
        if self.writer is not None:
            self._close()
        return self.files

    def abort(self) -> None:
        if self.upload is not None:
            self.upload.abort()

    def _open(self) -> None:
        key = f"{self.prefix}{self.file_name}-{len(self.files):05d}.parquet"
        self.upload = S3MultipartWriter(self.s3, self.bucket, key, extra_args=self.extra_args)
        self.writer = pq.ParquetWriter(self.upload, self.schema, compression=self.compression)
        self.files.append({"path": f"s3://{self.bucket}/{key}", "rows": 0})
        self.rows_in_file = 0

    def _close(self) -> None:
        self.writer.close()
        self.upload.close()
        self.files[-1].update(bytes=self.upload.size, sha256=self.upload.sha256.hexdigest())
        self.upload = self.writer = None

    def _write(self, table: pa.Table) -> None:
        while table.num_rows:
            if self.writer is None:
                self._open()
            take = table.slice(0, min(table.num_rows, self.rows_per_file - self.rows_in_file))
            self.writer.write_table(take, row_group_size=self.row_group_rows)
            self.rows_in_file += take.num_rows
            self.files[-1]["rows"] += take.num_rows
            table = table.slice(take.num_rows)
            if self.rows_in_file >= self.rows_per_file:
                self._close()


def _hive_value(value) -> str:
    return "__HIVE_DEFAULT_PARTITION__" if value is None else quote(str(value), safe="")


def write_parquet_files(
    batches: Iterator[pa.RecordBatch], s3, bucket: str, prefix: str, schema: pa.Schema, *,
    extra_args: dict, rows_per_file: int, row_group_rows: int, compression: str,
    partition_cols: tuple[str, ...] = (), max_partitions: int = 1000, file_name: str = "part",
) -> list[dict]:
    """Write the batches as Parquet files under `prefix`; return their manifest entries.

    With `partition_cols`, rows go to Hive-style sub-folders (`col=value/part-00000.parquet`), one open
    file sequence per partition value (at most `max_partitions`, each buffering under one row group).
    Partition columns stay in the files too, so a reader of listed files needs no path parsing.
    """
    options = dict(extra_args=extra_args, rows_per_file=rows_per_file, row_group_rows=row_group_rows,
                   compression=compression, file_name=file_name)
    sequences: dict[tuple, _FileSequence] = {}

    def sequence(values: tuple) -> _FileSequence:
        if values not in sequences:
            if len(sequences) >= max_partitions:
                raise ValueError(f"more than {max_partitions} partitions of {partition_cols}: choose coarser columns")
            sub = "".join(f"{c}={_hive_value(v)}/" for c, v in zip(partition_cols, values))
            sequences[values] = _FileSequence(s3, bucket, prefix + sub, schema, **options)
        return sequences[values]

    try:
        for batch in batches:
            table = pa.Table.from_batches([batch])
            if not partition_cols:
                sequence(()).add(table)
                continue
            keys = table.select(list(partition_cols)).group_by(list(partition_cols)).aggregate([])
            for values in keys.to_pylist():
                mask = None
                for col in partition_cols:
                    v = values[col]
                    cond = pc.is_null(table[col]) if v is None else pc.equal(table[col], v)
                    mask = cond if mask is None else pc.and_(mask, cond)
                sequence(tuple(values[c] for c in partition_cols)).add(table.filter(mask))
        if not sequences:
            sequence((None,) * len(partition_cols) if partition_cols else ())
        return [f for key in sorted(sequences, key=str) for f in sequences[key].finish()]
    except BaseException:
        for seq in sequences.values():
            seq.abort()
        raise


def extract_table(
    conn, s3, *, contract: SourceContract, bucket: str, batch_id: str, run_id: str,
    sse: str = "AES256", sse_kms_key_id: str | None = None, rows_per_file: int = 1_000_000,
    row_group_rows: int = 128 * 1024, fetch_rows: int = 50_000, compression: str = "zstd",
    reader: Reader | None = None, mode: str = "snapshot", overlap: dt.timedelta = dt.timedelta(minutes=10),
    low: dt.datetime | None = None, high: dt.datetime | None = None, partition_cols: tuple[str, ...] = (),
    key_ranges: int = 1, lease_seconds: float = 30 * 60, change_state: StateLocation | None = None,
    hash_key: bytes | None = None,
) -> BatchManifest:
    """Extract `contract.table` as batch `batch_id`; return the published BatchManifest.

    mode "snapshot": the whole table. mode "incremental": rows whose watermark column lies in the range
    planned by include/extract/watermark.py (`low`/`high` given explicitly for a backfill).
    `key_ranges` > 1 splits the table into that many primary-key ranges of equal row counts, read and
    written in parallel (files `part-r000-00000.parquet`, ...); it needs a `reader` that opens its own
    connections (ConnectorX).
    `conn` (DB-API, mysqlclient) checks the schema and, without a `reader`, reads the rows too.
    `lease_seconds`: how long a crashed extract of another run blocks this batch (include/landing/lease.py).
    A contract with a rules_version lands each row with its ``_row_hash`` (keyed with `hash_key`, default
    LAKEHOUSE_CHANGE_HASH_KEY); a snapshot with `change_state` also lands the change set against that state
    (include/extract/change_set.py) when the state describes the table as it is.

    A snapshot is the table as it is now, whatever interval `batch_id` names: the manifest's
    extracted_at says when it was read, so a backfill or late re-run is recorded as what it is.
    Raises ValueError for impossible options, lease.LeaseHeld while another run extracts the batch,
    lease.LeaseLost if another extract took the batch over, SchemaDriftError, UnreadableValue, SourceError;
    the published batch, if any, is then unchanged.
    """
    if mode not in ("snapshot", "incremental"):
        raise ValueError(f"mode must be 'snapshot' or 'incremental', not {mode!r}")
    if mode == "incremental" and not contract.watermark_column:
        raise ValueError(f"table {contract.table!r} has no watermark column: only snapshots are possible")
    if key_ranges > 1 and reader is None:
        raise ValueError("parallel key ranges need a reader with its own connections (ConnectorX)")
    extra = sse_args(sse, sse_kms_key_id)  # every object: lease, data files, manifest, watermark
    batch_extra = batch_object_args(extra)  # the batch's objects only: they expire
    if contract.rules_version and hash_key is None:
        hash_key = change_hash_key()
    prefix = landing_prefix(contract.table, batch_id)
    attempt = f"{prefix}attempt={dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}/"
    held = lease.acquire(s3, bucket, prefix, run_id=run_id, seconds=lease_seconds, extra_args=extra)
    try:
        try:
            manifest, span = _extract(
                conn, s3, contract=contract, bucket=bucket, batch_id=batch_id, run_id=run_id, prefix=attempt,
                mode=mode, overlap=overlap, low=low, high=high, key_ranges=key_ranges,
                change_state=change_state if mode == "snapshot" else None, hash_key=hash_key,
                read=_read(conn, reader, contract, fetch_rows),
                options=dict(extra_args=batch_extra, rows_per_file=rows_per_file, row_group_rows=row_group_rows,
                             compression=compression, partition_cols=partition_cols))
            held.confirm()
        except BaseException:
            try:
                remove_unlisted(s3, bucket, attempt)
            except Exception:
                log.warning("could not remove the failed attempt's files under %s", attempt, exc_info=True)
            raise
        # from here on the attempt's files may be published: a failure leaves them for the next attempt
        key = publish_manifest(s3, bucket, manifest, batch_extra)
        log.info("published s3://%s/%s: %d rows in %d file(s), read at %s", bucket, key, manifest.row_count,
                 len(manifest.files), manifest.extracted_at)
        if span and span.high is not None:
            watermark.write_high_watermark(s3, bucket, contract.table, span.high, extra)
        remove_unlisted(s3, bucket, prefix, keep=(key, held.key, attempt))
    finally:
        held.release()
    return manifest


def _read(conn, reader: Reader | None, contract: SourceContract, fetch_rows: int) -> Reader:
    """The extract's reader: `reader` (ConnectorX, its own connections), else mysqlclient on `conn`."""
    return locating(reader or (lambda q, schema: stream_record_batches(conn, q, schema, fetch_rows)), contract.table,
                    contract.key)


def _extract(conn, s3, *, contract: SourceContract, bucket: str, batch_id: str, run_id: str, prefix: str,
             mode: str, overlap: dt.timedelta, low, high, key_ranges: int, read: Reader, options: dict,
             change_state: StateLocation | None, hash_key: bytes | None,
             ) -> tuple[BatchManifest, watermark.WatermarkRange | None]:
    """Write the batch's files under `prefix`; return its manifest (not yet published) and range."""
    schema = arrow_schema(contract, landed=True)
    hashed = ROW_HASH_COLUMN in schema.names
    read_schema = schema.remove(schema.get_field_index(ROW_HASH_COLUMN)) if hashed else schema
    rules = hashed and state_rules_version(contract.effective_rules_version)
    # the state is read before the source's snapshot: a job committing in between makes it stale, which the
    # job sees (its last data change is newer than the state) and then compares the whole snapshot
    state = load_state(s3, change_state, rules) if hashed and change_state else None
    changes = _FileSequence(s3, bucket, prefix, schema, file_name="change", **_sequence_options(options)) \
        if state else None
    detector = hashed and ChangeDetector(read_schema.names, contract.key, contract.effective_rules_version, hash_key,
                                         state, on_change=changes and changes.add)

    def rows(query: str):
        return detector.stream(read(query, read_schema)) if detector else read(query, schema)

    # One read-only transaction: a consistent snapshot for what mysqlclient reads, and ending it
    # afterwards releases the metadata lock the read holds (it would block DDL on the source until we
    # disconnect). ConnectorX reads on connections of its own, each from a snapshot a moment later.
    # extracted_at is MySQL's clock just before the snapshot: either way the batch holds every change
    # committed before it.
    lift_statement_time_limit(conn)  # readers with connections of their own lift it there (run.make_reader)
    cur = conn.cursor()
    try:
        cur.execute("SELECT UTC_TIMESTAMP(6)")
        (extracted_at,) = cur.fetchone()
        cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        check_schema(contract, live_columns(conn, contract.table))
        span = None
        if mode == "incremental":
            previous = published_manifest(s3, bucket, contract.table, batch_id)
            previous_low = previous and previous.watermark.low
            span = watermark.plan_range(
                conn, s3, bucket, contract.table, contract.watermark_column, overlap=overlap,
                previous_low=previous_low and dt.datetime.fromisoformat(previous_low),
                low=low, high=high, rerun=previous is not None)
        query = select_sql(contract, where=span and span.where_sql())
        ranges = split_key_ranges(conn, contract.table, contract.key, key_ranges) if key_ranges > 1 else []
        if ranges:
            def write_range(i: int, predicate: str) -> list[dict]:
                where = " AND ".join(f"({c})" for c in (span and span.where_sql(), predicate) if c)
                return write_parquet_files(rows(select_sql(contract, where=where)), s3, bucket, prefix,
                                           schema, file_name=f"part-r{i:03d}", **options)

            with ThreadPoolExecutor(max_workers=len(ranges)) as pool:
                futures = [pool.submit(write_range, i, r) for i, r in enumerate(ranges)]
                files = [f for future in futures for f in future.result()]
        else:
            files = write_parquet_files(rows(query), s3, bucket, prefix, schema, **options)
    except BaseException:
        if changes:
            changes.abort()
        raise
    finally:
        conn.rollback()
    change_set = _finish_change_set(s3, bucket, prefix, schema, detector, changes, files, options) if state else None
    manifest = BatchManifest(
        table=contract.table,
        batch_id=batch_id,
        run_id=run_id,
        mode=mode,
        source_query=query,
        watermark=Watermark(**span.as_json()) if span else Watermark(),
        row_count=sum(f["rows"] for f in files),
        partition_cols=list(options["partition_cols"]),
        key_ranges=ranges,
        schema=schema_json(schema),
        schema_hash=schema_hash(schema),
        files=[FileEntry(**f) for f in files],
        change_set=change_set,
        extracted_at=extracted_at.replace(tzinfo=dt.timezone.utc).isoformat(timespec="microseconds"),
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
    return manifest, span


def _sequence_options(options: dict) -> dict:
    return {k: options[k] for k in ("extra_args", "rows_per_file", "row_group_rows", "compression")}


def _finish_change_set(s3, bucket: str, prefix: str, schema: pa.Schema, detector: ChangeDetector,
                       changes: _FileSequence, files: list[dict], options: dict) -> ChangeSet:
    """The change set's files and counts, once every row has streamed (include/extract/change_set.py)."""
    try:
        outcome = detector.finish()
        if len(outcome.reread_keys):
            # copies of a duplicated member_id whose hash the state held: read back from the snapshot
            log.warning("%d member ids are held more than once at the source: every copy goes to the job",
                        len(outcome.reread_keys))
            held = pa.array(detector.state.hashes, pa.binary(len(detector.state.hashes[0])))
            for entry in files:
                key = entry["path"].removeprefix(f"s3://{bucket}/")
                table = pq.read_table(pa.BufferReader(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
                wanted = pc.and_(pc.is_in(member_key_arrow(table[detector.key_column]), value_set=outcome.reread_keys),
                                 pc.is_in(table[ROW_HASH_COLUMN], value_set=held))
                changes.add(table.filter(wanted).select(schema.names))
        change_files = changes.finish()
    except BaseException:
        changes.abort()
        raise
    keys = _FileSequence(s3, bucket, prefix, outcome.key_index.schema, file_name="keys", **_sequence_options(options))
    keys.add(outcome.key_index)
    state = detector.state.state
    log.info("change set against member version %d: %s", state.table_version, outcome.counts)
    return ChangeSet(base_version=state.table_version, rules_version=state.rules_version, state_rows=state.table_rows,
                     counts=outcome.counts, files=[FileEntry(**f) for f in change_files],
                     key_files=[FileEntry(**f) for f in keys.finish()])


def split_key_ranges(conn, table: str, key: str, parts: int) -> list[str]:
    """SQL predicates splitting `table` into `parts` ranges of its primary key with equal row counts.

    Boundaries are the key values at every 1/parts of the ordered key (an index-only walk); values are
    quoted by the driver, since ConnectorX takes no query parameters.
    """
    cur = conn.cursor()
    cur.execute(f"SELECT COUNT(*) FROM `{table}`")
    (count,) = cur.fetchone()
    bounds = []
    for i in range(1, parts):
        cur.execute(f"SELECT `{key}` FROM `{table}` ORDER BY `{key}` LIMIT 1 OFFSET %s", (count * i // parts,))
        row = cur.fetchone()
        if row and (not bounds or row[0] != bounds[-1]):
            bounds.append(row[0])
    cur.close()
    literals = [conn.literal(b).decode() for b in bounds]
    predicates = []
    for i in range(len(literals) + 1):
        lower = f"`{key}` >= {literals[i - 1]}" if i > 0 else None
        upper = f"`{key}` < {literals[i]}" if i < len(literals) else None
        predicates.append(" AND ".join(p for p in (lower, upper) if p) or "TRUE")
    return predicates
