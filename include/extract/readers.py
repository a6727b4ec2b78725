"""Readers: the rows of a SELECT as Arrow record batches, whatever reads them.

Two readers turn rows into record batches: ConnectorX (Rust, the default: about 5x faster) and
mysqlclient's server-side cursor (pure DB-API, used when the connection needs options ConnectorX does not
take, such as TLS client settings). Either way memory holds one fetch batch, whatever the table size. A
value a reader cannot convert fails the extract with UnreadableValue naming table, column and key
(`locating`), not with the library's error; an error the server sends (a statement-time limit, a dropped
connection) fails it with that error, never taken for a bad value.

ConnectorX reads in a child process so that a read that stalls (no rows, the connection still open) can
be stopped: `connectorx_reader`'s `stall_seconds`. mysqlclient (used only for TLS connections) has no
such limit: a stall there lasts until something kills the task (docs/reliability.md).

Managed and replica servers often cap a statement's time (MariaDB `max_statement_time`, MySQL
`max_execution_time`, also per user); a snapshot read of a large table outlasts any such cap, so each
reader lifts it for its own session (`lift_statement_time_limit`), and only there.
"""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence

import pyarrow as pa

Reader = Callable[[str, pa.Schema], Iterator[pa.RecordBatch]]


def statement_time_unlimited(server_version: str) -> str:
    """The SET statement that lifts the statement-time limit for one session, in the server's own form.

    `server_version`: as the server reports it (``SELECT VERSION()``, mysqlclient's get_server_info()).
    MariaDB (>= 10.1): ``max_statement_time``, seconds, 0 = none; it also overrides a per-user
    ``MAX_STATEMENT_TIME`` (mariadb.com/kb, "Aborting Statements that Exceed a Certain Time to Execute").
    MySQL (>= 5.7.8): ``max_execution_time``, milliseconds, 0 = none, read-only SELECTs only
    (dev.mysql.com, "Server System Variables"). Neither needs a privilege for the session's own value.
    """
    if "mariadb" in server_version.lower():
        return "SET SESSION max_statement_time = 0"
    return "SET SESSION max_execution_time = 0"


def lift_statement_time_limit(conn) -> str:
    """Lift the statement-time limit of `conn`'s session (DB-API, mysqlclient); return the statement run,
    for readers that open connections of their own (`connectorx_reader`'s `session_sql`)."""
    sql = statement_time_unlimited(conn.get_server_info())
    cur = conn.cursor()
    try:
        cur.execute(sql)
    finally:
        cur.close()
    return sql


def connectorx_reader(url: str, fetch_rows: int = 64 * 1024, session_sql: Sequence[str] = (),
                      stall_seconds: float = 300.0) -> Reader:
    """Record batches from ConnectorX's Arrow stream, cast to the contract's types.

    `session_sql`: statements run on each of ConnectorX's connections before the query (its
    ``pre_execution_query``), such as `statement_time_unlimited`.
    `stall_seconds`: the longest wait for the next bytes of rows; past it the read is stopped with
    ReadStalled. ConnectorX has no read timeout (its URL takes none) and, stalled, keeps the calling
    process's threads from running, so it reads in a child process (`_serve_connectorx`) that streams Arrow
    IPC through a pipe: a stall is seen by this process and ended by killing the child, whose connections
    then close. The URL (with its credentials) reaches the child on stdin, never on a command line.
    Raises ReaderFailed for the child's errors (kind = its exception's type name), ReadStalled.
    """

    def read(query: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        job = {"url": url, "query": query, "fetch_rows": fetch_rows, "session_sql": list(session_sql)}
        for batch in _child_stream(job, stall_seconds):
            yield batch.cast(schema)

    return read


_CHILD = "from include.extract.readers import _serve_connectorx; _serve_connectorx()"
_ERROR_MARK = "\x1e"  # starts the child's last stderr line: its error as JSON (Rust's panic text comes before it)


def _child_stream(job: dict, stall_seconds: float) -> Iterator[pa.RecordBatch]:
    import pyarrow.ipc  # noqa: F401 - pa.ipc is loaded on first use

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # the modules this process sees
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=errors, env=env)
        try:
            try:
                child.stdin.write(json.dumps(job).encode() + b"\n")
                child.stdin.close()
            except BrokenPipeError:  # it died on start: its exit status and stderr say why, below
                pass
            rows = io.BufferedReader(_StallGuardedPipe(child.stdout.fileno(), stall_seconds), 1 << 20)
            try:
                yield from pa.ipc.open_stream(rows)
                stream_error = None
            except (pa.ArrowException, OSError) as e:  # the stream broke off: the child's error says why
                stream_error = e
            if child.wait() != 0 or stream_error is not None:
                errors.seek(0)
                raise _child_error(errors.read().decode(errors="replace"), child.returncode) from stream_error
        finally:
            if child.poll() is None:  # stalled, or the consumer stopped early
                child.kill()
                child.wait()
            child.stdout.close()


