"""Extract benchmark: our MySQL -> Parquet -> S3 extract beside Airflow's SqlToS3Operator and the mysql floor.

    make bench                                                   # 1M and 5M rows, 3 runs each (~20 min)
    dev/stack.sh run python -m benchmarks.extract_bench --rows 1000000 5000000 --repeats 3
    dev/stack.sh run python -m benchmarks.extract_bench --quick  # smoke run: 100K rows, once, saves nothing
    python -m benchmarks.extract_bench --render benchmarks/results/extract-<date>.json   # re-render the .md

Method (see benchmarks/README.md and the performance notes): every contender reads the same generated
`member` table from the same MariaDB, in one run, interleaved (each repeat rotates the order), each at least
`--repeats` times after one discarded warm-up scan. Each run is a child process; a sampler thread sums the
VmRSS of the child and all its descendants from /proc every 50 ms for the peak. Wall time is the child's
whole life (interpreter start, imports, work); the child also reports its in-process work time.
Results go to benchmarks/results/extract-<date>.json and .md, with versions and the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness.member_table import SEED, ensure_table
from benchmarks.harness.processes import cpu_seconds, find_server, loadavg, system_cpu
from benchmarks.harness.results import (
    REPO,
    RESULTS_DIR,
    TARGETS_TABLE,
    MiB,
    fmt_stat,
    load_facts,
    machine,
    package_versions,
    run_header,
    stat,
    write_result,
)
from benchmarks.harness.sampler import PeakRss
from benchmarks.harness.stack import connect_root, env, redact, s3_client

SAMPLE_S = 0.05

TARGETS = {
    "rows_per_s_vs_operator": 4.0,  # ours >= 4x the operator's rows/s
    "peak_rss_vs_operator_large": 1 / 8,  # ours <= 1/8 of the operator's peak RSS at the largest size
    "peak_rss_growth": 1.15,  # ours at the largest size <= 1.15x ours at the smallest
    "wall_vs_mysql_floor": 2.0,  # ours <= 2x the raw mysql client's wall time
}


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    kind: str  # "python": benchmarks.contenders child; "mysql": client to /dev/null; "outfile": server only
    writes_s3: bool


CONTENDERS = {
    c.key: c for c in (
        Contender("ours", "ours (ConnectorX)", "python", True),
        Contender("ours-mysqlclient", "ours (mysqlclient)", "python", True),
        Contender("operator", "SqlToS3Operator (parquet)", "python", True),
        Contender("mysql", "mysql --quick --batch > /dev/null", "mysql", False),
        Contender("outfile", "SELECT ... INTO OUTFILE (server only)", "outfile", False),
    )
}


# ----------------------------------------------------------------------------------------------- services
def mysql_client_cmd(user: str, database: str, sql: str) -> list[str]:
    return [shutil.which("mysql") or "mysql", "--no-defaults", "-h", env("MYSQL_HOST", "127.0.0.1"),
            "-P", env("MYSQL_PORT"), "-u", user, "--quick", "--batch", "-e", sql, database]


def warm_up(database: str) -> dict:
    """One discarded full scan through the mysql client (also measures the result's text size),
    and one import of everything the Python contenders import."""
    from include.extract.schema_drift import select_sql
    from lakehouse_jobs.contracts import MEMBER

    client_env = dict(os.environ, MYSQL_PWD=env("MYSQL_EXTRACT_PASSWORD"))
    started = time.perf_counter()
    proc = subprocess.Popen(mysql_client_cmd(env("MYSQL_EXTRACT_USER"), database, select_sql(MEMBER)),
                            env=client_env, stdout=subprocess.PIPE)
    text_bytes = 0
    while chunk := proc.stdout.read(1 << 20):
        text_bytes += len(chunk)
    if proc.wait():
        raise RuntimeError("warm-up scan failed")
    scan_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "benchmarks.contenders", "warm",
                        "--result", f"{tmp}/warm.json"], cwd=REPO, check=True)
    return {"warmup_scan_s": round(scan_s, 2), "mysql_text_bytes": text_bytes}


# -------------------------------------------------------------------------------------------------- runs
class Bench:
    def __init__(self, bucket: str, tmp: Path, stamp: str):
        self.bucket, self.tmp, self.stamp = bucket, tmp, stamp
        self.s3 = s3_client()
        try:
            self.s3.create_bucket(Bucket=bucket)
        except (self.s3.exceptions.BucketAlreadyOwnedByYou, self.s3.exceptions.BucketAlreadyExists):
            pass
        self.find_servers()

    def find_servers(self) -> None:
        # looked up before every run: someone else may restart the shared stack meanwhile
        self.mariadb_pid = find_server("mariadbd", f"--port={env('MYSQL_PORT')}")
        self.minio_pid = find_server("minio", "server", env("S3_ENDPOINT_URL").split("//", 1)[1])

    def command(self, c: Contender, database: str, batch: str, result: Path) -> tuple[list[str], dict]:
        from include.extract.schema_drift import select_sql
        from lakehouse_jobs.contracts import MEMBER

        if c.kind == "python":
            return ([sys.executable, "-m", "benchmarks.contenders", c.key, "--database", database,
                     "--bucket", self.bucket, "--batch", batch, "--result", str(result)], dict(os.environ))
        if c.kind == "mysql":
            return (mysql_client_cmd(env("MYSQL_EXTRACT_USER"), database, select_sql(MEMBER)),
                    dict(os.environ, MYSQL_PWD=env("MYSQL_EXTRACT_PASSWORD")))
        if c.kind == "outfile":
            sql = f"{select_sql(MEMBER)} INTO OUTFILE '{self.outfile(batch)}'"
            return (mysql_client_cmd("root", database, sql),
                    dict(os.environ, MYSQL_PWD=env("MYSQL_ROOT_PASSWORD")))
        raise ValueError(c.kind)

    def outfile(self, batch: str) -> Path:
        return self.tmp / "outfile" / f"{batch}.tsv"

    def run(self, c: Contender, size: dict, repeat: int, position: int) -> dict:
        batch = f"bench-{self.stamp}-{c.key}-{size['rows']}-r{repeat}"
        result_path = self.tmp / f"{batch}.json"
        log_path = self.tmp / f"{batch}.log"
        cmd, child_env = self.command(c, size["database"], batch, result_path)
        self.find_servers()
        before = self._counters()
        with open(log_path, "wb") as log:
            started = time.perf_counter()
            stdout = log if c.kind == "python" else subprocess.DEVNULL  # the mysql floor writes to /dev/null
            proc = subprocess.Popen(cmd, cwd=REPO, env=child_env, stdout=stdout, stderr=log)
            with PeakRss(proc.pid, SAMPLE_S) as sampler:
                _, status, usage = os.wait4(proc.pid, 0)
                wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        after = self._counters()
        if proc.returncode:
            tail = redact(log_path.read_text(errors="replace")[-3000:])
            raise RuntimeError(f"{c.label} failed (exit {proc.returncode}):\n{tail}")
        child = json.loads(result_path.read_text()) if c.kind == "python" else {}
        out = self.collect_output(c, batch)
        rows = out.pop("rows_verified")
        if rows is not None and rows != size["rows"]:
            raise RuntimeError(f"{c.label} wrote {rows} rows, the table has {size['rows']}")
        cpu_child = usage.ru_utime + usage.ru_stime
        delta = {k: None if before[k] is None or after[k] is None else after[k] - before[k] for k in before}
        other = None
        if None not in (delta["busy"], delta["mariadb"], delta["minio"]):
            other = delta["busy"] - cpu_child - delta["mariadb"] - delta["minio"] - delta["self"]
        run = {
            "contender": c.key, "rows": size["rows"], "repeat": repeat, "position": position,
            "wall_s": round(wall, 3),
            "work_s": round(child["work_s"], 3) if "work_s" in child else round(wall, 3),
            "import_s": round(child["import_s"], 3) if "import_s" in child else 0.0,
            "rows_per_s": round(size["rows"] / wall),
            "peak_rss_tree_mib": round(sampler.peak_kib / 1024, 1),
            "max_rss_kernel_mib": round(usage.ru_maxrss / 1024, 1),
            "rss_samples": sampler.samples, "max_processes": sampler.max_procs,
            **out,
            "rows_verified": rows is not None,
            "cpu_child_s": round(cpu_child, 2),
            "cpu_mariadb_s": _r(delta["mariadb"]), "cpu_minio_s": _r(delta["minio"]),
            "cpu_other_processes_s": _r(other), "steal_s": _r(delta["steal"]),
            "loadavg_before": before["load"], "mariadb_pid": self.mariadb_pid,
        }
        return run

    def _counters(self) -> dict:
        busy, steal = system_cpu()
        me = resource.getrusage(resource.RUSAGE_SELF)
        return {"busy": busy, "steal": steal, "self": me.ru_utime + me.ru_stime, "load": loadavg(),
                "mariadb": cpu_seconds(self.mariadb_pid), "minio": cpu_seconds(self.minio_pid)}

    def collect_output(self, c: Contender, batch: str) -> dict:
        """Bytes written (sum of object sizes, or the OUTFILE), rows read back from Parquet footers; then
        delete the output so the next run starts from the same state."""
        if c.kind == "outfile":
            path = self.outfile(batch)
            size = path.stat().st_size
            path.unlink()
            return {"output_bytes": size, "output_objects": 1, "rows_verified": None}
        if not c.writes_s3:
            return {"output_bytes": None, "output_objects": 0, "rows_verified": None}
        import pyarrow.parquet as pq

        prefix = f"member/{batch}/"
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        objects = [o for page in pages for o in page.get("Contents", [])]
        rows = 0
        for o in objects:
            if o["Key"].endswith(".parquet"):
                rows += pq.read_metadata(self._s3fs().open_input_file(f"{self.bucket}/{o['Key']}")).num_rows
        for o in objects:
            self.s3.delete_object(Bucket=self.bucket, Key=o["Key"])
        return {"output_bytes": sum(o["Size"] for o in objects), "output_objects": len(objects),
                "rows_verified": rows}

    def _s3fs(self):
        from pyarrow import fs

        scheme, hostport = env("S3_ENDPOINT_URL").split("://", 1)
        return fs.S3FileSystem(access_key=env("S3_ACCESS_KEY_ID"), secret_key=env("S3_SECRET_ACCESS_KEY"),
                               endpoint_override=hostport, scheme=scheme,
                               region=env("S3_REGION", "us-east-1"))


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


# ---------------------------------------------------------------------------------------- summary, report
def summarize(runs: list[dict], sizes: list[int], contenders: list[str]) -> dict:
    summary: dict = {}
    for rows in sizes:
        summary[str(rows)] = {}
        for key in contenders:
            mine = [r for r in runs if r["rows"] == rows and r["contender"] == key]
            if not mine:
                continue
            summary[str(rows)][key] = {
                "runs": len(mine),
                **{f: stat([r[f] for r in mine]) for f in (
                    "wall_s", "work_s", "import_s", "rows_per_s", "peak_rss_tree_mib", "max_rss_kernel_mib",
                    "output_bytes", "cpu_child_s", "cpu_mariadb_s", "cpu_minio_s", "cpu_other_processes_s")},
                "rows_per_s_work": statistics.median(rows / r["work_s"] for r in mine),
            }
    return summary


def evaluate_targets(summary: dict, sizes: list[int]) -> list[dict]:
    """The issue's targets, as ratios of medians measured in this run."""
    def med(rows, key, field):
        entry = summary.get(str(rows), {}).get(key)
        return entry[field]["median"] if entry and entry.get(field) else None

    targets = []
    for rows in sizes:
        ours, op = med(rows, "ours", "rows_per_s"), med(rows, "operator", "rows_per_s")
        if ours and op:
            by = summary[str(rows)]
            work = by["ours"]["rows_per_s_work"] / by["operator"]["rows_per_s_work"]
            targets.append({"target": f"rows/s vs SqlToS3Operator, {rows:,} rows", "ratio": ours / op,
                            "goal": f">= {TARGETS['rows_per_s_vs_operator']:g}x",
                            "met": ours / op >= TARGETS["rows_per_s_vs_operator"],
                            "ratio_in_process": work,
                            "note": "whole process; in-process work time only: %.2fx" % work})
    large, small = max(sizes), min(sizes)
    ours_l, op_l = med(large, "ours", "peak_rss_tree_mib"), med(large, "operator", "peak_rss_tree_mib")
    if ours_l and op_l:
        targets.append({"target": f"peak RSS vs SqlToS3Operator, {large:,} rows", "ratio": ours_l / op_l,
                        "goal": "<= 1/8 (0.125)",
                        "met": ours_l / op_l <= TARGETS["peak_rss_vs_operator_large"],
                        "note": f"{ours_l:.0f} MiB vs {op_l:.0f} MiB (1/{op_l / ours_l:.1f})"})
    ours_s = med(small, "ours", "peak_rss_tree_mib")
    if large != small and ours_l and ours_s:
        growth = ours_l / ours_s
        targets.append({"target": f"our peak RSS at {large:,} vs {small:,} rows", "ratio": growth,
                        "goal": f"<= {TARGETS['peak_rss_growth']:g}x",
                        "met": growth <= TARGETS["peak_rss_growth"],
                        "note": f"{ours_l:.0f} MiB vs {ours_s:.0f} MiB"})
    for rows in sizes:
        ours, floor = med(rows, "ours", "wall_s"), med(rows, "mysql", "wall_s")
        if ours and floor:
            targets.append({"target": f"wall time vs raw mysql floor, {rows:,} rows", "ratio": ours / floor,
                            "goal": f"<= {TARGETS['wall_vs_mysql_floor']:g}x",
                            "met": ours / floor <= TARGETS["wall_vs_mysql_floor"],
                            "note": f"{ours:.2f} s vs {floor:.2f} s"})
    return targets


def versions() -> dict:
    out = package_versions("pyarrow", "connectorx", "mysqlclient", "pandas", "boto3", "apache-airflow",
                           "apache-airflow-providers-amazon", "apache-airflow-providers-mysql",
                           "apache-airflow-providers-common-sql")
    conn = connect_root()
    cur = conn.cursor()
    cur.execute("SELECT VERSION(), @@innodb_buffer_pool_size, @@innodb_flush_method")
    out["mariadb"], pool, flush = cur.fetchone()
    conn.close()
    client = subprocess.run(["mysql", "--version"], capture_output=True, text=True)
    out["mysql_client"] = client.stdout.strip()
    minio = find_server("minio", "server")
    if minio:
        with open(f"/proc/{minio}/cmdline", "rb") as f:
            out["minio"] = Path(f.read().split(b"\0")[0].decode()).name
    out["server_settings"] = {"innodb_buffer_pool_size": int(pool), "innodb_flush_method": flush}
    return out


def markdown(report: dict) -> str:
    m, v = report["machine"], report["versions"]
    server = v["server_settings"]
    lines = [
        f"# Extract benchmark, {report['date']}",
        "",
        f"Produced by `{report['command']}` ({report['duration_s'] / 60:.1f} min). "
        "Method and how to read it: [benchmarks/README.md](../README.md). Each contender ran "
        f"{report['repeats']} time(s) per size, interleaved (each repeat rotates the order), "
        "after one discarded warm-up scan; figures are the median with (min–max).",
        "",
        f"- Machine: {m['cpu_model']}, {m['nproc']} CPUs, {m['memory_gib']} GiB RAM, Linux {m['kernel']}; "
        "MariaDB, MinIO and the contender share the machine.",
        f"- Shared machine: load average (1 min) {report['load']['before']:.2f} before, "
        f"{report['load']['after']:.2f} after; other processes used a median "
        f"{report['load']['other_cpu_share_median']:.0%} of the machine's CPU during the measured runs "
        f"(max {report['load']['other_cpu_share_max']:.0%}).",
        f"- Versions: Python {v['python']}, pyarrow {v['pyarrow']}, connectorx {v['connectorx']}, "
        f"mysqlclient {v['mysqlclient']}, pandas {v['pandas']}, boto3 {v['boto3']}, "
        f"Airflow {v['apache-airflow']}, "
        f"amazon provider {v['apache-airflow-providers-amazon']}, mysql provider "
        f"{v['apache-airflow-providers-mysql']}, common-sql {v['apache-airflow-providers-common-sql']}; "
        f"MariaDB {v['mariadb']} (InnoDB buffer pool {server['innodb_buffer_pool_size'] // MiB} MiB, "
        f"{server['innodb_flush_method']}); client `{v['mysql_client']}`; {v.get('minio', 'MinIO')}.",
        "",
        *TARGETS_TABLE,
    ]
    for t in report["targets"]:
        met = "met" if t["met"] else "**not met**"
        lines.append(f"| {t['target']} | {t['ratio']:.2f}x | {t['goal']} | {met} | {t['note']} |")
    for size in report["sizes"]:
        rows = size["rows"]
        lines += [
            "",
            f"## {rows:,} rows",
            "",
            f"Table `{size['database']}.member`: {size['innodb_data_bytes'] / MiB:.0f} MiB of InnoDB data; "
            f"the mysql client's text output is {size['mysql_text_bytes'] / MiB:.0f} MiB.",
            "",
            "| contender | wall s | rows/s | in-process s | peak RSS, tree (MiB) | output bytes "
            "| CPU s: client / mariadbd / minio |",
            "|---|---|---|---|---|---|---|",
        ]
        for key, s in report["summary"][str(rows)].items():
            label = CONTENDERS[key].label
            cpu = " / ".join(fmt_stat(s[f], "{:.1f}", spread=False)
                             for f in ("cpu_child_s", "cpu_mariadb_s", "cpu_minio_s"))
            rss = "server side" if key == "outfile" else fmt_stat(s["peak_rss_tree_mib"], "{:.0f}")
            out = "– (/dev/null)"
            if s["output_bytes"]:
                out = fmt_stat(s["output_bytes"], "{:,.0f}", spread=False)
            work = fmt_stat(s["work_s"]) if CONTENDERS[key].kind == "python" else "–"
            lines.append(f"| {label} | {fmt_stat(s['wall_s'])} | {s['rows_per_s']['median']:,.0f} | {work} "
                         f"| {rss} | {out} | {cpu} |")
    lines += [
        "",
        "## Every run, in execution order",
        "",
        "| rows | repeat | # | contender | wall s | in-process s | peak RSS MiB "
        "| CPU s client / mariadbd / minio / other | load before |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        cpu = " / ".join("–" if r[f] is None else f"{r[f]:.1f}" for f in
                         ("cpu_child_s", "cpu_mariadb_s", "cpu_minio_s", "cpu_other_processes_s"))
        label = CONTENDERS[r["contender"]].label
        lines.append(f"| {r['rows']:,} | {r['repeat']} | {r['position']} | {label} "
                     f"| {r['wall_s']:.2f} | {r['work_s']:.2f} | {r['peak_rss_tree_mib']:.0f} | {cpu} "
                     f"| {r['loadavg_before']:.2f} |")
    lines += ["", "Peak RSS of `INTO OUTFILE` is the mysql client only: the work happens inside mariadbd, "
              "whose memory is not part of any contender's tree.", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the member extract against SqlToS3Operator and "
                                                 "the raw mysql client (see benchmarks/README.md).")
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 100K rows, once; saves only with --out")
    parser.add_argument("--contenders", nargs="+", choices=list(CONTENDERS), default=list(CONTENDERS))
    parser.add_argument("--database-prefix", default="bench", help="scratch databases <prefix>_<rows>")
    parser.add_argument("--bucket", default="bench", help="scratch bucket (created if missing)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path,
                        help=f"results directory (default {RESULTS_DIR.relative_to(REPO)}; "
                             "none with --quick)")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="only rewrite the Markdown table of a saved JSON result, next to it")
    args = parser.parse_args(argv)
    if args.render:
        args.render.with_suffix(".md").write_text(markdown(json.loads(args.render.read_text())))
        return 0
    if args.quick:
        args.rows, args.repeats = [100_000], 1
    out_dir = args.out if args.out else (None if args.quick else RESULTS_DIR)
    sizes = sorted(set(args.rows))
    contenders = [CONTENDERS[k] for k in args.contenders]

    started_at = dt.datetime.now(dt.timezone.utc)
    stamp = started_at.strftime("%Y%m%dT%H%M%S")
    t0 = time.monotonic()
    load_before = loadavg()
    print(f"extract benchmark: rows {sizes}, {args.repeats} repeat(s), "
          f"contenders {[c.key for c in contenders]}; load average {load_before:.2f}", flush=True)
    runs: list[dict] = []
    size_info: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="extract-bench-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "outfile").mkdir()
        os.chmod(tmp_path / "outfile", 0o777)  # mariadbd writes the OUTFILE
        bench = Bench(args.bucket, tmp_path, stamp)
        for rows in sizes:
            print(f"{rows:,} rows:", flush=True)
            info = ensure_table(rows, f"{args.database_prefix}_{rows}", args.seed)
            info.update(warm_up(info["database"]))
            size_info.append(info)
            for repeat in range(1, args.repeats + 1):
                shift = (repeat - 1) % len(contenders)
                order = contenders[shift:] + contenders[:shift]
                for position, c in enumerate(order, 1):
                    run = bench.run(c, info, repeat, position)
                    runs.append(run)
                    print(f"  r{repeat} {c.label:<40} {run['wall_s']:7.2f} s  "
                          f"{run['rows_per_s']:>10,} rows/s  peak RSS {run['peak_rss_tree_mib']:7.0f} MiB  "
                          f"out {run['output_bytes'] or 0:>12,} B", flush=True)
    duration = time.monotonic() - t0

    shares = [r["cpu_other_processes_s"] / (r["wall_s"] * os.cpu_count()) for r in runs
              if r["cpu_other_processes_s"] is not None]
    summary = summarize(runs, sizes, [c.key for c in contenders])
    report = {
        **run_header("extract", started_at, duration, "benchmarks.extract_bench", argv),
        "repeats": args.repeats,
        "machine": machine(),
        "versions": versions(),
        "load": load_facts(load_before, shares),
        "contenders": {c.key: c.label for c in contenders},
        "sizes": size_info,
        "targets": evaluate_targets(summary, sizes),
        "summary": summary,
        "runs": runs,
    }
    text = markdown(report)
    print("\n" + text)
    if out_dir:
        write_result(out_dir, "extract", report, text)
    print(f"took {duration / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
