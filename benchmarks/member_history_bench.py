"""Member history benchmark: the member_merge job applying a daily snapshot beside a full overwrite.

    python -m benchmarks.member_history_bench                          # 5M members, 3 repeats; results committed
    python -m benchmarks.member_history_bench --members 200000 --repeats 1 --out /tmp/mhb   # a quick look
    python -m benchmarks.member_history_bench --render benchmarks/results/member-history-<date>.json

The question (issue): at 5,000,000 members on the 2-core machine, what does a daily snapshot with 5% changed
rows cost when the job applies it to the current table (`member`) and to the SCD2 history (`dim_member`),
against simply overwriting a Delta table with the snapshot? Everything runs on local disk (no MinIO, no
stack): the comparison is about Spark and Delta work.

Method (benchmarks/README.md, the performance notes): N synthetic valid members are generated (numpy and
pyarrow, vectorised) as batch A, and batch B = A with the email and address of a random 5% changed,
extracted a day later; each is written as the extract writes a batch (zstd Parquet files of 1M rows, 128K-row
row groups, and a `_manifest.json` with true sizes and sha256). One SparkSession (local[2], the conf of
dev/local_spark.py, --driver-memory) runs every contender, each timed wall-clock, interleaved per repeat:

- overwrite: read B's files with the landed schema and overwrite a Delta table (deletion vectors on);
- job, 5% change: member_merge.main applying B to member and dim_member holding A (both restored with Delta
  RESTORE to their versions after A's first load before each repeat, not timed);
- job, unchanged replay: member_merge.main applying B again.

A discarded overwrite of A warms the JVM up; the job's first load of A on empty tables is timed once. The
job's own "step <name>: <s> s" log lines give its per-step times; each table's commits are read from its
_delta_log (files written, deletion vectors written). A sampler thread reads the VmRSS and CPU time of this
process and all its descendants (the driver JVM and the Python workers) from /proc every 0.2 s. After every
job run the tables are counted: member N rows, dim_member N + changed rows of which N current.
Results: benchmarks/results/member-history-<date>.json and .md. The exit status is 1 when a correctness check
failed; the targets are reported, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.harness import delta_log
from benchmarks.harness.delta_log import commit_facts
from benchmarks.harness.processes import cpu_seconds, loadavg, process_tree, system_cpu, vm_rss_kib
from benchmarks.harness.results import (
    REPO,
    RESULTS_DIR,
    TARGETS_TABLE,
    MiB,
    fmt_stat,
    load_facts,
    machine,
    run_header,
    stat,
    write_result,
)
from benchmarks.harness.sampler import PeriodicSampler
from benchmarks.harness.spark_job import local_session, pii_keys, spark_versions, step_times
from benchmarks.harness.synthetic_batches import generate_batches

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SEED = 42
SAMPLE_S = 0.2
JOB_TABLES = ("member", "dim_member", "member_quarantine", "member_batches")

TARGETS = {
    "change_vs_overwrite": 1.0,  # the job applying a 5% change <= the overwrite's wall time
    "replay_vs_overwrite": 0.3,  # an unchanged replay <= 0.3x the overwrite, and no data file written
    "scd2_vs_overwrite": 1.5,  # the job's merge_dim_member step <= 1.5x the overwrite
}
CONTENDERS = {
    "overwrite": "overwrite: B's files into a Delta table",
    "job_change": "job: B (5% changed) onto A",
    "job_replay": "job: B again (unchanged replay)",
}
# per repeat, in turn: every order in which the change precedes the replay (which needs its result)
ORDERS = (("overwrite", "job_change", "job_replay"), ("job_change", "job_replay", "overwrite"),
          ("job_change", "overwrite", "job_replay"))


# ---------------------------------------------------------------------------------------- measurement
class TreeSampler(PeriodicSampler):
    """Peak summed VmRSS, and CPU time, of this process and all its descendants (driver JVM, Python workers),
    sampled from /proc every SAMPLE_S; machine-wide busy CPU around it, so that others' use shows."""

    def __init__(self):
        super().__init__(SAMPLE_S)
        self.root, self.peak_kib, self.samples = os.getpid(), 0, 0
        self.first: dict[int, float] | None = None
        self.last: dict[int, float] = {}

    def sample(self) -> None:
        tree = process_tree(self.root)
        self.peak_kib = max(self.peak_kib, sum(vm_rss_kib(p) for p in tree))
        for pid in tree:
            cpu = cpu_seconds(pid)
            if cpu is not None:
                self.last[pid] = cpu
        self.samples += 1
        if self.first is None:
            self.first = dict(self.last)

    def entered(self) -> None:
        self.busy_before, self.load_before = system_cpu()[0], loadavg()

    def exited(self) -> None:
        busy = system_cpu()[0] - self.busy_before
        # processes first seen after the start were born during the run: all their CPU time is the run's
        self.cpu_s = sum(cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items())
        self.other_cpu_s = busy - self.cpu_s

    def facts(self, wall: float) -> dict:
        return {"peak_rss_tree_mib": round(self.peak_kib / 1024, 1), "rss_samples": self.samples,
                "cpu_ours_s": round(self.cpu_s, 1), "cpu_other_s": round(self.other_cpu_s, 1),
                "other_cpu_share": round(max(self.other_cpu_s, 0.0) / (wall * (os.cpu_count() or 1)), 3),
                "loadavg_before": self.load_before}