class _StallGuardedPipe(io.RawIOBase):
    """The read end of a pipe whose reads raise ReadStalled after `seconds` without a byte."""

    def __init__(self, fd: int, seconds: float) -> None:
        self.fd, self.seconds = fd, seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        ready, _, _ = select.select([self.fd], [], [], self.seconds)
        if not ready:
            raise ReadStalled(f"no rows from MySQL for {self.seconds:g} s: the server or the network path "
                              "stalled; the read was stopped and its connections closed")
        data = os.read(self.fd, len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _child_error(stderr: str, returncode: int) -> ReaderFailed:
    before, _, last = stderr.rstrip("\n").rpartition("\n")
    sys.stderr.write(before + "\n" if before.strip() else "")  # Rust's panic message, as it would print here
    if last.startswith(_ERROR_MARK):
        error = json.loads(last[len(_ERROR_MARK):])
        return ReaderFailed(error["kind"], error["text"])
    # killed (OOM, a signal) before it could say why
    return ReaderFailed("ChildDied", f"the ConnectorX reader process ended with exit status {returncode}")


def _serve_connectorx() -> None:
    """The child of `connectorx_reader`: one JSON job on stdin, Arrow IPC on stdout, exit status 1 and the
    error as `_ERROR_MARK` + JSON on stderr's last line."""
    import connectorx as cx
    import pyarrow.ipc  # noqa: F401

    job = json.loads(sys.stdin.readline())
    rows = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever else writes to stdout goes to stderr, never into the Arrow stream
    try:
        batches = cx.read_sql(job["url"], job["query"], return_type="arrow_stream", batch_size=job["fetch_rows"],
                              pre_execution_query=job["session_sql"] or None)
        with pa.ipc.new_stream(rows, batches.schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
    except BaseException as e:  # noqa: BLE001 - a Rust panic is a BaseException; the parent raises it
        sys.stderr.write("\n" + _ERROR_MARK + json.dumps({"kind": type(e).__name__, "text": str(e)}) + "\n")
        sys.stderr.flush()
        os._exit(1)  # not sys.exit: ConnectorX's threads may still hold the stalled connection
    rows.close()


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


class ReaderFailed(RuntimeError):
    """The ConnectorX reader's child process failed; `kind` is its exception's type name (``PanicException``
    for ConnectorX's Rust errors), the message its text."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(text)
        self.kind = kind


class ReadStalled(RuntimeError):
    """No bytes of rows arrived from the reader for longer than its stall limit."""


class SourceError(RuntimeError):
    """The read from MySQL failed, not a value (the server's error: a statement-time limit, a killed query;
    or the connection's: dropped, cut), as ConnectorX reports it through a Rust panic; the message is the
    error it carries."""


def _is_panic(e: BaseException) -> bool:
    # pyo3's PanicException (a BaseException): ConnectorX failed in Rust, here or in the reader's child
    return getattr(e, "kind", type(e).__name__) == "PanicException"


# what a conversion error raised in the reader's child is called (pyarrow's and Python's)
_CONVERSION_KINDS = {"ArrowInvalid", "ArrowTypeError", "ArrowNotImplementedError", "ValueError", "TypeError",
                     "OverflowError"}


def _server_error(e: BaseException) -> str | None:
    """The error of the mysql crate a ConnectorX panic carries (``Source(MySQLError(MySqlError { ERROR 1969
    ...`` from the server, ``CodecError { IO error ...`` from a cut connection, ...), else None. Its one
    conversion error, FromValueError, is a value's; so is mysql_common's "Couldn't convert the value"."""
    text = str(e)
    if _is_panic(e) and "MySQLError(" in text and "FromValueError" not in text:
        return (text.strip().splitlines() or [text])[0][:500]
    return None


def _is_conversion_error(e: BaseException) -> bool:
    # ConnectorX panics in Rust on a value it cannot convert, and on the server's errors too (those are
    # not a value's fault); pyarrow raises ArrowInvalid etc. MySQLdb's errors are none of these.
    if _is_panic(e):
        return _server_error(e) is None
    if isinstance(e, ReaderFailed):
        return e.kind in _CONVERSION_KINDS
    return isinstance(e, (pa.ArrowException, ValueError, TypeError, OverflowError))


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
            if (server := _server_error(e)) is not None:
                raise SourceError(f"table {table!r}: the read from MySQL failed: {server}") from None
            if isinstance(e, ReadStalled):
                raise ReadStalled(f"table {table!r}: {e}") from None
            if not _is_conversion_error(e):
                raise
            located = locate(query, schema, e)
            if located is None:
                raise
            raise located from None  # the message says it all; no Rust panic text as the cause

    return checked
