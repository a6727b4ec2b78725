"""Invoice load benchmark: 1,000 generated invoice PDFs from the first read to the committed MERGE, on one and on
two cores.

    .venv/bin/python -m benchmarks.invoice_load_bench                       # 1,000 invoices, 2 repeats; ~10 min
    .venv/bin/python -m benchmarks.invoice_load_bench --invoices 100 --repeats 1 --out -   # a quick look

The question (issue 12): how many invoices per second does `invoice_load` load, per core, and does parsing
scale with partitions? Target: at least 30 invoices/s for a 1,000-invoice batch on this 2-core machine.

Method: dev/invoice_pdfs.py writes N invoices (seed 12; varied line counts, multi-page ones among them) to a
local folder once, with a member_card Parquet file of the member numbers they use. Each measured load is a
child process with a Spark session of its own (`local[1]` or `local[2]`, the conf of dev/local_spark.py,
3 GiB driver) that first loads the brief's invoice into fresh tables (an earlier run: it creates the tables,
untimed), then runs `invoice_load.main` on the N invoices; the time is that main()'s own, from listing the
files to the result file (the session's start-up is excluded: a job cluster pays it once per run, and
benchmarks/dag_overhead.py measures it). The job's step lines give parse and MERGE times. Cores
alternate within each repeat. Everything is on local disk; no stack is needed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness.processes import loadavg, system_cpu
from benchmarks.harness.results import REPO, RESULTS_DIR, command_line, machine, write_result

STEP_LINE = re.compile(r"step (\w+): ([0-9.]+) s")
SEED = 12


def write_inputs(folder: Path, invoices: int) -> dict:
    """N invoice PDFs under folder/pdfs and folder/member_card.parquet; facts about them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dev.invoice_pdfs import write_batch

    cards = list(range(11_000_001, 11_000_201))
    written = write_batch(folder / "pdfs", invoices, SEED, cards)
    (folder / "earlier").mkdir()
    (folder / "earlier" / "invoice.pdf").write_bytes((REPO / "tests" / "data" / "invoice.pdf").read_bytes())
    pq.write_table(pa.table({"card_number": [str(c) for c in cards],
                             "member_id": [f"00000000-0000-4000-8000-{c:012d}" for c in cards]}),
                   folder / "member_card.parquet")
    pages = [len(d.lines) for _, d in written]
    return {"invoices": len(written), "lines": sum(pages), "bytes": sum(p.stat().st_size for p, _ in written)}


def worker(cores: int, folder: Path) -> dict:
    """One load in a fresh session with `cores` cores (runs in the child process)."""
    from benchmarks.member_history_bench import local_session, pii_keys
    from lakehouse_jobs.invoice import job as invoice_load

    spark = local_session("3g", {"spark.master": f"local[{cores}]"})
    steps: dict[str, float] = {}

    class Steps(logging.Handler):
        def emit(self, record):
            if m := STEP_LINE.match(record.getMessage()):
                steps[m[1]] = steps.get(m[1], 0.0) + float(m[2])

    logger = logging.getLogger("lakehouse_jobs.invoice.job")
    logger.addHandler(Steps())
    logger.setLevel(logging.INFO)
    with tempfile.TemporaryDirectory(dir=folder) as tables, pii_keys():
        # an earlier hourly run created the tables and loaded the brief's invoice: not timed
        invoice_load.main(["--incoming", str(folder / "earlier"), "--member-cards", str(folder / "member_card.parquet"),
                           "--tables-root", tables, "--result-path", f"{tables}/earlier.json", "--batch-id", "earlier"],
                          spark=spark)
        steps.clear()
        busy_before, start = system_cpu()[0], time.perf_counter()
        result = invoice_load.main(["--incoming", str(folder / "pdfs"), "--member-cards",
                                    str(folder / "member_card.parquet"), "--tables-root", tables,
                                    "--result-path", f"{tables}/result.json", "--batch-id", "bench"], spark=spark)
        wall = time.perf_counter() - start
        busy = system_cpu()[0] - busy_before
    spark.stop()
    return {"cores": cores, "wall_s": round(wall, 2), "steps": {k: round(v, 2) for k, v in steps.items()},
            "invoices_loaded": result.invoices_loaded, "lines_loaded": result.lines_loaded,
            "quarantined": result.quarantined, "machine_busy_share": round(busy / (wall * (os.cpu_count() or 1)), 2)}