def delta_version(path: str) -> int:
    """The table's latest version, from its _delta_log (local disk)."""
    return max(int(p.stem) for p in (Path(path) / "_delta_log").glob("*.json") if p.stem.isdigit())


def commits_since(path: str, version: int) -> list[dict]:
    """What each commit after `version` did (benchmarks.harness.delta_log.commit_facts)."""
    log = Path(path) / "_delta_log"
    return [commit_facts(v, (log / f"{v:020d}.json").read_text()) for v in range(version + 1, delta_version(path) + 1)]


def commit_totals(commits: list[dict]) -> dict:
    return delta_log.commit_totals(commits, (*delta_log.TOTALS, "numTargetRowsInserted", "numTargetRowsUpdated",
                                             "numOutputRows"))


class Bench:
    def __init__(self, spark: SparkSession, work: Path, data: dict):
        self.spark, self.work, self.data = spark, work, data
        self.members, self.changed = data["a"]["rows"], data["changed"]
        self.root = work / "lakehouse" / "delta"
        self.tables = {name: str(self.root / name) for name in JOB_TABLES}
        self.overwrite_path = str(work / "overwrite" / "member_snapshot")
        self.runs: list[dict] = []
        self.state_a: dict[str, int] = {}

    # ------------------------------------------------------------------ contenders
    def overwrite(self, kind: str, repeat: int | None, position: int | None, batch: dict) -> dict:
        from lakehouse_jobs.contracts import MEMBER, spark_schema

        def write() -> dict:
            df = self.spark.read.schema(spark_schema(MEMBER, landed=True)).parquet(*batch["files"])
            df.write.format("delta").mode("overwrite").save(self.overwrite_path)
            return {}

        before = delta_version(self.overwrite_path)
        run = self.measure(kind, repeat, position, write)
        run["commits"] = {"overwrite": commit_totals(commits_since(self.overwrite_path, before))}
        return run

    def job(self, kind: str, repeat: int | None, position: int | None, batch: dict) -> dict:
        from lakehouse_jobs.member import job as member_merge

        before = {name: delta_version(p) for name, p in self.tables.items() if (Path(p) / "_delta_log").exists()}
        result_path = self.work / "lakehouse" / "_results" / f"{kind}-r{repeat or 0}.json"

        def apply() -> dict:
            with step_times() as steps:
                result = member_merge.main(["--manifest", batch["manifest"], "--tables-root", str(self.root),
                                            "--result-path", str(result_path)], spark=self.spark)
            return {"steps": dict(steps), "result": {k: v for k, v in result.to_dict().items() if k != "commit_tag"}}

        run = self.measure(kind, repeat, position, apply)
        run["commits"] = {name: commit_totals(commits_since(p, before.get(name, -1)))
                          for name, p in self.tables.items()}
        return run

    def measure(self, kind: str, repeat: int | None, position: int | None, action) -> dict:
        """Run `action` (returning facts) timed wall-clock, with the process tree sampled meanwhile."""
        with TreeSampler() as sampler:
            started = time.perf_counter()
            facts = action()
            wall = time.perf_counter() - started
        return {"contender": kind, "repeat": repeat, "position": position, "wall_s": round(wall, 2),
                **sampler.facts(wall), **facts}

    def run_contender(self, kind: str, repeat: int | None = None, position: int | None = None) -> dict:
        a, b = self.data["a"], self.data["b"]
        if kind == "warmup":
            run = self.overwrite(kind, repeat, position, a)
        elif kind == "overwrite":
            run = self.overwrite(kind, repeat, position, b)
        elif kind == "first_load":
            run = self.job(kind, repeat, position, a)
            self.state_a = {name: delta_version(self.tables[name]) for name in ("member", "dim_member")}
            run["checks"] = self.check(run, members=self.members, history=self.members, unchanged=0,
                                       valid=self.members)
        elif kind == "job_change":
            self.restore_a()
            run = self.job(kind, repeat, position, b)
            run["checks"] = self.check(run, members=self.members, history=self.members + self.changed,
                                       unchanged=self.members - self.changed, valid=self.changed)
        elif kind == "job_replay":
            run = self.job(kind, repeat, position, b)
            run["checks"] = self.check(run, members=self.members, history=self.members + self.changed,
                                       unchanged=self.members, valid=0, replay=True)
        else:
            raise ValueError(kind)
        self.runs.append(run)
        steps = run.get("steps", {})
        shown = ", ".join(f"{k} {steps[k]:.1f}" for k in ("plan_changes", "clean", "merge_dim_member",
                                                          "merge_members") if k in steps)
        failed = [c["check"] for c in run.get("checks", []) if not c["ok"]]
        print(f"  {kind:<11} r{repeat or '-'} {run['wall_s']:8.2f} s  peak RSS {run['peak_rss_tree_mib']:6.0f} MiB  "
              f"other CPU {run['other_cpu_share']:4.0%}" + (f"  steps: {shown}" if shown else "")
              + (f"  FAILED: {failed}" if failed else ""), flush=True)
        return run

    def restore_a(self) -> None:
        """member and dim_member back to their versions after A's first load (Delta RESTORE; not timed)."""
        from delta.tables import DeltaTable

        for name, version in self.state_a.items():
            if delta_version(self.tables[name]) != version:
                DeltaTable.forPath(self.spark, self.tables[name]).restoreToVersion(version)

    # ------------------------------------------------------------------ correctness
    def check(self, run: dict, *, members: int, history: int, unchanged: int, valid: int,
              replay: bool = False) -> list[dict]:
        """The tables counted (not the job's word for it), and the job's result."""
        member = self.spark.read.format("delta").load(self.tables["member"])
        dim = self.spark.read.format("delta").load(self.tables["dim_member"])
        result, commits = run["result"], run["commits"]
        found = [
            ("member rows", members, member.count()),
            ("member distinct member_id", members, member.select("member_id").distinct().count()),
            ("dim_member rows", history, dim.count()),
            ("dim_member current rows", members, dim.where("is_current").count()),
            ("result unchanged_rows", unchanged, result["unchanged_rows"]),
            ("result valid_rows", valid, result["valid_rows"]),
            ("result quarantined_rows", 0, result["quarantined_rows"]),
            ("result deleted_rows", 0, result["deleted_rows"]),
        ]
        if replay:
            found += [(f"{t} commits", 0, commits[t]["commits"]) for t in ("member", "dim_member")]
            found += [(f"{t} data files added", 0, commits[t]["data_files_added"]) for t in ("member", "dim_member")]
        return [{"check": name, "expected": exp, "found": got, "ok": exp == got} for name, exp, got in found]

    # ------------------------------------------------------------------ the whole run
    def create_overwrite_table(self) -> None:
        """The overwrite's target: the batch's columns, deletion vectors on as on the job's tables."""
        from delta.tables import DeltaTable

        from lakehouse_jobs.contracts import MEMBER, spark_schema
        from lakehouse_jobs.tables import COMMON_PROPERTIES

        builder = DeltaTable.createIfNotExists(self.spark).location(self.overwrite_path)
        builder = builder.addColumns(spark_schema(MEMBER, landed=True))
        for key, value in COMMON_PROPERTIES.items():
            builder = builder.property(key, value)
        builder.execute()

    def run_all(self, repeats: int) -> None:
        self.create_overwrite_table()
        print("warm-up (discarded) and first load:", flush=True)
        self.run_contender("warmup")
        self.run_contender("first_load")
        for repeat in range(1, repeats + 1):
            for position, kind in enumerate(ORDERS[(repeat - 1) % len(ORDERS)], 1):
                self.run_contender(kind, repeat, position)


