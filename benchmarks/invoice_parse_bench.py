"""Invoice PDF parsing: pypdfium2 against pdfplumber, side by side, on one core.

    python -m benchmarks.invoice_parse_bench                      # 300 generated invoices + the seed, 5 repeats
    python -m benchmarks.invoice_parse_bench --invoices 60 --repeats 3   # a quick look
    python -m benchmarks.invoice_parse_bench --json /tmp/invoice-bench.json

The question (issue 12): which PDF library should ``lakehouse_jobs.invoice.text_layer`` use, given a target of 30
invoices per second on 2 cores end to end including Spark, i.e. a parser well under ~30 ms per invoice per
core? Contenders, each given the PDF's bytes:

- ``pdfium text``: ``text_layer.extract_pages``, PDFium's characters with their boxes (pypdfium2);
- ``plumber text``: pdfplumber's characters (pdfminer.six) converted to the same ``PageText``;
- ``plumber words``: pdfplumber's ``extract_words()`` per page, what a pdfplumber-based parser would start
  from;
- ``pdfium parse`` and ``plumber parse``: the whole parse, ``pdf.parse_pages`` over either text
  layer, so the two differ only in the library.

Inputs: the brief's invoice (tests/data/invoice.pdf) and ``--invoices`` synthetic ones from
``dev.invoice_pdfs`` (seeded), grouped by page count. Method (shared notes, performance.md): the process is
pinned to one CPU; one discarded warm-up pass; then ``--repeats`` rounds, in each of which every contender
parses every invoice of a group, the contenders' order rotating from round to round; a contender's figure
for a group is its time for the group divided by the number of invoices (and of pages), reported as the
median over the rounds with min and max. Ratios are pdfplumber / pypdfium2. Before timing, both full
parses of every invoice are compared with the generated document; a mismatch is reported and makes the
exit status 1. It reports, never asserts a speed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pdfplumber

from dev.invoice_pdfs import generate_invoices, render_invoice_pdf
from lakehouse_jobs.invoice.pdf import parse_invoice_pdf, parse_pages
from lakehouse_jobs.invoice.text_layer import Char, PageText, extract_pages

REPO = Path(__file__).resolve().parents[1]
SEED_PDF = REPO / "tests" / "data" / "invoice.pdf"
BUDGET_MS = 30.0  # per invoice per core, the bound for the parser
MEMBERS = list(range(11134891, 11134891 + 1000))


def plumber_pages(data: bytes) -> list[PageText]:
    """pdfplumber's characters as the parser's PageText: baseline from the text matrix, height from the box."""
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return [
            PageText(float(page.width), float(page.height), tuple(
                Char(c["text"], float(c["x0"]), float(c["x1"]), float(page.height) - float(c["matrix"][5]),
                     float(c["bottom"] - c["top"]))
                for c in page.chars if c["text"].strip()
            ))
            for page in pdf.pages
        ]


def plumber_words(data: bytes) -> list[list[dict]]:
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return [page.extract_words() for page in pdf.pages]


CONTENDERS: dict[str, Callable[[bytes], object]] = {
    "pdfium text": extract_pages,
    "plumber text": plumber_pages,
    "plumber words": plumber_words,
    "pdfium parse": parse_invoice_pdf,
    "plumber parse": lambda data: parse_pages(plumber_pages(data)),
}


def pin_to_one_cpu() -> int | None:
    """Run on the first CPU this process may use (Linux); returns it, or None where affinity is unsupported."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def inputs(count: int, seed: int) -> dict[str, list[tuple[bytes, object]]]:
    """Groups of (pdf bytes, expected document or None): the seed invoice, then generated ones by page count."""
    groups: dict[str, list[tuple[bytes, object]]] = {"seed invoice.pdf (1 page)": [(SEED_PDF.read_bytes(), None)]}
    for doc in generate_invoices(count, seed, MEMBERS):
        data = render_invoice_pdf(doc)
        pages = len(extract_pages(data))
        groups.setdefault(f"generated, {pages} page{'s' if pages > 1 else ''}", []).append((data, doc))
    return dict(sorted(groups.items(), key=lambda kv: (not kv[0].startswith("seed"), kv[0])))


