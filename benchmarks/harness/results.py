"""Statistics over repeats, the machine's description, and the result files every benchmark writes:
`<out>/<stem>-<date>.json` (everything measured) and `.md` (the tables, rendered from that JSON)."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from importlib import metadata
from pathlib import Path

MiB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO / "benchmarks" / "results"


def stat(values: list) -> dict | None:
    """{"median", "min", "max"} of the values that are not None; None when there are none."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def fmt_stat(s: dict | None, fmt: str = "{:.2f}", spread: bool = True) -> str:
    """A `stat` as "median (min–max)", or the median alone when they agree or `spread` is off; – for None."""
    if not s:
        return "–"
    if not spread or s["min"] == s["max"]:
        return fmt.format(s["median"])
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"


def machine() -> dict:
    """CPU model, CPUs, memory (GiB) and kernel of this machine, from /proc."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {"cpu_model": cpu, "nproc": os.cpu_count(), "memory_gib": round(mem_kib / 1024 / 1024, 1),
            "kernel": platform.release()}


def package_versions(*dists: str) -> dict[str, str | None]:
    """Python's version and each installed distribution's (None when not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in dists:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def command_line(module: str, argv: list[str] | None) -> str:
    """The command that produced a result, as recorded in it: `python -m <module> <arguments>`."""
    return " ".join([f"python -m {module}", *(sys.argv[1:] if argv is None else argv)])


def write_result(out: Path | str, stem: str, report: dict, text: str, default=None) -> Path:
    """`report` as <out>/<stem>-<report["date"]>.json and `text` beside it as .md; returns the common base."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = out / f"{stem}-{report['date']}"
    base.with_suffix(".json").write_text(json.dumps(report, indent=2, default=default) + "\n")
    base.with_suffix(".md").write_text(text)
    print(f"wrote {base}.json and {base}.md")
    return base


TARGETS_TABLE = ["## Targets (ratios of medians, same run)", "", "| target | measured | goal | met? | detail |",
                 "|---|---|---|---|---|"]


def run_header(benchmark: str, started_at, duration_s: float, module: str, argv: list[str] | None) -> dict:
    """The first keys of a result: its mark (what `--render` checks), date, start (UTC), minutes, command."""
    return {"benchmark": benchmark, "date": started_at.date().isoformat(),
            "started_at": started_at.isoformat(timespec="seconds"), "duration_s": round(duration_s, 1),
            "command": command_line(module, argv)}


def load_facts(before: float, other_shares: list[float]) -> dict:
    """The machine's load around a run: load average before and now, and the median and highest share of the
    machine's CPU that other processes used during the measured runs (0.0 without any)."""
    from benchmarks.harness.processes import loadavg

    return {"before": before, "after": loadavg(),
            "other_cpu_share_median": statistics.median(other_shares) if other_shares else 0.0,
            "other_cpu_share_max": max(other_shares) if other_shares else 0.0}