# ---------------------------------------------------------------------------------------- summary, report
def summarize(runs: list[dict]) -> dict:
    summary = {}
    for key in CONTENDERS:
        mine = [r for r in runs if r["contender"] == key]
        if not mine:
            continue
        entry = {"runs": len(mine), **{f: stat([r[f] for r in mine]) for f in (
            "wall_s", "peak_rss_tree_mib", "cpu_ours_s", "cpu_other_s", "other_cpu_share")}}
        if key != "overwrite":
            steps = sorted({s for r in mine for s in r["steps"]})
            entry["steps_s"] = {s: stat([r["steps"].get(s) for r in mine]) for s in steps}
            entry["commits"] = {t: {k: stat([r["commits"][t][k] for r in mine]) for k in (
                "commits", "data_files_added", "data_bytes_added", "deletion_vectors_written", "files_removed",
                "numTargetRowsInserted", "numTargetRowsUpdated")} for t in ("member", "dim_member")}
        else:
            entry["commits"] = {"overwrite": {k: stat([r["commits"]["overwrite"][k] for r in mine])
                                              for k in ("data_files_added", "data_bytes_added")}}
        summary[key] = entry
    return summary


def evaluate_targets(summary: dict, runs: list[dict]) -> list[dict]:
    """The issue's targets, as ratios of medians measured in this run."""
    def med(key: str) -> float | None:
        return summary[key]["wall_s"]["median"] if key in summary else None

    overwrite, change, replay = med("overwrite"), med("job_change"), med("job_replay")
    targets = []
    if overwrite and change:
        ratio = change / overwrite
        targets.append({"target": "job, 5% change vs overwrite", "ratio": ratio,
                        "goal": f"<= {TARGETS['change_vs_overwrite']:g}x",
                        "met": ratio <= TARGETS["change_vs_overwrite"],
                        "note": f"{change:.1f} s vs {overwrite:.1f} s"})
    if overwrite and replay:
        ratio = replay / overwrite
        files = sum(r["commits"][t]["data_files_added"] for r in runs if r["contender"] == "job_replay"
                    for t in ("member", "dim_member"))
        commits = sum(r["commits"][t]["commits"] for r in runs if r["contender"] == "job_replay"
                      for t in ("member", "dim_member"))
        targets.append({"target": "job, unchanged replay vs overwrite", "ratio": ratio,
                        "goal": f"<= {TARGETS['replay_vs_overwrite']:g}x, no data file written",
                        "met": ratio <= TARGETS["replay_vs_overwrite"] and files == 0,
                        "note": f"{replay:.1f} s vs {overwrite:.1f} s; {files} data file(s) written and "
                                f"{commits} commit(s) to member/dim_member over all replays"})
    scd2 = summary.get("job_change", {}).get("steps_s", {}).get("merge_dim_member")
    if overwrite and scd2:
        ratio = scd2["median"] / overwrite
        targets.append({"target": "SCD2 step (merge_dim_member) of the 5% change vs overwrite", "ratio": ratio,
                        "goal": f"<= {TARGETS['scd2_vs_overwrite']:g}x", "met": ratio <= TARGETS["scd2_vs_overwrite"],
                        "note": f"{scd2['median']:.1f} s vs {overwrite:.1f} s"})
    return targets


