"""MySQL -> Parquet on S3, streamed in bounded memory and published atomically through a manifest.

    MySQL rows -> Arrow record batches -> ParquetWriter -> S3 multipart upload

Two readers turn rows into record batches: ConnectorX (Rust, the default: about 5x faster) and
mysqlclient's server-side cursor (pure DB-API, used when the connection needs options ConnectorX does not
take, such as TLS client settings). Either way memory holds one fetch batch, one Parquet row group and one
upload part, whatever the table size.

A batch is one extraction interval under ``s3://<bucket>/<table>/<batch_id>/``:

1. unpublish: delete the batch's manifest, then every object and unfinished upload under its prefix
   (a re-run replaces the batch; leftovers of a killed attempt go away);
2. write the data files ``part-00000.parquet``, ``part-00001.parquet``, ... (deterministic names);
3. publish: write ``_manifest.json`` last. Readers only ever read what a manifest lists, so a batch
   without a manifest does not exist for them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from include.extract import watermark
from include.extract.s3_upload import S3MultipartWriter, sse_args
from include.extract.schema_drift import check_schema, live_columns, schema_hash, schema_json, select_sql
from include.layout import landing_prefix, manifest_key
from lakehouse_jobs.contracts import SourceContract
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


def unpublish(s3, bucket: str, prefix: str) -> None:
    """Remove a batch: manifest first (so no reader sees it half-deleted), then data and open uploads."""
    s3.delete_object(Bucket=bucket, Key=prefix + "_manifest.json")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
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
    key_ranges: int = 1,
) -> dict:
    """Extract `contract.table` as batch `batch_id`; return the published BatchManifest.

    mode "snapshot": the whole table. mode "incremental": rows whose watermark column lies in the range
    planned by include/extract/watermark.py (`low`/`high` given explicitly for a backfill).
    `key_ranges` > 1 splits the table into that many primary-key ranges of equal row counts, read and
    written in parallel (files `part-r000-00000.parquet`, ...); it needs a `reader` that opens its own
    connections (ConnectorX).
    `conn` (DB-API, mysqlclient) checks the schema and, without a `reader`, reads the rows too.
    """
    if mode not in ("snapshot", "incremental"):
        raise ValueError(f"mode must be 'snapshot' or 'incremental', not {mode!r}")
    if mode == "incremental" and not contract.watermark_column:
        raise ValueError(f"table {contract.table!r} has no watermark column: only snapshots are possible")
    if key_ranges > 1 and reader is None:
        raise ValueError("parallel key ranges need a reader with its own connections (ConnectorX)")
    extra = sse_args(sse, sse_kms_key_id)
    prefix = landing_prefix(contract.table, batch_id)
    previous = _existing_manifest(s3, bucket, contract.table, batch_id)
    # One read-only transaction: a consistent snapshot for the whole table, and ending it afterwards
    # releases the metadata lock the read holds (it would block DDL on the source until we disconnect).
    conn.cursor().execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
    try:
        checked = check_schema(contract, live_columns(conn, contract.table))
        if checked.new_columns:
            log.warning("source has new columns %s; extracting them (policy: evolve)", checked.new_columns)
        span = None
        if mode == "incremental":
            previous_low = previous and previous.watermark.low
            span = watermark.plan_range(
                conn, s3, bucket, contract.table, contract.watermark_column, overlap=overlap,
                previous_low=previous_low and dt.datetime.fromisoformat(previous_low),
                low=low, high=high, rerun=previous is not None)
        query = select_sql(contract, checked.schema, where=span and span.where_sql())
        ranges = split_key_ranges(conn, contract.table, contract.key, key_ranges) if key_ranges > 1 else []
        unpublish(s3, bucket, prefix)
        options = dict(extra_args=extra, rows_per_file=rows_per_file, row_group_rows=row_group_rows,
                       compression=compression, partition_cols=partition_cols)
        if ranges:
            def write_range(i: int, predicate: str) -> list[dict]:
                where = " AND ".join(f"({c})" for c in (span and span.where_sql(), predicate) if c)
                range_query = select_sql(contract, checked.schema, where=where)
                return write_parquet_files(reader(range_query, checked.schema), s3, bucket, prefix,
                                           checked.schema, file_name=f"part-r{i:03d}", **options)

            with ThreadPoolExecutor(max_workers=len(ranges)) as pool:
                futures = [pool.submit(write_range, i, r) for i, r in enumerate(ranges)]
                files = [f for future in futures for f in future.result()]
        else:
            rows = reader(query, checked.schema) if reader else stream_record_batches(
                conn, query, checked.schema, fetch_rows)
            files = write_parquet_files(rows, s3, bucket, prefix, checked.schema, **options)
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
        partition_cols=list(partition_cols),
        key_ranges=ranges,
        schema=schema_json(checked.schema),
        schema_hash=schema_hash(checked.schema),
        new_columns=checked.new_columns,
        files=[FileEntry(**f) for f in files],
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
    key = manifest_key(contract.table, batch_id)
    s3.put_object(Bucket=bucket, Key=key, Body=manifest.to_json().encode(),
                  ContentType="application/json", **extra)
    log.info("published s3://%s/%s: %d rows in %d file(s)", bucket, key, manifest.row_count, len(files))
    if span and span.high is not None:
        watermark.write_high_watermark(s3, bucket, contract.table, span.high, extra)
    return manifest


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
