"""lakehouse_jobs.invoice.budget: a file that hangs or kills the parser is quarantined, and the next file is
parsed by a fresh process (issue 23 item 5). Targets are module-level: the child is forked from this process."""

from __future__ import annotations

import os
import time

import pytest

from dev.invoice_pdfs import render_invoice_pdf
from lakehouse_jobs.invoice.budget import BudgetedParser
from lakehouse_jobs.invoice.parse import _quarantined, parse_invoice_file
from tests.spark_jobs.invoice.test_invoice_job import DOC_A

pytestmark = pytest.mark.unit


def hangs_or_dies(data: bytes) -> dict:
    if data == b"hang":
        while True:  # as PDFium would in C: no exception, no return
            time.sleep(1)
    if data == b"die":
        os._exit(139)  # as a segfault in native code ends a process
    return {"status": "parsed", "bytes": len(data)}


def test_a_hanging_file_times_out_and_the_next_file_parses():
    with BudgetedParser(hangs_or_dies, 0.5, _quarantined) as parse:
        assert parse(b"ok") == {"status": "parsed", "bytes": 2}
        started = time.monotonic()
        hung = parse(b"hang")
        assert time.monotonic() - started < 5
        assert (hung["status"], hung["reason"]) == ("quarantined", "parse_timeout")
        assert hung["detail"] == "parsing took longer than its budget of 0.5 s"
        assert parse(b"after") == {"status": "parsed", "bytes": 5}


def test_a_parser_that_dies_quarantines_its_file_as_a_parser_error():
    with BudgetedParser(hangs_or_dies, 5, _quarantined) as parse:
        died = parse(b"die")
        assert (died["reason"], died["detail"]) == ("parser_error", "the parser's process died (exit code 139)")
        assert parse(b"next") == {"status": "parsed", "bytes": 4}


def test_the_real_parser_within_its_budget_gives_what_it_gives_in_process():
    data = render_invoice_pdf(DOC_A)
    with BudgetedParser(parse_invoice_file, 60, _quarantined) as parse:
        assert parse(data) == parse_invoice_file(data)


def test_the_child_ends_when_the_task_does_without_waiting_to_be_killed():
    """The child once kept the parent's end of the pipe open, so it never saw the end of the task: every task
    waited 5 s, then killed it (parsing 1,000 invoices took 6.5 minutes instead of 15 s)."""
    parse = BudgetedParser(hangs_or_dies, 5, _quarantined)
    with parse:
        assert parse(b"ok") == {"status": "parsed", "bytes": 2}
        child = parse._child
        started = time.monotonic()
    assert time.monotonic() - started < 1 and child.exitcode == 0


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf")])
def test_a_budget_must_be_a_positive_finite_number(seconds):
    with pytest.raises(ValueError, match="positive number of seconds"):
        BudgetedParser(hangs_or_dies, seconds, _quarantined)
