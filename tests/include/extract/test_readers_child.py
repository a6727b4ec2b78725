"""The ConnectorX reader's process boundary (include/extract/readers.py, `_child_stream`), with stand-in
children instead of ConnectorX: rows stream through, a stall is ended by killing the child, and a child's
error or death is reported as such. The real reader against MariaDB behind Toxiproxy is in tests/faults."""

from __future__ import annotations

import time

import pyarrow as pa
import pytest

from include.extract import readers
from include.extract.readers import ReaderFailed, ReadStalled

pytestmark = pytest.mark.unit

STREAM = """
import json, os, sys
import pyarrow as pa, pyarrow.ipc
job = json.loads(sys.stdin.readline())
out = os.fdopen(1, "wb")
with pa.ipc.new_stream(out, pa.schema([("n", pa.int64())])) as w:
    for i in range(job["batches"]):
        w.write_batch(pa.record_batch([pa.array([i] * 3)], names=["n"]))
out.close()  # before the interpreter's exit closes fd 1 under it
"""


def stream(monkeypatch, child: str, job: dict | None = None, stall_seconds: float = 5) -> list[pa.RecordBatch]:
    monkeypatch.setattr(readers, "_CHILD", child)
    return list(readers._child_stream(job or {}, stall_seconds))


def test_the_childs_batches_come_through(monkeypatch):
    batches = stream(monkeypatch, STREAM, {"batches": 4})
    assert [b.column(0).to_pylist() for b in batches] == [[i] * 3 for i in range(4)]


def test_a_child_that_sends_nothing_is_stopped_as_stalled(monkeypatch):
    started = time.monotonic()
    with pytest.raises(ReadStalled, match="no rows from MySQL for 0.5 s"):
        stream(monkeypatch, "import sys, time; sys.stdin.readline(); time.sleep(60)", stall_seconds=0.5)
    assert time.monotonic() - started < 10  # killed, not waited for


def test_the_childs_error_is_raised_with_its_kind_and_its_panic_text_printed_here(monkeypatch, capfd):
    fails = ("import json, sys; sys.stdin.readline(); sys.stderr.write('thread panicked at x\\n'); "
             f"sys.stderr.write({readers._ERROR_MARK!r} + json.dumps({{'kind': 'PanicException', "
             "'text': 'Source(MySQLError(MySqlError { ERROR 1969 }))'}) + '\\n'); sys.exit(1)")
    with pytest.raises(ReaderFailed, match="ERROR 1969") as failed:
        stream(monkeypatch, fails)
    assert failed.value.kind == "PanicException"
    assert readers._server_error(failed.value) is not None  # a server's error: never bisected as a bad value
    assert "thread panicked at x" in capfd.readouterr().err  # in the task's log, as before the child existed


def test_a_child_killed_without_a_word_is_reported_by_its_exit_status(monkeypatch):
    with pytest.raises(ReaderFailed, match="ended with exit status -9") as failed:
        stream(monkeypatch, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert failed.value.kind == "ChildDied"