def markdown(report: dict) -> str:
    lines = [f"# Invoice load benchmark, {report['date']}", "",
             f"Produced by `{report['command']}` ({report['duration_s'] / 60:.1f} min). {report['data']['invoices']:,} "
             f"generated invoices ({report['data']['lines']:,} lines, {report['data']['bytes'] / 2**20:.1f} MiB), "
             "loaded into tables an earlier run created (local disk), median of the repeats (min-max). Method: "
             "the module docstring of benchmarks/invoice_load_bench.py.", "",
             f"- Machine: {report['machine']['cpu_model']}, {report['machine']['nproc']} CPUs; load average before "
             f"{report['load_before']:.2f}.", "",
             "| cores | wall s | invoices/s | invoices/s per core | parse s | MERGE (facts) s | machine busy "
             "| loaded |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for cores, s in sorted(report["summary"].items()):
        lines.append(f"| {cores} | {s['wall_s']:.1f} ({s['min']:.1f}-{s['max']:.1f}) | {s['per_s']:.1f} | "
                     f"{s['per_s'] / int(cores):.1f} | {s['parse_s']:.1f} | {s['facts_s']:.1f} | "
                     f"{s['busy']:.0%} | {s['loaded']} |")
    if "speedup" in report:
        lines += ["", f"Two cores against one: {report['speedup']:.2f}x the invoices per second (parse step: "
                  f"{report['parse_speedup']:.2f}x). Target: >= 30 invoices/s for the batch on two cores: "
                  f"{'met' if report['summary']['2']['per_s'] >= 30 else 'not met'}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=str(RESULTS_DIR), help="results directory; - for none")
    parser.add_argument("--worker", type=int, metavar="CORES", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args.folder)), flush=True)
        return 0
    started, t0, load_before = dt.datetime.now(dt.timezone.utc), time.monotonic(), loadavg()
    runs = []
    with tempfile.TemporaryDirectory(prefix="invoice-load-") as tmp:
        folder = Path(tmp)
        data = write_inputs(folder, args.invoices)
        print(f"invoice load benchmark: {data['invoices']} invoices written under {folder}", flush=True)
        for repeat in range(args.repeats):
            for cores in ((1, 2) if repeat % 2 == 0 else (2, 1)):
                out = subprocess.run([sys.executable, "-m", "benchmarks.invoice_load_bench", "--worker", str(cores),
                                      "--folder", str(folder)], capture_output=True, text=True, cwd=REPO)
                line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
                if out.returncode or line is None:
                    print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
                    return 1
                runs.append(json.loads(line.removeprefix("RESULT ")))
                r = runs[-1]
                print(f"  repeat {repeat + 1}, {cores} core(s): {r['wall_s']:.1f} s, "
                      f"{r['invoices_loaded'] / r['wall_s']:.1f} invoices/s, steps {r['steps']}", flush=True)
    summary = {}
    for cores in (1, 2):
        mine = [r for r in runs if r["cores"] == cores]
        walls = [r["wall_s"] for r in mine]
        wall = statistics.median(walls)
        summary[str(cores)] = {
            "wall_s": wall, "min": min(walls), "max": max(walls), "per_s": mine[0]["invoices_loaded"] / wall,
            "parse_s": statistics.median(r["steps"].get("parse", 0.0) for r in mine),
            "facts_s": statistics.median(r["steps"].get("facts", 0.0) for r in mine),
            "busy": statistics.median(r["machine_busy_share"] for r in mine), "loaded": mine[0]["invoices_loaded"]}
    report = {"benchmark": "invoice_load", "date": started.date().isoformat(),
              "command": command_line("benchmarks.invoice_load_bench", argv),
              "duration_s": round(time.monotonic() - t0, 1), "machine": machine(), "load_before": load_before,
              "data": data, "runs": runs, "summary": summary,
              "speedup": summary["2"]["per_s"] / summary["1"]["per_s"],
              "parse_speedup": summary["1"]["parse_s"] / max(summary["2"]["parse_s"], 1e-9)}
    text = markdown(report)
    print("\n" + text)
    if args.out != "-":
        write_result(args.out, "invoice-load", report, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
