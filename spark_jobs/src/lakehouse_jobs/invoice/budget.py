"""A time budget per file for the invoice parser (invoice_load step 4).

PDFium is C code: a file that sends it into a loop never returns to Python, so neither a signal handler nor
a thread can stop it, and one such file would hold its Spark task until the run's timeout, then fail the
run, and every run after it (the ledger is written last). So each file is parsed in a child process, which
is killed when the file's budget runs out; the file is quarantined ``parse_timeout`` and the next file gets
a fresh child. A child that dies (a crash in native code) quarantines its file as ``parser_error``.

One child serves a whole task (forked, so it starts in milliseconds with the parser already imported); a
file costs one round trip of its bytes through a pipe.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any


def _serve(conn: Connection, parent_end: Connection, target: Callable[[bytes], dict]) -> None:
    # the fork copied the parent's end of the pipe too: while this process holds it open, the parent closing
    # its own never reaches recv as EOF, and every task waited out _stop's 5 s join before the kill
    parent_end.close()
    while True:
        try:
            data = conn.recv_bytes()
        except EOFError:  # the parent closed the pipe: the task is over
            return
        conn.send(target(data))


class BudgetedParser:
    """`target(data)` (a module-level function of the file's bytes, returning a row as a dict) in a child
    process, at most `seconds` per call. Use as a context manager: the child ends with the block.

    On timeout, or when the child dies, `on_failure(reason, detail)` gives the call's result instead, with
    reason ``parse_timeout`` or ``parser_error``. Raises ValueError for a budget that is not a positive
    finite number of seconds.
    """

    def __init__(self, target: Callable[[bytes], dict], seconds: float,
                 on_failure: Callable[[str, str], dict]) -> None:
        if not 0 < seconds < float("inf"):  # false for NaN too
            raise ValueError(f"a parse budget must be a positive number of seconds, not {seconds!r}")
        self.target, self.seconds, self.on_failure = target, seconds, on_failure
        self._context = multiprocessing.get_context("fork")  # the parser is imported already: no start-up cost
        self._child: Any = None
        self._conn: Connection | None = None

    def __enter__(self) -> BudgetedParser:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop(kill=False)

    def __call__(self, data: bytes) -> dict:
        if self._child is None:
            parent, child = self._context.Pipe()
            self._child = self._context.Process(target=_serve, args=(child, parent, self.target), daemon=True)
            self._child.start()
            child.close()
            self._conn = parent
        try:
            self._conn.send_bytes(data)
            if self._conn.poll(self.seconds):
                return self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            self._child.join(5)
            code = self._child.exitcode
            self._stop(kill=True)
            return self.on_failure("parser_error", f"the parser's process died (exit code {code})")
        self._stop(kill=True)
        return self.on_failure("parse_timeout", f"parsing took longer than its budget of {self.seconds:g} s")

    def _stop(self, *, kill: bool) -> None:
        if self._child is None:
            return
        self._conn.close()
        if kill:
            self._child.kill()
        self._child.join(5)
        if self._child.is_alive():
            self._child.kill()
            self._child.join()
        self._child, self._conn = None, None
