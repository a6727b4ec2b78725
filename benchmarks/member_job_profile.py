"""Profile of the member_merge job: where its time and memory go, step by step and stage by stage.

    python -m benchmarks.member_job_profile --members 1000000          # ~4 min; writes benchmarks/results/
    python -m benchmarks.member_job_profile --members 200000 --out -   # a quick look, nothing saved

The job runs three times in one local[2] session on local disk (no stack needed), on the batches of
benchmarks/member_history_bench (N synthetic members as batch A; batch B = A with 5% of emails and addresses
changed): the first load of A, B onto A (the daily change), and B again (an unchanged replay).

Three instruments, all Spark's or Python's own:
- the job's "step <name>: <s> s" log lines (lakehouse_jobs.steps.timed), with the wall clock of each step;
- Spark's event log (``spark.eventLog.enabled``, with ``spark.eventLog.logStageExecutorMetrics`` and
  ``spark.executor.processTreeMetrics.enabled``): every stage's task metrics summed (executor run and CPU
  time, GC, shuffle, spill, input) and its executor peaks (JVM heap, Python workers' RSS), each stage
  attributed to the step during which it was submitted. The same file opens in Spark's history server;
- Spark's Python UDF profiler (``spark.sql.pyspark.udf.profiler=perf``, cProfile inside the Python
  workers): the functions the pandas UDFs spend their time in.
A sampler thread also reads the summed RSS of the process tree (driver JVM and Python workers) from /proc.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import logging
import os
import pstats
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from benchmarks.harness.processes import process_tree, vm_rss_kib
from benchmarks.harness.results import RESULTS_DIR, MiB, command_line, machine, write_result
from benchmarks.harness.sampler import PeriodicSampler
from benchmarks.harness.spark_job import STEP_LINE, job_log, local_session, pii_keys, spark_versions
from benchmarks.harness.synthetic_batches import generate_batches

SEED = 42
RUNS = (("first_load", "a"), ("change_5pct", "b"), ("replay", "b"))


class StepClock(logging.Handler):
    """(run, step, start, end) in epoch seconds, from the job's "step <name>: <s> s" lines."""

    def __init__(self):
        super().__init__(level=logging.INFO)
        self.run = ""
        self.steps: list[tuple[str, str, float, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if m := STEP_LINE.match(record.getMessage()):
            self.steps.append((self.run, m[1], record.created - float(m[2]), record.created))


class RssSeries(PeriodicSampler):
    """(epoch s, summed VmRSS of this process tree in MiB) every `period` seconds."""

    def __init__(self, period: float = 0.25):
        super().__init__(period)
        self.series: list[tuple[float, float]] = []

    def sample(self) -> None:
        self.series.append((time.time(), sum(vm_rss_kib(p) for p in process_tree(os.getpid())) / 1024))


def read_event_log(directory: Path) -> dict[int, dict]:
    """Stage id -> submission time (epoch s), name, task count and summed task metrics, plus executor peaks,
    from the Spark event log(s) in `directory`."""
    stages: dict[int, dict] = defaultdict(lambda: defaultdict(float))
    # Spark 4 writes a rolling log: a folder per application holding events_<n>_<app> files
    for path in sorted(p for p in directory.rglob("events_*") if p.is_file()):
        for line in path.open():
            event = json.loads(line)
            kind = event["Event"]
            if kind == "SparkListenerStageCompleted":
                info = event["Stage Info"]
                stage = stages[info["Stage ID"]]
                stage["submitted"] = info.get("Submission Time", 0) / 1000
                stage["name"] = info["Stage Name"]
                stage["wall_s"] += (info.get("Completion Time", 0) - info.get("Submission Time", 0)) / 1000
            elif kind == "SparkListenerTaskEnd" and event.get("Task Metrics"):
                m, stage = event["Task Metrics"], stages[event["Stage ID"]]
                stage["tasks"] += 1
                stage["run_s"] += m["Executor Run Time"] / 1000
                stage["cpu_s"] += m["Executor CPU Time"] / 1e9
                stage["gc_s"] += m["JVM GC Time"] / 1000
                stage["input_mib"] += m["Input Metrics"]["Bytes Read"] / MiB
                stage["shuffle_read_mib"] += (m["Shuffle Read Metrics"]["Remote Bytes Read"]
                                              + m["Shuffle Read Metrics"]["Local Bytes Read"]) / MiB
                stage["shuffle_write_mib"] += m["Shuffle Write Metrics"]["Shuffle Bytes Written"] / MiB
                stage["spill_disk_mib"] += m["Disk Bytes Spilled"] / MiB
                stage["peak_execution_mib"] = max(stage["peak_execution_mib"], m["Peak Execution Memory"] / MiB)
            elif kind == "SparkListenerStageExecutorMetrics":
                peaks, stage = event["Executor Metrics"], stages[event["Stage ID"]]
                stage["jvm_heap_mib"] = max(stage["jvm_heap_mib"], peaks.get("JVMHeapMemory", 0) / MiB)
                stage["python_rss_mib"] = max(stage["python_rss_mib"], peaks.get("ProcessTreePythonRSSMemory", 0) / MiB)
    return {k: dict(v) for k, v in stages.items() if "submitted" in v}


def attribute(stages: dict[int, dict], steps: list[tuple[str, str, float, float]],
              rss: list[tuple[float, float]]) -> list[dict]:
    """One row per (run, step): its wall time, the summed metrics of the stages submitted during it, its
    stages' executor peaks, and the process tree's peak RSS during it."""
    rows = []
    for run, step, start, end in steps:
        mine = [s for s in stages.values() if start - 0.05 <= s["submitted"] <= end + 0.05]
        total = defaultdict(float)
        for s in mine:
            for key in ("tasks", "run_s", "cpu_s", "gc_s", "input_mib", "shuffle_read_mib", "shuffle_write_mib",
                        "spill_disk_mib"):
                total[key] += s.get(key, 0.0)
            for key in ("peak_execution_mib", "jvm_heap_mib", "python_rss_mib"):
                total[key] = max(total[key], s.get(key, 0.0))
        peak = max((m for t, m in rss if start <= t <= end), default=0.0)
        rows.append({"run": run, "step": step, "wall_s": round(end - start, 2), "stages": len(mine),
                     **{k: round(v, 1) for k, v in total.items()}, "rss_tree_peak_mib": round(peak)})
    return rows


def udf_profile(spark, top: int = 12) -> list[dict]:
    """The Python UDF profiler's cProfile stats of every pandas UDF, merged: the `top` functions by own
    time, with their calls and cumulative time."""
    with tempfile.TemporaryDirectory() as d:
        spark.profile.dump(d, type="perf")
        files = sorted(Path(d).rglob("*.pstats"))
        if not files:
            return []
        stats = pstats.Stats(str(files[0]), stream=io.StringIO())
        for f in files[1:]:
            stats.add(str(f))
    rows = []
    for (filename, line, name), (_, calls, tottime, cumtime, _) in stats.stats.items():
        rows.append({"function": f"{Path(filename).parent.name}/{Path(filename).name}:{line}({name})",
                     "calls": calls, "own_s": round(tottime, 2), "cumulative_s": round(cumtime, 2)})
    return sorted(rows, key=lambda r: -r["own_s"])[:top]


def markdown(report: dict) -> str:
    lines = [
        f"# member_merge profile, {report['date']}", "",
        f"Produced by `{report['command']}` ({report['duration_s'] / 60:.1f} min). {report['members']:,} members; "
        f"batch B changes {report['changed']:,} of them. One local[2] session, driver memory "
        f"{report['driver_memory']}, local disk. How to read it: benchmarks/README.md.", "",
        f"- Machine: {report['machine']['cpu_model']}, {report['machine']['nproc']} CPUs; "
        f"Spark {report['versions'].get('spark', '?')}, delta-spark {report['versions'].get('delta-spark', '?')}.",
        "- Stage metrics are sums over tasks (two run at once, so task time can exceed wall time); peaks are the "
        "largest any stage of the step reached. rss tree = driver JVM + Python workers, sampled from /proc.", "",
        "| run | step | wall s | stages | task s | task CPU s | GC s | input MiB | shuffle read MiB | "
        "shuffle write MiB | spill MiB | peak exec MiB | JVM heap MiB | Python RSS MiB | RSS tree MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["steps"]:
        lines.append(
            f"| {r['run']} | {r['step']} | {r['wall_s']:.1f} | {r['stages']} | {r.get('run_s', 0):.1f} | "
            f"{r.get('cpu_s', 0):.1f} | {r.get('gc_s', 0):.1f} | {r.get('input_mib', 0):.0f} | "
            f"{r.get('shuffle_read_mib', 0):.0f} | {r.get('shuffle_write_mib', 0):.0f} | "
            f"{r.get('spill_disk_mib', 0):.0f} | {r.get('peak_execution_mib', 0):.0f} | "
            f"{r.get('jvm_heap_mib', 0):.0f} | {r.get('python_rss_mib', 0):.0f} | {r['rss_tree_peak_mib']} |")
    lines += ["", "## Run totals", "", "| run | wall s | peak RSS tree MiB |", "|---|---:|---:|"]
    for run in report["runs"]:
        lines.append(f"| {run['run']} | {run['wall_s']:.1f} | {run['rss_tree_peak_mib']} |")
    lines += ["", "## Python UDFs (cProfile in the workers, all three runs merged; top by own time)", "",
              "| function | calls | own s | cumulative s |", "|---|---:|---:|---:|"]
    for r in report["udf_profile"]:
        lines.append(f"| `{r['function']}` | {r['calls']:,} | {r['own_s']:.2f} | {r['cumulative_s']:.2f} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--change-share", type=float, default=0.05)
    parser.add_argument("--driver-memory", default="3g")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", default=str(RESULTS_DIR), help="results directory; - for none")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from lakehouse_jobs.member import job as member_merge

    args = parse_args(argv)
    started_at, t0 = dt.datetime.now(dt.timezone.utc), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="member-profile-") as tmp:
        work = Path(tmp)
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            data = pool.submit(generate_batches, str(work / "landing"), args.members, args.change_share,
                               args.seed).result()
        (work / "events").mkdir()
        spark = local_session(args.driver_memory, {
            "spark.eventLog.enabled": "true", "spark.eventLog.dir": str(work / "events"),
            "spark.eventLog.compress": "false",  # Spark 4 compresses it with zstd by default
            "spark.eventLog.logStageExecutorMetrics": "true", "spark.executor.processTreeMetrics.enabled": "true",
            "spark.sql.pyspark.udf.profiler": "perf",
        })
        runs = []
        with job_log(StepClock()) as clock, RssSeries() as sampler, pii_keys():
            for run, batch in RUNS:
                clock.run = run
                start = time.time()
                member_merge.main(["--manifest", data[batch]["manifest"], "--tables-root", str(work / "tables"),
                                   "--result-path", str(work / f"result-{run}.json")], spark=spark)
                end = time.time()
                peak = max((m for t, m in sampler.series if start <= t <= end), default=0.0)
                runs.append({"run": run, "wall_s": round(end - start, 2), "rss_tree_peak_mib": round(peak)})
                print(f"  {run}: {end - start:.1f} s, peak RSS tree {peak:.0f} MiB", flush=True)
        profile, version_info = udf_profile(spark), spark_versions(spark)
        spark.stop()  # flushes the event log
        steps = attribute(read_event_log(work / "events"), clock.steps, sampler.series)
    report = {
        "benchmark": "member_job_profile", "date": started_at.date().isoformat(),
        "command": command_line("benchmarks.member_job_profile", argv),
        "duration_s": round(time.monotonic() - t0, 1), "members": args.members, "changed": data["changed"],
        "driver_memory": args.driver_memory, "machine": machine(), "versions": version_info,
        "runs": runs, "steps": steps, "udf_profile": profile,
    }
    text = markdown(report)
    print("\n" + text)
    if args.out != "-":
        write_result(args.out, "member-job-profile", report, text)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