def spark_facts(spark: SparkSession) -> dict:
    conf = spark.sparkContext.getConf()
    return {"master": spark.sparkContext.master, "driver_memory": conf.get("spark.driver.memory", "1g (default)"),
            **{k: spark.conf.get(k, None) for k in ("spark.sql.shuffle.partitions",
                                                    "spark.databricks.delta.snapshotPartitions")}}


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}x" if value is not None and base else "–"


def markdown(report: dict) -> str:
    m, v, s, d = report["machine"], report["versions"], report["spark"], report["data"]
    summary, runs = report["summary"], report["runs"]
    overwrite = summary.get("overwrite", {}).get("wall_s", {}).get("median")
    first = next((r for r in runs if r["contender"] == "first_load"), None)
    lines = [
        f"# Member history benchmark, {report['date']}",
        "",
        f"Produced by `{report['command']}` ({report['duration_s'] / 60:.1f} min). Method and how to read it: "
        "[benchmarks/README.md](../README.md). "
        f"{report['members']:,} members; batch B changes the email and address of {report['changed']:,} of them "
        f"({report['change_share']:.0%}). Each contender ran {report['repeats']} time(s), interleaved (each repeat "
        "another order), after one discarded warm-up overwrite; figures are the median with (min–max), "
        "wall-clock seconds.",
        "",
        f"- Machine: {m['cpu_model']}, {m['nproc']} CPUs, {m['memory_gib']} GiB RAM, Linux {m['kernel']}; data and "
        "tables on local disk.",
        f"- Shared machine: load average (1 min) {report['load']['before']:.2f} before, "
        f"{report['load']['after']:.2f} after; other processes used a median "
        f"{report['load']['other_cpu_share_median']:.0%} of the machine's CPU during the measured runs "
        f"(max {report['load']['other_cpu_share_max']:.0%}).",
        f"- Spark: {s['master']}, driver memory {s['driver_memory']}, shuffle partitions "
        f"{s['spark.sql.shuffle.partitions']}, Delta snapshot partitions "
        f"{s['spark.databricks.delta.snapshotPartitions']} "
        "(dev/local_spark.py); one session for every contender.",
        f"- Versions: Python {v['python']}, Spark {v['spark']} (pyspark {v['pyspark']}), "
        f"delta-spark {v['delta-spark']} "
        f"({v['delta_jar']}), Java {v['java']}, pyarrow {v['pyarrow']}, numpy {v['numpy']}.",
        f"- Data: each batch {d['a']['rows']:,} rows in {d['a']['files']} zstd Parquet file(s), "
        f"A {d['a']['bytes'] / MiB:.0f} MiB, B {d['b']['bytes'] / MiB:.0f} MiB; generated in {d['generate_s']:.1f} s, "
        f"written in {d['write_s']:.1f} s (seed {report['seed']}).",
        "",
        *TARGETS_TABLE,
    ]
    for t in report["targets"]:
        lines.append(f"| {t['target']} | {t['ratio']:.2f}x | {t['goal']} | {'met' if t['met'] else '**not met**'} "
                     f"| {t['note']} |")
    lines += [
        "",
        "## Contenders",
        "",
        "| contender | wall s | vs overwrite | peak RSS, tree (MiB) | CPU s: ours / others "
        "| member: files written / DVs written | dim_member: files written / DVs written |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = [(CONTENDERS[k], summary[k]) for k in CONTENDERS if k in summary]
    if first:
        rows.insert(0, ("job: first load of A (once)", {
            "wall_s": stat([first["wall_s"]]), "peak_rss_tree_mib": stat([first["peak_rss_tree_mib"]]),
            "cpu_ours_s": stat([first["cpu_ours_s"]]), "cpu_other_s": stat([first["cpu_other_s"]]),
            "commits": {t: {k: stat([first["commits"][t][k]]) for k in ("data_files_added",
                                                                       "deletion_vectors_written")}
                        for t in ("member", "dim_member")}}))
    for label, e in rows:
        cpu = " / ".join(fmt_stat(e[f], "{:.0f}", spread=False) for f in ("cpu_ours_s", "cpu_other_s"))
        files = []
        for t in ("member", "dim_member"):
            c = e["commits"].get(t)
            files.append(" / ".join(fmt_stat(c[k], "{:.0f}", spread=False) for k in
                                    ("data_files_added", "deletion_vectors_written")) if c else "–")
        if "overwrite" in e["commits"]:
            files[0] = f"(its own table: {fmt_stat(e['commits']['overwrite']['data_files_added'], '{:.0f}', False)})"
        lines.append(f"| {label} | {fmt_stat(e['wall_s'])} | {_ratio(e['wall_s']['median'], overwrite)} "
                     f"| {fmt_stat(e['peak_rss_tree_mib'], '{:.0f}')} | {cpu} | {files[0]} | {files[1]} |")
    steps = [s for s in ("check_order", "read_batch", "plan_changes", "clean", "quarantine", "protect",
                         "merge_dim_member", "merge_members", "table_facts", "record_batch")
             if any(s in r.get("steps", {}) for r in runs)]
    lines += [
        "",
        "## The job's steps (its own log lines; median s, and vs the overwrite's median)",
        "",
        "| step | first load (once) | 5% change | vs overwrite | unchanged replay | vs overwrite |",
        "|---|---|---|---|---|---|",
    ]
    for step in [*steps, "(outside the steps)"]:
        def cell(key: str, step: str = step) -> tuple[str, str]:
            if key == "first_load":
                r = first
                value = None if r is None else (
                    max(r["wall_s"] - sum(r["steps"].values()), 0.0) if step.startswith("(") else r["steps"].get(step))
                return ("–" if value is None else f"{value:.1f}"), ""
            e = summary.get(key)
            if not e:
                return "–", "–"
            if step.startswith("("):
                mine = [r for r in runs if r["contender"] == key]
                # the job logs each step to 0.1 s: the difference can come out a little below zero
                value = max(statistics.median(r["wall_s"] - sum(r["steps"].values()) for r in mine), 0.0)
                return f"{value:.1f}", _ratio(value, overwrite)
            st = e["steps_s"].get(step)
            return (fmt_stat(st, "{:.1f}") if st else "–"), (_ratio(st["median"], overwrite) if st else "–")
        change, replay = cell("job_change"), cell("job_replay")
        lines.append(f"| {step} | {cell('first_load')[0]} | {change[0]} | {change[1]} | {replay[0]} | {replay[1]} |")
    failed = [(r, c) for r in runs for c in r.get("checks", []) if not c["ok"]]
    checked = sum(len(r.get("checks", [])) for r in runs)
    lines += ["", "## Correctness", ""]
    if failed:
        lines += [f"**{len(failed)} of {checked} checks failed:**", "", "| run | check | expected | found |",
                  "|---|---|---|---|"]
        lines += [f"| {r['contender']} r{r['repeat'] or '-'} | {c['check']} | {c['expected']:,} | {c['found']:,} |"
                  for r, c in failed]
    else:
        lines.append(f"All {checked} checks passed: after every job run member held {report['members']:,} rows "
                     f"(distinct member_id) and dim_member {report['members'] + report['changed']:,} "
                     f"({report['members']:,} current; {report['members']:,} after the first load); the job's "
                     "result counted the unchanged, valid (changed), quarantined (0) and deleted (0) rows "
                     "expected; every replay committed nothing to member and dim_member.")
    lines += [
        "",
        "## Every run, in execution order",
        "",
        "| # | repeat | contender | wall s | peak RSS MiB | CPU s ours / others | load before "
        "| member / dim_member commits | checks |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(runs, 1):
        commits = "–" if "member" not in r["commits"] else " / ".join(
            f"{r['commits'][t]['commits']} ({', '.join(r['commits'][t]['operations']) or 'none'})"
            for t in ("member", "dim_member"))
        checks = r.get("checks")
        ok = "–" if not checks else f"{sum(c['ok'] for c in checks)}/{len(checks)} ok"
        lines.append(f"| {i} | {r['repeat'] or '–'} | {r['contender']} | {r['wall_s']:.2f} "
                     f"| {r['peak_rss_tree_mib']:.0f} | {r['cpu_ours_s']:.0f} / {r['cpu_other_s']:.0f} "
                     f"| {r['loadavg_before']:.2f} | {commits} | {ok} |")
    lines += [
        "",
        "Peak RSS is this process's tree: the benchmark's Python process, the driver JVM and its Python workers. "
        "The JVM keeps heap it has grown into, so a contender's peak includes what earlier runs left committed; "
        "the first load's is the honest high-water mark. \"CPU s others\" is the machine's busy time during the "
        "run minus the tree's: someone else's work.",
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--change-share", type=float, default=0.05, help="share of rows batch B changes")
    parser.add_argument("--driver-memory", default="4g", help="spark.driver.memory of the session it starts")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--workdir", type=Path,
                        help="where batches and tables go (kept); default a temporary directory, removed after")
    parser.add_argument("--out", default=str(RESULTS_DIR),
                        help=f"results directory (default {RESULTS_DIR.relative_to(REPO)}); - for none")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="only rewrite the Markdown of a saved JSON result, next to it")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> int:
    """The benchmark; with `spark`, in that session (a test's), else in a local[2] session of its own,
    stopped at the end. Returns 1 when a correctness check failed, else 0."""
    args = parse_args(argv)
    if args.render:
        args.render.with_suffix(".md").write_text(markdown(json.loads(args.render.read_text())))
        return 0
    if args.repeats < 1 or args.members < 1:
        raise SystemExit("--members and --repeats must be at least 1")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    started_at = dt.datetime.now(dt.timezone.utc)
    t0 = time.monotonic()
    load_before = loadavg()
    print(f"member history benchmark: {args.members:,} members, {args.change_share:.0%} changed, "
          f"{args.repeats} repeat(s); load average {load_before:.2f}", flush=True)
    with contextlib.ExitStack() as stack:
        if args.workdir:
            work = args.workdir / f"member-history-{started_at:%Y%m%dT%H%M%S}"
            work.mkdir(parents=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="member-history-")))
        print(f"  generating batches A and B under {work} ...", flush=True)
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            data = pool.submit(generate_batches, str(work / "landing"), args.members, args.change_share,
                               args.seed).result()
        print(f"  generated in {data['generate_s']:.1f} s, written in {data['write_s']:.1f} s "
              f"(A {data['a']['bytes'] / MiB:.0f} MiB, B {data['b']['bytes'] / MiB:.0f} MiB)", flush=True)
        own_session = spark is None
        if own_session:
            spark = local_session(args.driver_memory)
            stack.callback(spark.stop)
        stack.enter_context(pii_keys())
        bench = Bench(spark, work, data)
        bench.run_all(args.repeats)
        spark_info, version_info = spark_facts(spark), spark_versions(spark)
    duration = time.monotonic() - t0
    runs = bench.runs
    measured = [r for r in runs if r["contender"] != "warmup"]
    shares = [r["other_cpu_share"] for r in measured]
    summary = summarize(runs)
    checks = [c for r in runs for c in r.get("checks", [])]
    report = {
        **run_header("member_history", started_at, duration, "benchmarks.member_history_bench", argv),
        "members": args.members,
        "changed": data["changed"],
        "change_share": args.change_share,
        "repeats": args.repeats,
        "seed": args.seed,
        "machine": machine(),
        "versions": version_info,
        "spark": spark_info,
        "load": load_facts(load_before, shares),
        "data": {**data, **{k: {**data[k], "manifest": None, "files": len(data[k]["files"])} for k in ("a", "b")}},
        "contenders": {"warmup": "overwrite of A (warm-up, discarded)", "first_load": "job: A on empty tables",
                       **CONTENDERS},
        "targets": evaluate_targets(summary, runs),
        "summary": summary,
        "checks_passed": all(c["ok"] for c in checks),
        "checks": len(checks),
        "runs": runs,
    }
    text = markdown(report)
    print("\n" + text)
    if args.out != "-":
        write_result(args.out, "member-history", report, text)
    if args.workdir is None:
        print("scratch data removed")
    print(f"took {duration / 60:.1f} min")
    return 0 if report["checks_passed"] else 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise SystemExit(main())
