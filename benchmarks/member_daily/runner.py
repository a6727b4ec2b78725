"""The daily benchmark's run: set up the contenders' environment, then for each size and repeat put the
source in state A or B, run each contender's three loads in a rotating order, measure and check each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness.delta_log import commit_totals
from benchmarks.harness.processes import find_server, loadavg
from benchmarks.harness.results import REPO
from benchmarks.harness.stack import env, log_tail, mysql_url, redact
from benchmarks.member_daily.airflow import PrivateAirflow
from benchmarks.member_daily.checks import Checker, check_load
from benchmarks.member_daily.config import STEPS
from benchmarks.member_daily.contenders import LOADS, reset, tables
from benchmarks.member_daily.databricks import DatabricksRunner, build_jobs_wheel
from benchmarks.member_daily.installs import ensure_bench_venv, ensure_jdbc_jar
from benchmarks.member_daily.probe import Probe
from benchmarks.member_daily.report import print_run
from benchmarks.member_daily.source import Source, connect_root, member_columns
from benchmarks.member_daily.store import Store
from benchmarks.member_daily.summary import limit_text


class Bench:

    def __init__(self, args, stamp: str, tmp: Path):
        self.args, self.stamp, self.tmp = args, stamp, tmp
        self.source = Source(args.seed, args.database_prefix)
        self.store = Store(args.bucket_prefix)
        self.runner = DatabricksRunner()
        self.checker = Checker()
        self.runs: list[dict] = []
        self.airflow: PrivateAirflow | None = None
        self.wheel: dict | None = None
        self.startup: dict | None = None
        self.size: dict = {}
        self.versions_dlt: dict = {}
        # what the tables of ours and of the same-work notebook hold after each load, by (rows, step) and
        # contender (checks.Checker.content): whichever loads second is compared with the first
        self.contents: dict[tuple[int, str], dict[str, dict]] = {}
        self.contenders = args.contenders

    def overrides(self) -> dict[str, str]:
        """The environment that points the extract, the DAG and the run JSON at the benchmark's source and buckets."""
        return {"AIRFLOW_CONN_MYSQL_MEMBERS": mysql_url(self.source.live_db, query="?charset=utf8mb4"),
                "LANDING_BUCKET": self.store.landing, "LAKEHOUSE_BUCKET": self.store.lakehouse,
                "JOBS_WHEEL_PATH": self.wheel["path"] if self.wheel else ""}

    def child_env(self) -> dict[str, str]:
        e = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_PII_")}
        return e | self.overrides()

    def setup(self) -> None:
        if {"dag", "job"} & set(self.contenders):
            if not self.runner.pid:
                raise RuntimeError("the Databricks runner is not running: `dev/stack.sh start`")
            print("  building the jobs wheel for the runner ...", flush=True)
            self.wheel = build_jobs_wheel(self.runner, self.stamp)
            self.startup = self.probe_startup()
            print(f"  runner start-up probe: {self.startup['wall_s']:.1f} s "
                  f"(setup {self.startup['setup_s']:.1f} s)", flush=True)
        if "dag" in self.contenders:
            print(f"  starting the benchmark's Airflow on 127.0.0.1:{self.args.airflow_port} ...", flush=True)
            self.airflow = PrivateAirflow(self.args.airflow_port, self.overrides())
            self.airflow.start()
        if "dlt" in self.contenders:
            ensure_bench_venv()
        if {"notebook", "same_work"} & set(self.contenders):
            ensure_jdbc_jar()

    def close(self) -> None:
        if self.airflow:
            self.airflow.stop()
        self.checker.stop()

    def run_json(self, batch_id: str, **kwargs) -> dict:
        """The DAG's run JSON for a batch (include/databricks_runs.member_merge_run), with the benchmark's
        buckets and wheel, rendered as the operator renders it (Jinja)."""
        code = ("import json, sys; from include.databricks_runs import member_merge_run; "
                "print(json.dumps(member_merge_run(sys.argv[1])))")
        out = subprocess.run([sys.executable, "-c", code, batch_id], env=self.child_env(), cwd=REPO, check=True,
                             capture_output=True, text=True).stdout
        import jinja2

        return json.loads(jinja2.Environment().from_string(out).render(
            ti={"dag_id": "member_daily_bench", "task_id": "job_alone"}))

    def probe_startup(self) -> dict:
        """What a run costs before any work: runs/submit of the jobs wheel's member_merge entry point with
        --help (the runner prepares the run's environment, spark-submit starts the JVM and Python, imports the
        job, which prints its usage and exits). Also warms the runner's environment cache for the wheel."""
        payload = self.run_json("extract_date=2026-01-01")
        wheel_task = payload["tasks"][0]["python_wheel_task"]
        wheel_task.pop("named_parameters")
        wheel_task["parameters"] = ["--help"]
        payload["run_name"] = "member_daily_bench start-up probe"
        started = time.monotonic()
        run = self.runner.wait(self.runner.submit(payload))
        wall = time.monotonic() - started
        facts = self.runner.facts(run)
        if facts["state"] != "SUCCESS":
            raise RuntimeError(f"the start-up probe run failed: {facts['message']}")
        return {"wall_s": round(wall, 1), "setup_s": facts["setup_s"], "execution_s": facts["execution_s"],
                "queue_s": facts["queue_s"]}

    def servers(self) -> dict[str, int | None]:
        return {"mariadb": find_server("mariadbd", f"--port={env('MYSQL_PORT')}"),
                "minio": find_server("minio", "server", env("S3_ENDPOINT_URL").split("//", 1)[1])}

    def measure(self, contender: str, step: str, rows: int, repeat: int, position: int) -> dict:
        run = {"contender": contender, "step": step, "rows": rows, "repeat": repeat, "position": position,
               "loadavg_before": loadavg()}
        targets = tables(contender)
        before = {t: (self.store.versions(t) or [None])[-1] for t in targets}
        ok = True
        try:
            out = LOADS[contender](self, step, run)
        except Exception as e:  # noqa: BLE001 (a failed load is a result: reported, and the exit status is 1)
            ok, out = False, {"error": redact(f"{type(e).__name__}: {e}")[-4000:]}
        run.update(out)
        run["ok"] = ok
        run["commits"] = {t.rsplit("/", 1)[1] if not t.startswith("dlt") else "member": commit_totals(
            self.store.commits(t, before[t])) for t in targets}
        run["checks"] = check_load(self, contender, step, rows, run) if ok else []
        run["rows_per_s"] = round(rows / run["wall_s"]) if run.get("wall_s") else None
        run["limit"] = limit_text(run) if ok else "failed"
        return run

    def probe(self, groups: dict[str, list[int]]) -> Probe:
        """A probe of `groups` (the contender's), then of the benchmark's own processes: its Airflow while it
        idles (when it is not the contender) and this process with the rest of its tree."""
        groups = dict(groups)
        if self.airflow and "airflow" not in groups:
            groups["bench_airflow"] = self.airflow.pids
        groups["self"] = [os.getpid()]
        return Probe(groups, self.runner.pid, self.servers())

    def measured(self, probe: Probe, groups: tuple[str, ...], task_dirs: set[str] = frozenset()) -> dict:
        leaders = probe.leaders_in(task_dirs)
        cpu = probe.cpu(groups, leaders)
        mine = sum(cpu.values())
        servers = {k: None if v is None else round(v, 2) for k, v in probe.server_cpu.items()}
        harness = sum(probe.cpu(("self",)).values())
        idle_airflow = sum(probe.cpu(("bench_airflow",)).values())
        others = probe.busy - mine - sum(v or 0 for v in servers.values()) - harness - idle_airflow
        out = {"wall_s": round(probe.wall, 2), "peak_rss_mib": probe.peak_mib(groups, leaders),
               "cpu_s": cpu, "cpu_total_s": round(mine, 1), "cpu_mariadb_s": servers["mariadb"],
               "cpu_minio_s": servers["minio"], "cpu_harness_s": round(harness, 1),
               "cpu_bench_airflow_idle_s": round(idle_airflow, 1),
               "cpu_others_s": round(others, 1),
               "other_cpu_share": round(max(others, 0) / (probe.wall * (os.cpu_count() or 1)), 3),
               "rss_samples": len(probe.samples)}
        if task_dirs:
            out["job_peak_rss_mib"] = probe.peak_mib((), leaders)
            out["job_cpu_s"] = probe.cpu((), leaders)
            out["job_processes_found"] = len(leaders)
        return out

    def child(self, cmd: list[str], child_env: dict, log: Path, probe_groups: dict | None = None,
              extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, Probe]:
        """Run `cmd` to its end under a probe of its process tree (group "child"); raises on failure."""
        with open(log, "ab") as f:
            proc = subprocess.Popen(cmd, cwd=REPO, env=child_env, stdout=f, stderr=subprocess.STDOUT)
            with self.probe({"child": [proc.pid], **(probe_groups or {})}) as probe:
                proc.wait()
        if proc.returncode:
            raise RuntimeError(f"{Path(cmd[1]).name if len(cmd) > 1 else cmd[0]} exited {proc.returncode}:\n"
                               f"{log_tail(log)}")
        return proc, probe

    def run_size(self, rows: int) -> dict:
        self.size = self.source.ensure(rows)
        info = dict(self.size)
        for state in ("A", "B"):  # computed up front, outside any measured load
            info[f"mysql_{state}"] = self.source.facts(rows, state)
        self.source.switch(rows, "A")
        self.warm_up(rows)
        order = list(self.contenders)
        for repeat in range(1, self.args.repeats + 1):
            shift = (repeat - 1) % len(order)
            for position, contender in enumerate(order[shift:] + order[:shift], 1):
                self.source.switch(rows, "A")
                reset(self, contender)
                for step in STEPS:
                    if step == "change":
                        self.source.switch(rows, "B")
                    run = self.measure(contender, step, rows, repeat, position)
                    self.runs.append(run)
                    print_run(run)
                    if not run["ok"]:
                        break  # the next load would start from a wrong state
                self.source.switch(rows, "A")
        return info

    def warm_up(self, rows: int) -> None:
        """One discarded full scan of the live table (the server's buffer pool and the page cache), as the
        extract benchmark does."""
        conn = connect_root(self.source.live_db)
        cur = conn.cursor()
        cur.execute(f"SELECT COUNT(*), SUM(LENGTH(CONCAT_WS(',', {', '.join(member_columns())}))) FROM member")
        cur.fetchall()
        conn.close()
