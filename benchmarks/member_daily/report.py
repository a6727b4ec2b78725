"""The daily benchmark's report: a line per load while it runs, the versions it ran with, and the Markdown
rendered from the result JSON (`--render` rewrites it from a saved JSON)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.harness.processes import find_server
from benchmarks.harness.results import MiB, fmt_stat, package_versions
from benchmarks.harness.stack import connect_root
from benchmarks.member_daily.config import CHANGE_SHARE, CONTENDERS, JDBC_JAR, SAMPLE_S, STEP_LABELS, STEPS

if TYPE_CHECKING:
    from benchmarks.member_daily.runner import Bench


def print_run(run: dict) -> None:
    if not run["ok"]:
        print(f"  r{run['repeat']} {run['contender']:<9} {run['step']:<7} FAILED: {run['error'][:600]}", flush=True)
        return
    failed = [c["check"] for c in run["checks"] if not c["ok"]]
    extra = f"  Airflow share {run['airflow_share']:.0%}" if run["contender"] == "dag" else ""
    if "job_peak_rss_mib" in run:
        extra += f"  job peak {run['job_peak_rss_mib']:.0f} MiB"
    print(f"  r{run['repeat']} {run['contender']:<9} {run['step']:<7} {run['wall_s']:8.1f} s "
          f"{run['rows_per_s']:>9,} rows/s  peak RSS {run['peak_rss_mib']:6.0f} MiB{extra}  "
          f"checks {'ok' if not failed else 'FAILED: ' + '; '.join(failed)}", flush=True)


def versions(bench: Bench | None) -> dict:
    out = package_versions("pyspark", "delta-spark", "pyarrow", "connectorx", "apache-airflow",
                           "apache-airflow-providers-databricks", "apache-airflow-providers-amazon", "boto3")
    java = subprocess.run(["java", "-version"], capture_output=True, text=True)
    out["java"] = (re.search(r'version "([^"]+)"', java.stderr) or [None, None])[1]
    conn = connect_root()
    cur = conn.cursor()
    cur.execute("SELECT VERSION(), @@innodb_buffer_pool_size")
    out["mariadb"], pool = cur.fetchone()
    out["innodb_buffer_pool_mib"] = int(pool) // MiB
    conn.close()
    minio = find_server("minio", "server")
    if minio:
        with open(f"/proc/{minio}/cmdline", "rb") as f:
            out["minio"] = Path(f.read().split(b"\0")[0].decode()).name
    out["jdbc_driver"] = JDBC_JAR.name
    if bench:
        out["bench_venv"] = bench.versions_dlt or None
        out["jobs_wheel"] = bench.wheel
    return out


def markdown(report: dict) -> str:
    m, v = report["machine"], report["versions"]
    bv = v.get("bench_venv") or {}
    lines = [
        f"# Member daily benchmark, {report['date']}",
        "",
        f"Produced by `{report['command']}` ({report['duration_s'] / 60:.1f} min). Method and how to read it: "
        "[benchmarks/README.md](../README.md). Per size, every contender did, in turn (each repeat another "
        "order), a first load of state A into an empty target, an unchanged replay of A and a load of state B "
        f"(the email and address of {CHANGE_SHARE:.0%} of the members changed); figures are the median with "
        "(min–max) over repeats, wall-clock seconds.",
        "",
        f"- Machine: {m['cpu_model']}, {m['nproc']} CPUs, {m['memory_gib']} GiB RAM, Linux {m['kernel']}; MariaDB, "
        "MinIO, the stack's Airflow and runner, the benchmark's Airflow and every contender share it.",
        f"- Shared machine: load average (1 min) {report['load']['before']:.2f} before, {report['load']['after']:.2f} "
        f"after; other processes used a median {report['load']['other_cpu_share_median']:.0%} of the machine's CPU "
        f"during the loads (max {report['load']['other_cpu_share_max']:.0%}).",
        f"- Versions: Python {v['python']}, Spark {v['pyspark']}, delta-spark {v['delta-spark']}, Java {v['java']}, "
        f"Airflow {v['apache-airflow']} (databricks provider {v['apache-airflow-providers-databricks']}), "
        f"pyarrow {v['pyarrow']}, connectorx {v['connectorx']}; dlt {bv.get('dlt', '–')}, deltalake "
        f"{bv.get('deltalake', '–')}, connectorx {bv.get('connectorx', '–')}, SQLAlchemy {bv.get('sqlalchemy', '–')}, "
        f"PyMySQL {bv.get('pymysql', '–')} (bench venv); JDBC {v['jdbc_driver']}; MariaDB {v['mariadb']} (buffer "
        f"pool {v['innodb_buffer_pool_mib']} MiB); {v.get('minio', 'MinIO')}.",
    ]
    if v.get("jobs_wheel"):
        w = v["jobs_wheel"]
        lines.append(f"- Jobs wheel built from commit {w['commit']}"
                     f"{' with uncommitted changes in spark_jobs/' if w['spark_jobs_uncommitted_changes'] else ''} "
                     f"(sha256 {w['sha256'][:12]}); the job's driver memory comes from the run's cluster spec "
                     f"({report['settings']['driver_memory']}), the notebook gets the same.")
    if report.get("startup"):
        s = report["startup"]
        lines.append(f"- Runner start-up probe (runs/submit of the job's entry point with --help: environment, "
                     f"spark-submit, JVM, Python imports, no Spark session): {s['wall_s']:.1f} s "
                     f"(runner setup {s['setup_s']:.1f} s).")
    lines += ["", "## Targets (ratios of medians, same run)", "", "| target | measured | goal | met? | detail |",
              "|---|---|---|---|---|"]
    for t in report["targets"]:
        lines.append(f"| {t['target']} | {t['measured']} | {t['goal']} | {'met' if t['met'] else '**not met**'} "
                     f"| {t['note']} |")
    if not report["targets"]:
        lines.append("| (no target: a contender it compares is missing) | | | | |")
    for size in report["sizes"]:
        rows = size["rows"]
        by = report["summary"].get(str(rows), {})
        lines += ["", f"## {rows:,} members", "",
                  f"Source `{report['settings']['source']}`: {size['innodb_data_bytes'] / MiB:.0f} MiB of InnoDB data; "
                  f"state B changes {size['changed']:,} members.", "",
                  "| contender | load | wall s | rows/s | peak RSS, tree (MiB) | job tree (MiB) | CPU s: contender / "
                  "mariadbd / minio / others | what limits it |",
                  "|---|---|---|---|---|---|---|---|"]
        for c in CONTENDERS:
            for step in STEPS:
                s = by.get(c, {}).get(step)
                if not s:
                    continue
                cpu = " / ".join(fmt_stat(s[f], "{:.0f}", spread=False) for f in
                                 ("cpu_total_s", "cpu_mariadb_s", "cpu_minio_s", "cpu_others_s"))
                lines.append(f"| {CONTENDERS[c]} | {STEP_LABELS[step]} | {fmt_stat(s['wall_s'], '{:.1f}')} "
                             f"| {s['rows_per_s']['median']:,.0f} | {fmt_stat(s['peak_rss_mib'], '{:.0f}')} "
                             f"| {fmt_stat(s['job_peak_rss_mib'], '{:.0f}')} | {cpu} | {s['limit']} |")
        if "dag" in by or "job" in by:
            lines += ["", "Where a daily run's time goes (medians, s): the DAG's tasks from Airflow's task instances, "
                          "the Databricks run from the runner's runs/get; Airflow's share = (DAG run − extract task − "
                          "Databricks run) / DAG run.", "",
                      "| contender | load | run | extract | sensor | merge task | reconcile | Databricks run "
                      "(queue / setup / execution) | job start+stop | Airflow s | Airflow share |",
                      "|---|---|---|---|---|---|---|---|---|---|---|"]
            for c in ("dag", "job"):
                for step in STEPS:
                    s = by.get(c, {}).get(step)
                    if not s:
                        continue
                    d = s["databricks"]
                    t = s["tasks_s"] or {}
                    med = lambda x: "–" if not x else f"{x['median']:.1f}"  # noqa: E731
                    lines.append(
                        f"| {c} | {STEP_LABELS[step]} | {med(s['dag_wall_s'] or s['wall_s'])} "
                        f"| {med(t.get('extract_members') or s['extract_s'])} | {med(t.get('wait_for_manifest'))} "
                        f"| {med(t.get('merge_members'))} | {med(t.get('reconcile'))} | {med(d['run_s'])} "
                        f"({med(d['queue_s'])} / {med(d['setup_s'])} / {med(d['execution_s'])}) "
                        f"| {med(d['start_and_stop_s'])} | {med(s['airflow_s'])} "
                        f"| {'–' if not s['airflow_share'] else format(s['airflow_share']['median'], '.1%')} |")
    runs = report["runs"]
    failed = [(r, c) for r in runs for c in r.get("checks", []) if not c["ok"]]
    broken = [r for r in runs if not r["ok"]]
    checked = sum(len(r.get("checks", [])) for r in runs)
    lines += ["", "## Correctness", ""]
    if failed or broken:
        lines += [f"**{len(broken)} load(s) failed, {len(failed)} of {checked} checks failed:**", "",
                  "| rows | repeat | contender | load | check | expected | found |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['rows']:,} | {r['repeat']} | {r['contender']} | {r['step']} | failed to run | | "
                  f"{r['error'][:200].replace('|', '/').splitlines()[0]} |" for r in broken]
        lines += [f"| {r['rows']:,} | {r['repeat']} | {r['contender']} | {r['step']} | {c['check']} | {c['expected']} "
                  f"| {c['found']} |" for r, c in failed]
    else:
        lines.append(f"All {checked} checks passed. After every load, each table was read whole with Spark and "
                     "compared with MySQL's live table by checksums: row count, distinct member_id, the sum of a hash "
                     "of each member_id (the set), and for dlt and the notebook the sum of a hash of each row's "
                     "nine columns (every value) and of the changed members' rows; for ours, member plus the "
                     "batch's quarantined rows = the source, dim_member one current row per member and the changed "
                     "members' new versions, an unchanged replay no commit to member or dim_member (read from "
                     "the Delta log); for the same-work notebook the same as ours, but on a replay no new "
                     "dim_member version (it MERGEs every day), and, with it in the run, ours and its tables "
                     "compared after each load with whichever loaded the same state first: per column, a checksum "
                     "of (member_id, value) over member and dim_member's current rows with the direct identifiers "
                     "decrypted, dim_member's versions per member, the batch's quarantined rows by reason.")
    lines += ["", "## Every load, in execution order", "",
              "| rows | repeat | # | contender | load | wall s | peak RSS MiB | job MiB | CPU s contender / mariadbd / "
              "minio / others | commits (files written) | load avg before | checks |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        if not r["ok"]:
            lines.append(f"| {r['rows']:,} | {r['repeat']} | {r['position']} | {r['contender']} | {r['step']} | failed "
                         "| | | | | | |")
            continue
        cpu = " / ".join("–" if r.get(f) is None else f"{r[f]:.0f}" for f in
                         ("cpu_total_s", "cpu_mariadb_s", "cpu_minio_s", "cpu_others_s"))
        commits = ", ".join(f"{t} {c['commits']} ({c['data_files_added']})" for t, c in r["commits"].items()
                            if t in ("member", "dim_member"))
        ok = f"{sum(c['ok'] for c in r['checks'])}/{len(r['checks'])} ok"
        job = "–" if r.get("job_peak_rss_mib") is None else f"{r['job_peak_rss_mib']:.0f}"
        lines.append(f"| {r['rows']:,} | {r['repeat']} | {r['position']} | {r['contender']} | {r['step']} "
                     f"| {r['wall_s']:.1f} | {r['peak_rss_mib']:.0f} | {job} | {cpu} | {commits} "
                     f"| {r['loadavg_before']:.2f} | {ok} |")
    lines += ["", "Peak RSS, tree: the highest sum, at one instant (sampled every "
              f"{SAMPLE_S} s), of the RSS of every process of the contender: for the DAG the benchmark's Airflow "
              "(api-server, scheduler with its executor and task processes, dag-processor, triggerer) plus the "
              "Databricks run's tree; for the job alone the extract's process plus the run's tree; for dlt and the "
              "notebook their process tree. Job tree: the Databricks run's spark-submit, driver JVM and Python "
              "processes only, found below the runner by the task run's working directory. CPU s contender: "
              "the same processes' CPU time; others: the machine's busy time minus the contender's, mariadbd's, "
              "MinIO's and the benchmark's own (someone else's work). What limits it (the run of median wall time, "
              "its own figures): cores busy on the machine, "
              "and the processes the time went to (cores used on average: jvm, python, airflow, mariadbd, minio).", ""]
    return "\n".join(lines)
