"""The daily benchmark's probe: RSS and CPU of the contenders' process trees and of the runner's task runs,
sampled from /proc while a load runs."""

from __future__ import annotations

import os
import time

from benchmarks.harness.processes import ProcRow, boot_ticks_now, cpu_seconds, proc_table, system_cpu, tree
from benchmarks.harness.results import MiB
from benchmarks.harness.sampler import PeriodicSampler
from benchmarks.member_daily.config import SAMPLE_S


def kind_of(comm: str) -> str:
    """The kind of process, for CPU accounting: what a contender's time goes to."""
    if comm == "java":
        return "jvm"
    if comm.startswith(("python", "pyspark")):
        return "python"
    if comm.startswith("airflow"):
        return "airflow"
    if comm in ("uv", "spark-submit", "bash", "sh", "spark-class"):
        return "launch"
    return "other"


class Probe(PeriodicSampler):
    """Samples, every SAMPLE_S, the RSS and CPU of process trees: named groups of root pids (the contender's
    child, the benchmark's Airflow) and every task process tree below the Databricks runner (each task's
    uv or spark-submit is a child of the runner in a session of its own; its working directory is the task
    run's folder, so a tree is attributed to a task run exactly, whoever else submits runs meanwhile).

    CPU: each process's utime+stime when last seen, minus its value at the start for processes that were
    already running (pids born during the step count from zero); a process that lives less than one sample
    period is missed. mariadbd's and MinIO's CPU, and the machine's busy time, are counted from start to end.
    """

    def __init__(self, groups: dict[str, list[int]], runner_pid: int | None, servers: dict[str, int | None]):
        super().__init__(SAMPLE_S)
        self.groups, self.runner_pid, self.servers = groups, runner_pid, servers
        self.samples: list[tuple[float, dict[str, int], dict[int, int]]] = []
        self.first: dict[int, float] = {}
        self.last: dict[int, tuple[float, str, str]] = {}  # pid -> (cpu, group, kind)
        self.leader_cwd: dict[int, str] = {}

    def sample(self) -> None:
        table = proc_table()
        t = time.monotonic()
        rss: dict[str, int] = {}
        seen: set[int] = set()
        for group, roots in list(self.groups.items()):  # in order: a process belongs to the first group it is in
            pids = [p for p in tree(table, roots) if p not in seen]
            seen.update(pids)
            rss[group] = sum(table[p].rss_bytes for p in pids)
            for p in pids:
                self._cpu(p, table[p], group)
        leaders: dict[int, int] = {}
        if self.runner_pid:
            for leader in [p for p, row in table.items() if row.ppid == self.runner_pid]:
                if leader not in self.leader_cwd:
                    try:
                        self.leader_cwd[leader] = os.readlink(f"/proc/{leader}/cwd")
                    except OSError:
                        continue
                pids = tree(table, [leader])
                leaders[leader] = sum(table[p].rss_bytes for p in pids)
                for p in pids:
                    self._cpu(p, table[p], f"leader:{leader}")
        self.samples.append((t, rss, leaders))

    def _cpu(self, pid: int, row: ProcRow, group: str) -> None:
        if pid not in self.last and pid not in self.first:
            self.first[pid] = row.cpu_s if row.start_ticks < self.start_ticks else 0.0
        self.last[pid] = (row.cpu_s, group, kind_of(row.comm))

    def entered(self) -> None:
        self.start_ticks = boot_ticks_now()
        self.busy0 = system_cpu()[0]
        self.server0 = {k: cpu_seconds(p) for k, p in self.servers.items()}
        self.t0 = time.monotonic()

    def exited(self) -> None:
        self.wall = time.monotonic() - self.t0
        self.busy = system_cpu()[0] - self.busy0
        now = {k: cpu_seconds(p) for k, p in self.servers.items()}
        self.server_cpu = {k: None if self.server0[k] is None or now[k] is None else now[k] - self.server0[k]
                           for k in self.servers}

    # --- results
    def leaders_in(self, task_dirs: set[str]) -> set[int]:
        return {leader for leader, cwd in self.leader_cwd.items() if cwd in task_dirs}

    def peak_mib(self, groups: tuple[str, ...], leaders: set[int] = frozenset()) -> float:
        peak = 0
        for _, rss, by_leader in self.samples:
            peak = max(peak, sum(rss.get(g, 0) for g in groups) + sum(v for k, v in by_leader.items() if k in leaders))
        return round(peak / MiB, 1)

    def cpu(self, groups: tuple[str, ...], leaders: set[int] = frozenset()) -> dict[str, float]:
        """CPU seconds by process kind of the given groups and runner task trees."""
        wanted = set(groups) | {f"leader:{p}" for p in leaders}
        out: dict[str, float] = {}
        for pid, (cpu, group, kind) in self.last.items():
            if group in wanted:
                out[kind] = out.get(kind, 0.0) + max(cpu - self.first.get(pid, 0.0), 0.0)
        return {k: round(v, 2) for k, v in sorted(out.items())}
