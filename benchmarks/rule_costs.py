"""The CPU cost of each per-row rule of the member job, and the floor it puts under a first load.

A first load must standardise every row in Python (lakehouse_jobs.standardise: email, phone, country), in
the job and in the same-work notebook alike; no engine choice removes that work. This measures each rule's
CPU time per value, in one process, on the values the daily benchmark loads (dev/seed_members.py's
generator: every email and phone its own, names and countries repeating as in real data), and states the
floor of a first load: sum of the rules' costs x rows / cores. The country rule's cache (countries repeat
in real data) is kept, as the job keeps it.

    dev/stack.sh run python -m benchmarks.rule_costs --values 100000
    # writes benchmarks/results/rule-costs-<date>.{json,md}
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from collections.abc import Callable

from benchmarks.harness.results import RESULTS_DIR, machine, package_versions, run_header, write_result
from dev.seed_members import generate_members
from lakehouse_jobs import standardise

SIZES = (1_000_000, 5_000_000)


def cpu_per_value(rule: Callable, values: list) -> float:
    """CPU microseconds per value of `rule` over `values` (process time, one thread)."""
    started = time.process_time()
    for value in values:
        rule(*value)
    return (time.process_time() - started) / len(values) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--values", type=int, default=100_000, help="distinct members to measure on")
    parser.add_argument("--out", default=str(RESULTS_DIR))
    args = parser.parse_args(argv)
    started_at, t0 = dt.datetime.now(dt.timezone.utc), time.monotonic()
    members = list(generate_members(args.values, seed=42))
    regions = [standardise.country_to_code(m["country"]) for m in members]
    rules = {
        "email (email_to_normalised: the ASCII fast path, else email-validator)":
            (standardise.email_to_normalised, [(m["email"],) for m in members]),
        "phone (phone_to_e164: phonenumbers)":
            (standardise.phone_to_e164, [(m["phone_number"], r) for m, r in zip(members, regions)]),
        "country (country_to_code: pycountry, cached per name)":
            (standardise.country_to_code, [(m["country"],) for m in members]),
    }
    costs = {name: round(cpu_per_value(rule, values), 2) for name, (rule, values) in rules.items()}
    total = sum(costs.values())
    cores = os.cpu_count() or 1
    floors = {str(rows): round(total * rows / cores / 1e6, 1) for rows in SIZES}
    report = run_header("rule_costs", started_at, time.monotonic() - t0, "benchmarks.rule_costs", argv) | {
        "values": args.values, "machine": machine(),
        "versions": package_versions("email-validator", "phonenumbers", "pycountry"),
        "cpu_us_per_value": costs, "total_us_per_row": round(total, 2), "cores": cores,
        "first_load_floor_s": floors,
    }
    lines = [f"# Member rule costs, {report['date']}", "",
             f"Produced by `{report['command']}` ({report['duration_s']} s) on {args.values:,} distinct members "
             "of dev/seed_members.py's generator; CPU time of one process. Versions: "
             + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".", "",
             "| rule | CPU µs per value |", "|---|---|",
             *[f"| {name} | {cost} |" for name, cost in costs.items()],
             f"| **every rule of one row** | **{total:.2f}** |", "",
             f"Floor of a first load (the rules alone, every core busy: µs per row x rows / {cores} cores): "
             + ", ".join(f"{int(rows):,} members {s} s" for rows, s in floors.items())
             + ". Whoever loads the rows pays it: the job and the same-work notebook alike.", ""]
    write_result(args.out, "rule-costs", report, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
