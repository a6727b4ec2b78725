"""Scale command: the member pipeline through the DAG at 1M and 5M members on the running local stack.

    dev/stack.sh run python -m benchmarks.member_scale                    # 1M then 5M; results committed
    dev/stack.sh run python -m benchmarks.member_scale --rows 100000      # a quick look; --out - saves nothing

For each size it seeds MySQL (the brief's generator, dev/seed_members.py, plus the dirty rows), empties
the lakehouse tables (a new source means new member ids: the first snapshot of it is a first load), then
triggers `member_pipeline` as a user would and reports each task's wall time from Airflow's task
instances, and the peak resident memory of the Databricks run: the whole process tree of its
spark-submit (the driver JVM and its Python workers), sampled from /proc every 0.5 s. The run's driver
memory comes from its cluster spec (dev/databricks_runner/spark.py), as on a cluster.

At the end it restores the demo's table (SEED_ROWS members) and empties the lakehouse again, so `make
demo` and `make test` start from a small table. Not part of `make test`: at 5M it takes about half an hour.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

from dev.airflow_api import AirflowApi, trigger
from dev.bootstrap import s3_client
from include import layout, settings

DAG_ID = "member_pipeline"
RESULTS = Path(__file__).parent / "results"
STATE = Path(os.environ.get("LAKEHOUSE_STATE", Path(__file__).resolve().parents[1] / ".local"))


def descendants(pid: int) -> list[int]:
    """pid and every process below it (from /proc/<pid>/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return found


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/status").read_text().split("\nVmRSS:")
            total += int(fields[1].split()[0]) * 1024 if len(fields) > 1 else 0
        except OSError:
            pass
    return total


class PeakMemory(threading.Thread):
    """Peak RSS of the spark-submit process trees below the local runner, while it runs."""

    def __init__(self, runner_pid: int):
        super().__init__(daemon=True)
        self.runner_pid, self.peak, self.stopped = runner_pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            jobs = [p for p in descendants(self.runner_pid)[1:] if _is_spark_submit_leader(p)]
            self.peak = max(self.peak, sum(rss_bytes(descendants(p)) for p in jobs))


def _is_spark_submit_leader(pid: int) -> bool:
    """The runner's child for a task: spark-submit, which execs the driver JVM (org.apache.spark.deploy.
    SparkSubmit); its Python driver and workers are its descendants."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"spark-submit" in cmdline or b"SparkSubmit" in cmdline


def reset_lakehouse() -> None:
    s3 = s3_client()
    for prefix in (layout.delta_table_key("member") + "/", layout.delta_table_key("member_quarantine") + "/",
                   "_results/member/"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.LAKEHOUSE_BUCKET, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=settings.LAKEHOUSE_BUCKET, Delete={"Objects": keys, "Quiet": True})


def seed(rows: int) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "dev.seed_members", "--truncate", "--rows", str(rows), "--dirty"],
                   check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def task_durations(api: AirflowApi, run_id: str) -> dict[str, float]:
    r = api.get(f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
    r.raise_for_status()
    return {ti["task_id"]: round(ti["duration"], 1) for ti in r.json()["task_instances"]}


def measure(api: AirflowApi, rows: int) -> dict:
    seconds_to_seed = seed(rows)
    reset_lakehouse()
    runner_pid = int((STATE / "run" / "databricks-runner.pid").read_text())
    memory = PeakMemory(runner_pid)
    memory.start()
    run_id = f"scale__{rows}__{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}"
    started = time.monotonic()
    trigger(DAG_ID, run_id)
    state = api.wait_for_run(DAG_ID, run_id, timeout=4 * 3600)
    wall = time.monotonic() - started
    memory.stopped.set()
    memory.join()
    result = {"rows": rows, "run_id": run_id, "state": state, "seed_seconds": round(seconds_to_seed, 1),
              "dag_run_seconds": round(wall, 1), "tasks_seconds": task_durations(api, run_id),
              "job_peak_rss_mib": round(memory.peak / 2**20)}
    print(json.dumps(result), flush=True)
    return result


def render(results: list[dict], machine: dict) -> str:
    lines = [
        f"# Member pipeline at scale ({machine['date']})", "",
        f"Machine: {machine['cpus']} cores, {machine['memory_gib']} GiB; command: "
        "`dev/stack.sh run python -m benchmarks.member_scale`. Each size is a first load through the DAG "
        "(trigger to success), the Databricks run on the local runner with the default job cluster's "
        "memory (m6gd.large: 4 GiB driver heap).", "",
        "| members | state | DAG run (s) | extract (s) | sensor (s) | Spark MERGE run (s) | reconcile (s) "
        "| job peak RSS (MiB) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        t = r["tasks_seconds"]
        lines.append(f"| {r['rows']:,} | {r['state']} | {r['dag_run_seconds']} | {t.get('extract_members')} | "
                     f"{t.get('wait_for_manifest')} | {t.get('merge_members')} | {t.get('reconcile')} | "
                     f"{r['job_peak_rss_mib']:,} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--out", default=str(RESULTS / f"member-scale-{dt.date.today()}"),
                        help="results path without suffix (.json and .md are written); - for none")
    args = parser.parse_args(argv)
    api = AirflowApi()
    api.wait_for_dag(DAG_ID)
    machine = {"date": str(dt.date.today()), "cpus": os.cpu_count(), "platform": platform.platform(),
               "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)}
    try:
        results = [measure(api, rows) for rows in args.rows]
    finally:
        seed(int(os.environ.get("SEED_ROWS", "1000")))
        reset_lakehouse()
    if args.out != "-":
        Path(args.out + ".json").write_text(json.dumps({"machine": machine, "results": results}, indent=2))
        Path(args.out + ".md").write_text(render(results, machine))
    print(render(results, machine))
    return 0 if all(r["state"] == "success" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
