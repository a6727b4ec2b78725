"""MySQL -> Parquet on S3, streamed in bounded memory and published atomically through a manifest.

    MySQL rows -> Arrow record batches -> ParquetWriter -> S3 multipart upload

Two readers turn rows into record batches: ConnectorX (Rust, the default: about 5x faster) and
mysqlclient's server-side cursor (pure DB-API, used when the connection needs options ConnectorX does not
take, such as TLS client settings). Either way memory holds one fetch batch, one Parquet row group and one
upload part, whatever the table size. A value a reader cannot convert fails the extract with
UnreadableValue naming table, column and key (`locating`), not with the library's error.

A batch is one extraction interval under ``s3://<bucket>/<table>/<batch_id>/``; every attempt at it
writes beside the published batch, which stays readable and unchanged until the switch:

1. take the batch's lease (include/extract/lease.py): two extracts of one batch never interleave;
2. write the data files under ``attempt=<id>/`` (``part-00000.parquet``, ...), <id> unique per attempt;
3. publish: one PUT of ``_manifest.json`` naming them (atomic on S3), after confirming the lease is ours.
   Readers only ever read what a manifest lists, so files no manifest lists do not exist for them;
4. remove what the manifest no longer lists: the previous attempt's files, leftovers and open uploads
   of killed attempts. A failed attempt removes its own files; one killed outright leaves them to the
   next attempt that publishes.

The data files and the manifest are tagged as they are written (include/landing_retention.py): the landing
bucket's lifecycle rule expires tagged objects after LANDING_RETENTION_DAYS. The lease and the
high-watermark are written untagged and never expire.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from include.extract import lease, watermark
from include.extract.s3_upload import S3MultipartWriter, sse_args
from include.extract.schema_drift import check_schema, live_columns, schema_hash, schema_json, select_sql
from include.landing_retention import BATCH_OBJECT_TAGGING
from include.layout import landing_prefix, manifest_key
from lakehouse_jobs.contracts import SourceContract, arrow_schema
from lakehouse_jobs.manifest import BatchManifest, FileEntry, Watermark

log = logging.getLogger(__name__)

Reader = Callable[[str, pa.Schema], Iterator[pa.RecordBatch]]


def connectorx_reader(url: str, fetch_rows: int = 64 * 1024) -> Reader:
    """Record batches straight from ConnectorX's Arrow stream, cast to the contract's types."""

    def read(query: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        import connectorx as cx

        for batch in cx.read_sql(url, query, return_type="arrow_stream", batch_size=fetch_rows):
            yield batch.cast(schema)

    return read


def stream_record_batches(conn, query: str, schema: pa.Schema, fetch_rows: int = 50_000) -> Iterator[pa.RecordBatch]:
    """Rows of `query` as Arrow record batches, through an unbuffered (server-side) cursor.

    mysqlclient's SSCursor uses mysql_use_result: rows stream from the server as they are fetched
    instead of the whole result landing in client memory first.
    """
    from MySQLdb.cursors import SSCursor  # imported here so the module imports without mysqlclient

    cur = conn.cursor(SSCursor)
    try:
        cur.execute(query)
        while rows := cur.fetchmany(fetch_rows):
            columns = zip(*rows)
            yield pa.RecordBatch.from_arrays(
                [pa.array(values, type=f.type) for values, f in zip(columns, schema)], schema=schema
            )
    finally:
        cur.close()


class UnreadableValue(RuntimeError):
    """A source value the reader cannot convert to the batch's Arrow type; names table, column and key."""


def _is_conversion_error(e: BaseException) -> bool:
    # ConnectorX panics in Rust (pyo3's PanicException, a BaseException); pyarrow raises ArrowInvalid etc.
    # Connection and SQL errors (MySQLdb, ConnectorX's RuntimeError) are none of these.
    return type(e).__name__ == "PanicException" or isinstance(
        e, (pa.ArrowException, ValueError, TypeError, OverflowError))


