"""The daily benchmark's command line: arguments checked before any load, the run, the result files."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import benchmarks.member_daily as package
from benchmarks.harness.member_table import SEED
from benchmarks.harness.processes import loadavg
from benchmarks.harness.results import REPO, RESULTS_DIR, load_facts, machine, run_header, write_result
from benchmarks.member_daily.config import CHANGE_SHARE, CONTENDERS, SAMPLE_S
from benchmarks.member_daily.contenders import driver_memory
from benchmarks.member_daily.report import markdown, versions
from benchmarks.member_daily.runner import Bench
from benchmarks.member_daily.summary import evaluate_targets, summarize


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.member_daily",
                                     description=package.__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=None,
                        help="sizes (default 1000000 5000000; 20000 with --quick)")
    parser.add_argument("--repeats", type=int, default=None, help="default 3; 1 with --quick")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20,000 members, once; saves only with --out")
    parser.add_argument("--contenders", nargs="+", choices=list(CONTENDERS), default=list(CONTENDERS))
    parser.add_argument("--bucket-prefix", default="bench-daily", help="buckets <prefix>-landing, <prefix>-lakehouse")
    parser.add_argument("--database-prefix", default="bench_daily",
                        help="the live source <prefix>.member; both states parked in <prefix>_store")
    parser.add_argument("--airflow-port", type=int, default=8091, help="API port of the benchmark's Airflow")
    parser.add_argument("--notebook-partitions", type=int, default=8, help="numPartitions of the notebook's JDBC read")
    parser.add_argument("--dlt-connectorx-mode", choices=("stream", "table"), default="stream",
                        help="ConnectorX's Arrow stream in 100K-row batches (dlt's advice for large tables), "
                             "or one Arrow table (dlt's default)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", help=f"results directory (default {RESULTS_DIR.relative_to(REPO)}, none with "
                                      "--quick); - for none")
    parser.add_argument("--render", type=Path, metavar="JSON", help="only rewrite the Markdown of a saved JSON result")
    args = parser.parse_args(argv)
    if args.members is None:
        args.members = [20_000] if args.quick else [1_000_000, 5_000_000]
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.render and args.out is not None:
        parser.error("--out does not apply to --render: the Markdown is written beside the JSON")
    if args.out is None:
        args.out = "-" if args.quick else str(RESULTS_DIR)
    if args.repeats < 1 or min(args.members) < 1:
        parser.error("--members and --repeats must be at least 1")
    if args.render and not args.render.is_file():
        parser.error(f"--render: {args.render} is not a file")
    if args.render and args.render.suffix != ".json":
        # the Markdown goes to <name>.md beside it: a .md input would be overwritten by its own rendering
        parser.error(f"--render: {args.render} is not a .json file")
    if args.out != "-" and not args.render:
        try:  # now, not after hours of loads
            Path(args.out).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            parser.error(f"--out: cannot use {args.out} as the results directory: {exc.strerror}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        try:
            report = json.loads(args.render.read_text())
        except (OSError, ValueError) as exc:
            raise SystemExit(f"--render: cannot read {args.render} as JSON ({exc})") from None
        # checked by its own mark, so that a fault in markdown() on a real result stays a traceback
        if not isinstance(report, dict) or report.get("benchmark") != "member_daily":
            raise SystemExit(f"--render: {args.render} is not a result of this benchmark "
                             '(no "benchmark": "member_daily")')
        target = args.render.with_suffix(".md")
        target.write_text(markdown(report))
        print(f"wrote {target}")
        return 0
    started_at = dt.datetime.now(dt.timezone.utc)
    stamp = started_at.strftime("%Y%m%dT%H%M%S")
    t0 = time.monotonic()
    load_before = loadavg()
    sizes = sorted(set(args.members))
    print(f"member daily benchmark: members {sizes}, {args.repeats} repeat(s), contenders {args.contenders}; "
          f"load average {load_before:.2f}", flush=True)
    size_info = []
    with tempfile.TemporaryDirectory(prefix="member-daily-") as tmp:
        bench = Bench(args, stamp, Path(tmp))
        try:
            bench.setup()
            for rows in sizes:
                print(f"{rows:,} members:", flush=True)
                size_info.append(bench.run_size(rows))
            job_driver_memory = driver_memory()
        finally:
            bench.close()
            if sizes:  # the source left in state A, as found
                try:
                    bench.source.switch(sizes[-1], "A")
                except Exception:  # noqa: BLE001 (best effort; the next run checks and swaps back anyway)
                    pass
    duration = time.monotonic() - t0
    runs = bench.runs
    shares = [r["other_cpu_share"] for r in runs if r["ok"]]
    summary = summarize(runs)
    checks = [c for r in runs for c in r.get("checks", [])]
    report = {
        **run_header("member_daily", started_at, duration, "benchmarks.member_daily", argv),
        "repeats": args.repeats,
        "seed": args.seed,
        "settings": {"driver_memory": job_driver_memory, "notebook_partitions": args.notebook_partitions,
                     "dlt_connectorx_mode": args.dlt_connectorx_mode, "change_share": CHANGE_SHARE,
                     "sample_s": SAMPLE_S, "buckets": [bench.store.landing, bench.store.lakehouse],
                     "source": f"{bench.source.live_db}.member"},
        "machine": machine(),
        "versions": versions(bench),
        "load": load_facts(load_before, shares),
        "contenders": {k: CONTENDERS[k] for k in args.contenders},
        "startup": bench.startup,
        "sizes": size_info,
        "targets": evaluate_targets(summary),
        "summary": summary,
        "checks": len(checks),
        "checks_passed": bool(runs) and all(r["ok"] for r in runs) and all(c["ok"] for c in checks),
        "runs": runs,
    }
    text = markdown(report)
    print("\n" + text)
    if args.out != "-":
        write_result(args.out, "member-daily", report, text, default=str)
    print(f"took {duration / 60:.1f} min")
    return 0 if report["checks_passed"] else 1