def check(groups: dict[str, list[tuple[bytes, object]]]) -> list[str]:
    """Both libraries' full parses against the generated documents (and each other, for the seed)."""
    problems = []
    for name, items in groups.items():
        for data, expected in items:
            by_pdfium = parse_invoice_pdf(data)
            by_plumber = parse_pages(plumber_pages(data))
            if expected is not None and by_pdfium != expected:
                problems.append(f"{name}: pdfium parse of {expected.invoice_number} differs from the generated one")
            if by_plumber != by_pdfium:
                problems.append(f"{name}: plumber parse of {by_pdfium.invoice_number} differs from pdfium's")
    return problems


def measure(groups: dict[str, list[tuple[bytes, object]]], repeats: int) -> dict[str, dict[str, list[float]]]:
    """Seconds per group per contender, one figure per round."""
    names = list(CONTENDERS)
    times: dict[str, dict[str, list[float]]] = {g: {c: [] for c in names} for g in groups}
    for round_ in range(repeats + 1):  # round 0 warms up and is discarded
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for group, items in groups.items():
            for contender in order:
                fn = CONTENDERS[contender]
                start = time.perf_counter()
                for data, _ in items:
                    fn(data)
                if round_:
                    times[group][contender].append(time.perf_counter() - start)
    return times


def report(groups, times, cpu, repeats: int) -> tuple[str, dict]:
    pages = {g: sum(len(extract_pages(d)) for d, _ in items) for g, items in groups.items()}
    result = {"cpu": cpu, "repeats": repeats, "machine": platform.platform(), "python": platform.python_version(),
              "loadavg": os.getloadavg(), "versions": {p: metadata.version(p) for p in ("pypdfium2", "pdfplumber",
                                                                                        "pdfminer.six")},
              "groups": {}}
    lines = [
        f"Invoice parsing, ms per invoice on one core (cpu {cpu}), median of {repeats} rounds [min-max]; "
        f"pypdfium2 {result['versions']['pypdfium2']}, pdfplumber {result['versions']['pdfplumber']} "
        f"(pdfminer.six {result['versions']['pdfminer.six']}); load average {result['loadavg'][0]:.2f}",
        "",
        "| input | invoices | pages | " + " | ".join(CONTENDERS) + " | text ratio | parse ratio |",
        "|---|---:|---:|" + "---:|" * (len(CONTENDERS) + 2),
    ]
    for group, items in groups.items():
        per_invoice = {c: [t / len(items) * 1000 for t in ts] for c, ts in times[group].items()}
        med = {c: statistics.median(v) for c, v in per_invoice.items()}
        cells = [f"{med[c]:.2f} [{min(v):.2f}-{max(v):.2f}]" for c, v in per_invoice.items()]
        text_ratio = med["plumber text"] / med["pdfium text"]
        parse_ratio = med["plumber parse"] / med["pdfium parse"]
        lines.append(f"| {group} | {len(items)} | {pages[group]} | " + " | ".join(cells)
                     + f" | {text_ratio:.1f}x | {parse_ratio:.1f}x |")
        result["groups"][group] = {"invoices": len(items), "pages": pages[group], "ms_per_invoice": per_invoice,
                                   "ms_per_page_median": {c: m * len(items) / pages[group] for c, m in med.items()}}
    total_items = sum(len(items) for items in groups.values())
    lines.append("")
    for contender in ("pdfium parse", "plumber parse"):
        ms = sum(statistics.median(times[g][contender]) for g in groups) / total_items * 1000
        verdict = "within" if ms < BUDGET_MS else "over"
        lines.append(f"{contender}: {ms:.2f} ms per invoice over all inputs, {1000 / ms:.0f} invoices/s per core "
                     f"({verdict} the {BUDGET_MS:.0f} ms budget)")
        result[f"{contender.replace(' ', '_')}_ms_per_invoice"] = ms
    return "\n".join(lines), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=300, help="generated invoices (default 300)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    cpu = pin_to_one_cpu()
    groups = inputs(args.invoices, args.seed)
    problems = check(groups)
    for p in problems:
        print("MISMATCH", p)
    times = measure(groups, args.repeats)
    text, result = report(groups, times, cpu, args.repeats)
    print(text)
    if args.json:
        result["mismatches"] = problems
        args.json.write_text(json.dumps(result, indent=2))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