def locating(read: Reader, table: str, key: str) -> Reader:
    """`read`, failing with UnreadableValue instead of a reader's conversion error.

    The value is found with the failing reader itself, so the row named is the row it chokes on: the
    query's rows are bisected in `key` order (LIMIT/OFFSET probes over the query as a derived table)
    down to the first unreadable row, whose columns are then read one at a time. If no column or every
    column of it fails, the reader's own error is raised. Each failing probe of ConnectorX prints
    Rust's panic message on stderr (about log2(rows) of them); the task fails with UnreadableValue.
    """

    def fails(query: str, schema: pa.Schema) -> bool:
        try:
            for _ in read(query, schema):
                pass
        except BaseException as e:
            if not _is_conversion_error(e):
                raise
            return True
        return False

    def rows(query: str, columns: str, offset: int, limit: int) -> str:
        return f"SELECT {columns} FROM ({query}) AS q ORDER BY `{key}` LIMIT {limit} OFFSET {offset}"

    def value(query: str, type_: pa.DataType):
        [batch] = [b for b in read(query, pa.schema([("v", type_)])) if b.num_rows]
        return batch.column(0)[0].as_py()

    def locate(query: str, schema: pa.Schema, error: BaseException) -> UnreadableValue | None:
        lo, hi = 0, value(f"SELECT COUNT(*) AS v FROM ({query}) AS q", pa.int64())
        while hi - lo > 1:  # the first unreadable row, in key order, lies in [lo, hi)
            mid = (lo + hi) // 2
            if fails(rows(query, "*", lo, mid - lo), schema):
                hi = mid
            else:
                lo = mid
        bad = [f"{f.name!r} ({f.type})" for f in schema if fails(rows(query, f"`{f.name}`", lo, 1), pa.schema([f]))]
        if not bad or len(bad) == len(schema):  # no value, or every column: the reader's fault, not a value's
            return None
        row_key = value(rows(query, f"CAST(`{key}` AS CHAR) AS v", lo, 1), pa.string())
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        return UnreadableValue(f"table {table!r}: the reader cannot convert column {', '.join(bad)} "
                               f"of the row {key} = {row_key!r}: {reason}")

    def checked(query: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        try:
            yield from read(query, schema)
        except BaseException as e:
            if not _is_conversion_error(e):
                raise
            located = locate(query, schema, e)
            if located is None:
                raise
            raise located from None  # the message says it all; no Rust panic text as the cause

    return checked


def _remove(s3, bucket: str, prefix: str, keep: tuple[str, ...] = ()) -> None:
    """Delete every object under `prefix` whose key starts with none of `keep`; abort open uploads."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", []) if not o["Key"].startswith(keep)]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            if not upload["Key"].startswith(keep):
                s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])


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
    key_ranges: int = 1, lease_seconds: float = 30 * 60,
) -> BatchManifest:
    """Extract `contract.table` as batch `batch_id`; return the published BatchManifest.

    mode "snapshot": the whole table. mode "incremental": rows whose watermark column lies in the range
    planned by include/extract/watermark.py (`low`/`high` given explicitly for a backfill).
    `key_ranges` > 1 splits the table into that many primary-key ranges of equal row counts, read and
    written in parallel (files `part-r000-00000.parquet`, ...); it needs a `reader` that opens its own
    connections (ConnectorX).
    `conn` (DB-API, mysqlclient) checks the schema and, without a `reader`, reads the rows too.
    `lease_seconds`: how long a crashed extract of another run blocks this batch (include/extract/lease.py).

    A snapshot is the table as it is now, whatever interval `batch_id` names: the manifest's
    extracted_at says when it was read, so a backfill or late re-run is recorded as what it is.
    Raises ValueError for impossible options, lease.LeaseHeld while another run extracts the batch,
    lease.LeaseLost if another extract took the batch over, SchemaDriftError, UnreadableValue; the
    published batch, if any, is then unchanged.
    """
    if mode not in ("snapshot", "incremental"):
        raise ValueError(f"mode must be 'snapshot' or 'incremental', not {mode!r}")
    if mode == "incremental" and not contract.watermark_column:
        raise ValueError(f"table {contract.table!r} has no watermark column: only snapshots are possible")
    if key_ranges > 1 and reader is None:
        raise ValueError("parallel key ranges need a reader with its own connections (ConnectorX)")
    extra = sse_args(sse, sse_kms_key_id)  # every object: lease, data files, manifest, watermark
    batch_extra = {**extra, "Tagging": BATCH_OBJECT_TAGGING}  # the batch's objects only: they expire
    prefix = landing_prefix(contract.table, batch_id)
    attempt = f"{prefix}attempt={dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}/"
    held = lease.acquire(s3, bucket, prefix, run_id=run_id, seconds=lease_seconds, extra_args=extra)
    try:
        try:
            manifest, span = _extract(
                conn, s3, contract=contract, bucket=bucket, batch_id=batch_id, run_id=run_id, prefix=attempt,
                mode=mode, overlap=overlap, low=low, high=high, key_ranges=key_ranges,
                read=locating(reader or (lambda q, schema: stream_record_batches(conn, q, schema, fetch_rows)),
                              contract.table, contract.key),
                options=dict(extra_args=batch_extra, rows_per_file=rows_per_file, row_group_rows=row_group_rows,
                             compression=compression, partition_cols=partition_cols))
            held.confirm()
        except BaseException:
            try:
                _remove(s3, bucket, attempt)
            except Exception:
                log.warning("could not remove the failed attempt's files under %s", attempt, exc_info=True)
            raise
        # from here on the attempt's files may be published: a failure leaves them for the next attempt
        key = manifest_key(contract.table, batch_id)
        s3.put_object(Bucket=bucket, Key=key, Body=manifest.to_json().encode(),
                      ContentType="application/json", **batch_extra)
        log.info("published s3://%s/%s: %d rows in %d file(s), read at %s", bucket, key, manifest.row_count,
                 len(manifest.files), manifest.extracted_at)
        if span and span.high is not None:
            watermark.write_high_watermark(s3, bucket, contract.table, span.high, extra)
        _remove(s3, bucket, prefix, keep=(key, held.key, attempt))
    finally:
        held.release()
    return manifest


def _extract(conn, s3, *, contract: SourceContract, bucket: str, batch_id: str, run_id: str, prefix: str,
             mode: str, overlap: dt.timedelta, low, high, key_ranges: int, read: Reader, options: dict,
             ) -> tuple[BatchManifest, watermark.WatermarkRange | None]:
    """Write the batch's files under `prefix`; return its manifest (not yet published) and range."""
    schema = arrow_schema(contract, landed=True)
    # One read-only transaction: a consistent snapshot for what mysqlclient reads, and ending it
    # afterwards releases the metadata lock the read holds (it would block DDL on the source until we
    # disconnect). ConnectorX reads on connections of its own, each from a snapshot a moment later.
    # extracted_at is MySQL's clock just before the snapshot: either way the batch holds every change
    # committed before it.
    cur = conn.cursor()
    try:
        cur.execute("SELECT UTC_TIMESTAMP(6)")
        (extracted_at,) = cur.fetchone()
        cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        check_schema(contract, live_columns(conn, contract.table))
        span = None
        if mode == "incremental":
            previous = _existing_manifest(s3, bucket, contract.table, batch_id)
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
                return write_parquet_files(read(select_sql(contract, where=where), schema), s3, bucket, prefix,
                                           schema, file_name=f"part-r{i:03d}", **options)

            with ThreadPoolExecutor(max_workers=len(ranges)) as pool:
                futures = [pool.submit(write_range, i, r) for i, r in enumerate(ranges)]
                files = [f for future in futures for f in future.result()]
        else:
            files = write_parquet_files(read(query, schema), s3, bucket, prefix, schema, **options)
    finally:
        conn.rollback()
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
        extracted_at=extracted_at.replace(tzinfo=dt.timezone.utc).isoformat(timespec="microseconds"),
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
    return manifest, span


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


def _existing_manifest(s3, bucket: str, table: str, batch_id: str) -> BatchManifest | None:
    try:
        return read_manifest(s3, bucket, table, batch_id)
    except s3.exceptions.NoSuchKey:
        return None


def read_manifest(s3, bucket: str, table: str, batch_id: str) -> BatchManifest:
    """The published manifest of a batch; raises NoSuchKey when there is none, ManifestError if invalid."""
    key = manifest_key(table, batch_id)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return BatchManifest.from_json(body, source=f"s3://{bucket}/{key}")
