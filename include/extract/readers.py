"""Readers: the rows of a SELECT as Arrow record batches, whatever reads them.

Two readers turn rows into record batches: ConnectorX (Rust, the default: about 5x faster) and
mysqlclient's server-side cursor (pure DB-API, used when the connection needs options ConnectorX does not
take, such as TLS client settings). Either way memory holds one fetch batch, whatever the table size. A
value a reader cannot convert fails the extract with UnreadableValue naming table, column and key
(`locating`), not with the library's error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa

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
