"""Member daily benchmark (issue 11): the daily run through the DAG, the Spark job alone, dlt and a notebook.

    dev/stack.sh run python -m benchmarks.member_daily_bench --members 1000000 5000000 --repeats 3
    dev/stack.sh run python -m benchmarks.member_daily_bench --quick     # 20,000 members, once, saves nothing
    python -m benchmarks.member_daily_bench --render benchmarks/results/member-daily-<date>.json

On the running local stack (MariaDB, MinIO, the Databricks runner; `make daily-bench` starts it), for each
size, side by side in one run, each contender does a day's three loads of the same MySQL `member` table:
`first` (state A into a fresh, empty target), `replay` (A again, unchanged) and `change` (state B: A with
the email and address of 5% of the members changed). Contenders, interleaved (each repeat rotates their
order; the source is put back to A between them):

- dag: this project's daily run, `member_pipeline` triggered through the Airflow REST API of an Airflow of
  the benchmark's own (same code, same settings as the stack's, but its connection `mysql_members` names
  the scratch database and its buckets are the benchmark's: see PrivateAirflow);
- job: the same extract (`python -m include.extract`) in a child process, then the same run JSON
  (include/databricks_runs.member_merge_run) sent to the runner's runs/submit, polled to its end: no Airflow;
- dlt: dlt `sql_table(backend="connectorx")` merging into a Delta table on the same MinIO
  (benchmarks/dlt_contender.py, in the venv .local/bench-venv from requirements/bench.lock);
- notebook: `spark.read.jdbc` in partitions, then a Delta MERGE, with spark-submit in local[2] with the
  job's driver memory (benchmarks/notebook_contender.py).

Measured per load: wall time, rows/s, peak RSS of the contender's whole process tree (and of the Databricks
run's own tree: the runner's spark-submit, its JVM and Python workers), CPU seconds by process kind,
mariadbd's and MinIO's CPU, everyone else's, and what limits it. Checked after every load (exit status 1 if
any check fails; the targets are only reported): see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmarks.extract_bench import cpu_seconds, find_server, fmt_stat, loadavg, machine, system_cpu

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"
STATE = Path(os.environ.get("LAKEHOUSE_STATE", REPO / ".local"))
CACHE = Path(os.environ.get("LAKEHOUSE_CACHE", Path.home() / ".cache" / "lakehouse-ref"))
BENCH_VENV = STATE / "bench-venv"
BENCH_LOCK = REPO / "requirements" / "bench.lock"
JDBC_ARTIFACT = "com.mysql:mysql-connector-j:26.10.0"
JDBC_JAR = CACHE / "bench-jars" / "mysql-connector-j-26.10.0.jar"
SEED = 42
SEED_TODAY = dt.date(2026, 1, 1)  # the extract benchmark's: the same generated table every day
CHANGE_SHARE = 0.05
SAMPLE_S = 0.25
MiB = 1024 * 1024
DAG_ID = "member_pipeline"
STEPS = ("first", "replay", "change")
STEP_LABELS = {"first": "first load (A)", "replay": "unchanged replay (A)", "change": "5% change (B)"}
JOB_TABLES = ("member", "dim_member", "member_quarantine", "member_batches")
STEP_LINE = re.compile(r"lakehouse_jobs\.member_merge: step (\w+): ([0-9.]+) s")

CONTENDERS = {
    "dag": "ours: daily run through the DAG (Airflow)",
    "job": "ours: extract + Spark job, no Airflow",
    "dlt": "dlt sql_table (ConnectorX) -> Delta merge",
    "notebook": "notebook: spark.read.jdbc + Delta MERGE",
}
# the targets: ours (through the DAG) as a ratio to dlt in the same run at the largest size
TARGETS_VS_DLT = {"replay": 2.0, "change": 3.0, "first": 5.0}
JOB_PEAK_GIB = 4.0
AIRFLOW_SHARE = 0.10


# ------------------------------------------------------------------------------------------- environment
def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        sys.exit(f"{name} is not set: run through the stack, "
                 "e.g. `dev/stack.sh run python -m benchmarks.member_daily_bench --quick`")
    return value


def mysql_url(database: str, scheme: str = "mysql", query: str = "") -> str:
    auth = f"{quote(env('MYSQL_EXTRACT_USER'), safe='')}:{quote(env('MYSQL_EXTRACT_PASSWORD'), safe='')}"
    return f"{scheme}://{auth}@{env('MYSQL_HOST', '127.0.0.1')}:{env('MYSQL_PORT')}/{database}{query}"


def s3_client():
    import boto3

    return boto3.client("s3", endpoint_url=env("S3_ENDPOINT_URL"), region_name=env("S3_REGION", "us-east-1"),
                        aws_access_key_id=env("S3_ACCESS_KEY_ID"), aws_secret_access_key=env("S3_SECRET_ACCESS_KEY"))


def redact(text: str) -> str:
    for name in ("MYSQL_EXTRACT_PASSWORD", "MYSQL_ROOT_PASSWORD", "S3_SECRET_ACCESS_KEY", "DATABRICKS_TOKEN",
                 "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_METADATA_PASSWORD", "LAKEHOUSE_PII_HMAC_KEY",
                 "LAKEHOUSE_PII_ENCRYPTION_KEY"):
        if os.environ.get(name):
            text = text.replace(os.environ[name], "***")
    return text


def log_tail(path: Path, limit: int = 3000) -> str:
    try:
        return redact(path.read_text(errors="replace")[-limit:])
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------- /proc sampling
_CLK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_table() -> dict[int, tuple[int, str, float, int, int]]:
    """{pid: (ppid, comm, cpu seconds, rss bytes, start ticks)} of every process, from /proc/<pid>/stat."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        close = data.rindex(b")")
        comm = data[data.index(b"(") + 1:close].decode(errors="replace")
        fields = data[close + 2:].split()
        table[int(entry.name)] = (int(fields[1]), comm, (int(fields[11]) + int(fields[12])) / _CLK,
                                  int(fields[21]) * _PAGE, int(fields[19]))
    return table


def tree(table: dict, roots: list[int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, row in table.items():
        children.setdefault(row[0], []).append(pid)
    found, todo = [], [r for r in roots if r in table]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


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


def _boot_ticks_now() -> float:
    with open("/proc/uptime") as f:
        return float(f.read().split()[0]) * _CLK


class Probe(threading.Thread):
    """Samples, every SAMPLE_S, the RSS and CPU of process trees: named groups of root pids (the contender's
    child, the benchmark's Airflow) and every task process tree below the Databricks runner (each task's
    uv or spark-submit is a child of the runner in a session of its own; its working directory is the task
    run's folder, so a tree is attributed to a task run exactly, whoever else submits runs meanwhile).

    CPU: each process's utime+stime when last seen, minus its value at the start for processes that were
    already running (pids born during the step count from zero); a process that lives less than one sample
    period is missed. mariadbd's and MinIO's CPU, and the machine's busy time, are counted from start to end.
    """

    def __init__(self, groups: dict[str, list[int]], runner_pid: int | None, servers: dict[str, int | None]):
        super().__init__(daemon=True)
        self.groups, self.runner_pid, self.servers = groups, runner_pid, servers
        self.samples: list[tuple[float, dict[str, int], dict[int, int]]] = []
        self.first: dict[int, float] = {}
        self.last: dict[int, tuple[float, str, str]] = {}  # pid -> (cpu, group, kind)
        self.leader_cwd: dict[int, str] = {}
        self._done = threading.Event()

    def sample(self) -> None:
        table = proc_table()
        t = time.monotonic()
        rss: dict[str, int] = {}
        seen: set[int] = set()
        for group, roots in list(self.groups.items()):  # in order: a process belongs to the first group it is in
            pids = [p for p in tree(table, roots) if p not in seen]
            seen.update(pids)
            rss[group] = sum(table[p][3] for p in pids)
            for p in pids:
                self._cpu(p, table[p], group)
        leaders: dict[int, int] = {}
        if self.runner_pid:
            for leader in [p for p, row in table.items() if row[0] == self.runner_pid]:
                if leader not in self.leader_cwd:
                    try:
                        self.leader_cwd[leader] = os.readlink(f"/proc/{leader}/cwd")
                    except OSError:
                        continue
                pids = tree(table, [leader])
                leaders[leader] = sum(table[p][3] for p in pids)
                for p in pids:
                    self._cpu(p, table[p], f"leader:{leader}")
        self.samples.append((t, rss, leaders))

    def _cpu(self, pid: int, row: tuple, group: str) -> None:
        if pid not in self.last and pid not in self.first:
            self.first[pid] = row[2] if row[4] < self.start_ticks else 0.0
        self.last[pid] = (row[2], group, kind_of(row[1]))

    def __enter__(self) -> Probe:
        self.start_ticks = _boot_ticks_now()
        self.busy0 = system_cpu()[0]
        self.server0 = {k: cpu_seconds(p) for k, p in self.servers.items()}
        self.t0 = time.monotonic()
        self.sample()
        self.start()
        return self

    def run(self) -> None:
        while not self._done.wait(SAMPLE_S):
            self.sample()

    def __exit__(self, *exc) -> None:
        self._done.set()
        self.join()
        self.sample()
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

    def cpu_all_sampled(self) -> float:
        return sum(max(cpu - self.first.get(pid, 0.0), 0.0) for pid, (cpu, _, _) in self.last.items())


def _start_ticks(pid: int) -> str | None:
    """The kernel's start time of a process (/proc/<pid>/stat field 22): with the pid, an identity."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


# ------------------------------------------------------------------------------------------------ MySQL
def connect_root(database: str = ""):
    import MySQLdb

    conn = MySQLdb.connect(host=env("MYSQL_HOST", "127.0.0.1"), port=int(env("MYSQL_PORT")), user="root",
                           password=env("MYSQL_ROOT_PASSWORD"), database=database, charset="utf8mb4", local_infile=1)
    conn.autocommit(True)
    return conn


def _hash(expr: str) -> str:
    """A 60-bit number from the MD5 of a text: summed over rows, an order-free checksum of a set."""
    return f"CAST(CONV(SUBSTRING(MD5({expr}), 1, 15), 16, 10) AS UNSIGNED)"


def mysql_row_text(alias: str = "") -> str:
    """Every contract column of a row as one text (NULL as \\N, dates as YYYY-MM-DD), as Spark renders it in
    Checker.row_text: the same bytes, hence the same MD5, on both sides."""
    from lakehouse_jobs.contracts import MEMBER

    p = f"{alias}." if alias else ""
    parts = [f"IFNULL(DATE_FORMAT({p}{c.name}, '%Y-%m-%d'), '\\\\N')" if c.type == "date"
             else f"IFNULL({p}{c.name}, '\\\\N')" for c in MEMBER.columns]
    return f"CONCAT_WS(CHAR(31 USING utf8mb4), {', '.join(parts)})"


class Source:
    """The scratch source every contender reads: `bench_daily.member`, which is, by an atomic RENAME TABLE,
    one of the tables parked in `bench_daily_store`: m<N>_a (N generated members, dev/seed_members.py's
    generator with the extract benchmark's seed and day) or m<N>_b (the same with the email and address of
    5% of them changed; their ids in m<N>_changes). The live table's comment says which it is. The extract
    user has SELECT on `bench_daily.member` (a grant by name, which follows the name, not the table)."""

    def __init__(self, seed: int, prefix: str = "bench_daily"):
        self.seed = seed
        self.live_db, self.store_db, self.seed_db = prefix, f"{prefix}_store", f"{prefix}_seed"
        self.expected: dict[tuple[int, str], dict] = {}

    def tag(self, rows: int, state: str) -> str:
        return f"member_daily_bench seed={self.seed} rows={rows} today={SEED_TODAY} state={state}"

    def _comment(self, cur, db: str, table: str) -> str | None:
        cur.execute("SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s",
                    (db, table))
        row = cur.fetchone()
        return None if row is None else row[0]

    def live(self, cur) -> tuple[int, str] | None:
        comment = self._comment(cur, self.live_db, "member")
        m = re.search(r"rows=(\d+) .*state=([AB])", comment or "")
        if comment is not None and not (m and comment == self.tag(int(m[1]), m[2])):
            raise RuntimeError(f"{self.live_db}.member is not a table of this benchmark (comment {comment!r}); "
                               "drop it or move it away")
        return (int(m[1]), m[2]) if m else None

    def _have(self, cur, rows: int, state: str) -> bool:
        return (self.live(cur) == (rows, state)
                or self._comment(cur, self.store_db, f"m{rows}_{state.lower()}") == self.tag(rows, state))

    def ensure(self, rows: int) -> dict:
        """Both states of `rows` members exist (seeded the first time), and A is live. Returns facts."""
        from benchmarks.extract_bench import ensure_table

        conn = connect_root()
        cur = conn.cursor()
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {self.live_db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {self.store_db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        seeded = {}
        changed = round(rows * CHANGE_SHARE)
        if not self._have(cur, rows, "A"):
            print(f"  seeding {rows:,} members (state A) ...", flush=True)
            started = time.monotonic()
            self._park_live(cur)
            cur.execute(f"DROP TABLE IF EXISTS {self.store_db}.m{rows}_a, {self.store_db}.m{rows}_b, "
                        f"{self.store_db}.m{rows}_changes")
            ensure_table(rows, self.seed_db, self.seed)  # dev/seed_members.py's generator, as the extract benchmark
            cur.execute(f"RENAME TABLE {self.seed_db}.member TO {self.store_db}.m{rows}_a")
            cur.execute(f"ALTER TABLE {self.store_db}.m{rows}_a COMMENT = %s", (self.tag(rows, "A"),))
            seeded["a_s"] = round(time.monotonic() - started, 1)
        if not self._have(cur, rows, "B"):
            print(f"  deriving state B: {changed:,} members with a new email and address ...", flush=True)
            started = time.monotonic()
            self.switch(rows, "A")
            a = f"{self.live_db}.member"
            cur.execute(f"DROP TABLE IF EXISTS {self.store_db}.m{rows}_b, {self.store_db}.m{rows}_changes")
            cur.execute(f"CREATE TABLE {self.store_db}.m{rows}_changes (member_id VARCHAR(36) NOT NULL PRIMARY KEY)")
            cur.execute(f"INSERT INTO {self.store_db}.m{rows}_changes SELECT member_id FROM {a} "
                        f"ORDER BY MD5(CONCAT(member_id, %s)), member_id LIMIT {changed}", (str(self.seed),))
            cur.execute(f"CREATE TABLE {self.store_db}.m{rows}_b LIKE {a}")
            cur.execute(
                f"INSERT INTO {self.store_db}.m{rows}_b SELECT a.member_id, a.first_name, a.last_name, "
                "IF(c.member_id IS NULL, a.email, CONCAT('moved.', a.email)), a.phone_number, "
                "IF(c.member_id IS NULL, a.address, CONCAT('Flat 2, ', a.address)), a.city, a.country, "
                f"a.registration_date FROM {a} a LEFT JOIN {self.store_db}.m{rows}_changes c USING (member_id)")
            cur.execute(f"ALTER TABLE {self.store_db}.m{rows}_b COMMENT = %s", (self.tag(rows, "B"),))
            seeded["b_s"] = round(time.monotonic() - started, 1)
        self.switch(rows, "A")
        cur.execute(f"SELECT COUNT(*) FROM {self.store_db}.m{rows}_changes")
        changed = cur.fetchone()[0]
        cur.execute("SELECT DATA_LENGTH FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s AND TABLE_NAME='member'",
                    (self.live_db,))
        data_bytes = int(cur.fetchone()[0])
        conn.close()
        return {"rows": rows, "changed": changed, "seeded_s": seeded or None, "innodb_data_bytes": data_bytes}

    def _park_live(self, cur) -> None:
        live = self.live(cur)
        if live:
            cur.execute(f"RENAME TABLE {self.live_db}.member TO {self.store_db}.m{live[0]}_{live[1].lower()}")

    def switch(self, rows: int, state: str) -> None:
        """Make m<rows>_<state> the live table: one RENAME TABLE, atomic for every reader."""
        conn = connect_root()
        cur = conn.cursor()
        live = self.live(cur)
        if live != (rows, state):
            renames = []
            if live:
                renames.append(f"{self.live_db}.member TO {self.store_db}.m{live[0]}_{live[1].lower()}")
            renames.append(f"{self.store_db}.m{rows}_{state.lower()} TO {self.live_db}.member")
            cur.execute("RENAME TABLE " + ", ".join(renames))
        cur.execute(f"GRANT SELECT ON {self.live_db}.member TO %s@'%%'", (env("MYSQL_EXTRACT_USER"),))
        conn.close()

    def facts(self, rows: int, state: str) -> dict:
        """Checksums of the live table in `state`: rows, the member_id set, every row's values, the values of
        the changed members' rows (computed once per run)."""
        key = (rows, state)
        if key not in self.expected:
            self.switch(rows, state)
            conn = connect_root()
            cur = conn.cursor()
            cur.execute(f"SELECT COUNT(*), COUNT(DISTINCT member_id), SUM({_hash('member_id')}), "
                        f"SUM({_hash(mysql_row_text())}) FROM {self.live_db}.member")
            count, distinct, ids, values = cur.fetchone()
            cur.execute(f"SELECT COUNT(*), SUM({_hash(mysql_row_text('m'))}) FROM {self.live_db}.member m "
                        f"JOIN {self.store_db}.m{rows}_changes c USING (member_id)")
            changed, changed_values = cur.fetchone()
            conn.close()
            self.expected[key] = {"rows": int(count), "distinct": int(distinct), "id_sum": int(ids),
                                  "value_sum": int(values), "changed_rows": int(changed),
                                  "changed_value_sum": int(changed_values or 0)}
        return self.expected[key]

    def changed_ids(self, rows: int) -> list[str]:
        conn = connect_root()
        cur = conn.cursor()
        cur.execute(f"SELECT member_id FROM {self.store_db}.m{rows}_changes")
        ids = [r[0] for r in cur.fetchall()]
        conn.close()
        return ids


# --------------------------------------------------------------------------------------------------- S3
class Store:
    """The benchmark's buckets: <prefix>-landing (the extract's batches) and <prefix>-lakehouse (our Delta
    tables under delta/, dlt's under dlt/, the notebook's under notebook/)."""

    def __init__(self, prefix: str):
        self.s3 = s3_client()
        self.landing, self.lakehouse = f"{prefix}-landing", f"{prefix}-lakehouse"
        for bucket in (self.landing, self.lakehouse):
            try:
                self.s3.create_bucket(Bucket=bucket)
            except (self.s3.exceptions.BucketAlreadyOwnedByYou, self.s3.exceptions.BucketAlreadyExists):
                pass

    def delete(self, bucket: str, prefix: str) -> None:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        for page in self.s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
            for up in page.get("Uploads", []):
                self.s3.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])

    def versions(self, table_key: str) -> list[int]:
        out = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.lakehouse, Prefix=f"{table_key}/_delta_log/"):
            for o in page.get("Contents", []):
                name = o["Key"].rsplit("/", 1)[1]
                if name.endswith(".json") and name[:-5].isdigit():
                    out.append(int(name[:-5]))
        return sorted(out)

    def commits(self, table_key: str, after: int | None) -> list[dict]:
        """What each commit after version `after` did, from its log entry (any writer: Spark or delta-rs)."""
        out = []
        for v in [v for v in self.versions(table_key) if after is None or v > after]:
            body = self.s3.get_object(Bucket=self.lakehouse, Key=f"{table_key}/_delta_log/{v:020d}.json")["Body"]
            actions = [json.loads(line) for line in body.read().decode().splitlines() if line.strip()]
            adds = [a["add"] for a in actions if "add" in a]
            removed = {a["remove"]["path"] for a in actions if "remove" in a}
            info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
            new = [a for a in adds if a["path"] not in removed]
            out.append({"version": v, "operation": info.get("operation"), "data_files_added": len(new),
                        "data_bytes_added": sum(a.get("size", 0) for a in new),
                        "deletion_vectors_written": sum(1 for a in adds if a["path"] in removed
                                                        and a.get("deletionVector")),
                        "files_removed": len(removed - {a["path"] for a in adds})})
        return out

    def json(self, bucket: str, key: str) -> dict | None:
        try:
            return json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except self.s3.exceptions.NoSuchKey:
            return None


def commit_totals(commits: list[dict]) -> dict:
    return {"commits": len(commits), "operations": [c["operation"] for c in commits],
            **{k: sum(c[k] for c in commits) for k in ("data_files_added", "data_bytes_added",
                                                       "deletion_vectors_written", "files_removed")}}


# ------------------------------------------------------------------------------------------------ checks
class Checker:
    """Counts what each contender's table holds, with Spark (Delta on S3A, the stack's conf), in this process:
    every table is read whole, nothing trusted from the writer. Never timed."""

    def __init__(self, driver_memory: str = "2g"):
        self._spark = None
        self._owned = False
        self.driver_memory = driver_memory

    @property
    def spark(self):
        if self._spark is None:
            import logging

            from pyspark.sql import SparkSession

            from dev.local_spark import local_spark_conf

            logging.getLogger("py4j").setLevel(logging.WARNING)
            self._spark = SparkSession.getActiveSession()  # a test session's, with the same conf: used, not stopped
            if self._spark is not None:
                return self._spark
            self._owned = True
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            builder = (SparkSession.builder.master("local[2]").appName("member_daily_bench checks")
                       .config("spark.driver.memory", self.driver_memory)
                       .config("spark.ui.showConsoleProgress", "false").config("spark.log.level", "ERROR"))
            for key, value in local_spark_conf().items():
                builder = builder.config(key, value)
            self._spark = builder.getOrCreate()
            self._spark.sparkContext.setLogLevel("ERROR")
        return self._spark

    def stop(self) -> None:
        if self._spark is not None and self._owned:
            self._spark.stop()

    @staticmethod
    def _hash(col):
        from pyspark.sql import functions as F

        return F.conv(F.substring(F.md5(col), 1, 15), 16, 10).cast("decimal(38,0)")

    def row_text(self):
        from pyspark.sql import functions as F

        from lakehouse_jobs.contracts import MEMBER

        return F.concat_ws("\x1f", *[
            F.coalesce(F.date_format(c.name, "yyyy-MM-dd") if c.type == "date" else F.col(c.name), F.lit("\\N"))
            for c in MEMBER.columns])

    def ids(self, df) -> dict:
        from pyspark.sql import functions as F

        r = df.agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("member_id").alias("distinct"),
                   F.sum(self._hash(F.col("member_id"))).alias("id_sum")).first()
        return {"rows": r["rows"], "distinct": r["distinct"], "id_sum": int(r["id_sum"] or 0)}

    def plaintext(self, uri: str, changed_ids: str) -> dict:
        from pyspark.sql import functions as F

        df = self.spark.read.format("delta").load(uri)
        facts = self.ids(df)
        facts["value_sum"] = int(df.agg(F.sum(self._hash(self.row_text()))).first()[0] or 0)
        changed = self.spark.read.parquet(changed_ids)
        r = df.join(changed, "member_id").agg(F.count(F.lit(1)), F.sum(self._hash(self.row_text()))).first()
        facts["changed_rows"], facts["changed_value_sum"] = r[0], int(r[1] or 0)
        return facts

    def ours(self, root: str, batch_id: str) -> dict:
        from pyspark.sql import functions as F

        member = self.spark.read.format("delta").load(f"{root}/member").select("member_id")
        quarantine = (self.spark.read.format("delta").load(f"{root}/member_quarantine")
                      .where(F.col("batch_id") == batch_id).select("member_id"))
        dim = self.spark.read.format("delta").load(f"{root}/dim_member")
        current = dim.where("is_current").select("member_id")
        return {"member": self.ids(member), "quarantine": self.ids(quarantine),
                "present": self.ids(member.union(quarantine)), "dim_member_rows": dim.count(),
                "dim_member_current": self.ids(current)}


def check(name: str, expected: Any, found: Any) -> dict:
    return {"check": name, "expected": expected, "found": found, "ok": expected == found}


# --------------------------------------------------------------------------------------- the Databricks run
class Runner:
    """The local Databricks runner's Jobs API (the stack's: shared with whoever else submits runs)."""

    def __init__(self):
        import requests

        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {env('DATABRICKS_TOKEN')}"
        self.base = f"http://127.0.0.1:{env('DATABRICKS_RUNNER_PORT', '8765')}/api/2.2/jobs"
        self.state_dir = STATE / "databricks_runner"
        self.workspace = STATE / "workspace"
        pid_file = STATE / "run" / "databricks-runner.pid"
        self.pid = int(pid_file.read_text()) if pid_file.exists() else None

    def submit(self, payload: dict) -> int:
        r = self.http.post(f"{self.base}/runs/submit", json=payload, timeout=60)
        r.raise_for_status()
        return r.json()["run_id"]

    def get(self, run_id: int) -> dict:
        r = self.http.get(f"{self.base}/runs/get", params={"run_id": run_id}, timeout=60)
        r.raise_for_status()
        return r.json()

    def wait(self, run_id: int, poll: float = 0.5, timeout: float = 4 * 3600) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.get(run_id)
            if run["state"]["life_cycle_state"] in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR"):
                return run
            time.sleep(poll)
        raise TimeoutError(f"Databricks run {run_id} not finished after {timeout:.0f} s")

    def task_dir(self, task_run_id: int) -> str:
        return str((self.state_dir / "tasks" / str(task_run_id)).resolve())

    def facts(self, run: dict) -> dict:
        """The run's own durations, and the job's step times from its driver log."""
        task = run["tasks"][0]
        steps: dict[str, float] = {}
        log = Path(self.task_dir(task["run_id"])) / "driver.log"
        try:
            for m in STEP_LINE.finditer(log.read_text(errors="replace")):
                steps[m[1]] = round(steps.get(m[1], 0.0) + float(m[2]), 1)
        except OSError:
            pass
        execution = task["execution_duration"] / 1000
        return {"run_id": run["run_id"], "task_run_id": task["run_id"], "state": run["state"].get("result_state"),
                "run_s": run["run_duration"] / 1000, "queue_s": run["queue_duration"] / 1000,
                "setup_s": task["setup_duration"] / 1000, "execution_s": execution, "job_steps_s": steps,
                # spark-submit, the JVM, the SparkSession, imports and shutdown: what the job's steps do not cover
                "start_and_stop_s": round(execution - sum(steps.values()), 1) if steps else None,
                "message": run["state"].get("state_message")}


def build_jobs_wheel(runner: Runner, stamp: str) -> dict:
    """Build the spark_jobs wheel from this checkout and put it in the runner's workspace under a path of the
    benchmark's own (as `dev/stack.sh deploy` does for the stack's), so that the DAG and the job alone run
    the same code, whatever the stack's deployed wheel is meanwhile."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(Path(sys.executable).with_name("uv")), "build", "-q", "--wheel", str(REPO / "spark_jobs"),
                        "-o", tmp], check=True, capture_output=True)
        [wheel] = Path(tmp).glob("*.whl")
        path = f"/Workspace/Shared/lakehouse-ref-bench/{stamp}/{wheel.name}"
        target = runner.workspace / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(wheel, target)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "spark_jobs"], cwd=REPO, capture_output=True,
                           text=True).stdout.strip()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    return {"path": path, "sha256": hashlib.sha256(target.read_bytes()).hexdigest(), "commit": commit,
            "spark_jobs_uncommitted_changes": bool(dirty)}


# ------------------------------------------------------------------------------------- our private Airflow
class PrivateAirflow:
    """An Airflow of the benchmark's own, for the DAG contender: the stack's Airflow reads the `members`
    database and the `landing`/`lakehouse` buckets (its connection and settings are fixed when it starts),
    which the benchmark must not touch. This one runs the same DAG files, Airflow version, executor and
    settings as `dev/stack.sh start` (LocalExecutor, parallelism 4, deferrable Databricks operator, the same
    runner), with only what an environment changes: the connection `mysql_members` names the scratch
    database, LANDING_BUCKET / LAKEHOUSE_BUCKET the benchmark's buckets, JOBS_WHEEL_PATH its wheel; its own
    metadata database (`airflow_bench` on the stack's Postgres), ports and AIRFLOW_HOME (.local/bench-airflow);
    `[scheduler] use_job_schedule = False`, so it runs only the runs the benchmark triggers. Started once per
    benchmark run (not timed), stopped at the end."""

    COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")

    def __init__(self, port: int, overrides: dict[str, str]):
        self.port, self.home = port, STATE / "bench-airflow"
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_PII_")}
        self.env.update(overrides)
        db = (f"postgresql+psycopg2://airflow:{quote(env('AIRFLOW_METADATA_PASSWORD'), safe='')}@127.0.0.1:"
              f"{env('AIRFLOW_METADATA_PORT')}/airflow_bench")
        self.env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port + 704),  # 8091 -> 8795 (the stack's: 8793)
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(port + 705),
        })
        self.airflow = str(Path(sys.executable).with_name("airflow"))

    def _create_database(self) -> None:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=env("AIRFLOW_METADATA_PORT"), user="postgres",
                                password=env("AIRFLOW_METADATA_PASSWORD"), dbname="postgres")
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("SELECT 1 FROM pg_database WHERE datname = 'airflow_bench'")
        if not cur.fetchone():
            cur.execute("CREATE DATABASE airflow_bench OWNER airflow")
        conn.close()

    def _pidfile(self, component: str) -> Path:
        return STATE / "run" / f"bench-airflow-{component}.pid"

    def _stop_leftovers(self) -> None:
        """Stop the components a killed benchmark left running: only the processes recorded in our pid files
        whose start time is still the recorded one (a recycled pid belongs to someone else)."""
        for c in self.COMPONENTS:
            try:
                pid, started = self._pidfile(c).read_text().split()
                pid = int(pid)
            except (OSError, ValueError):
                continue
            if _start_ticks(pid) == started:
                print(f"  stopping the benchmark's Airflow {c} left by an earlier run (pid {pid})", flush=True)
                try:
                    os.killpg(pid, signal.SIGTERM)
                    for _ in range(60):
                        if _start_ticks(pid) != started:
                            break
                        time.sleep(0.5)
                    else:
                        os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self._pidfile(c).unlink(missing_ok=True)

    def start(self) -> None:
        import socket

        (STATE / "run").mkdir(parents=True, exist_ok=True)
        self._stop_leftovers()
        for port in (self.port, self.port + 704, self.port + 705):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    raise RuntimeError(f"port {port} is taken: the benchmark's Airflow needs it (--airflow-port)")
        self.home.mkdir(parents=True, exist_ok=True)
        (STATE / "logs").mkdir(parents=True, exist_ok=True)
        passwords = self.home / "passwords.json"
        passwords.write_text(json.dumps({env("AIRFLOW_ADMIN_USER"): env("AIRFLOW_ADMIN_PASSWORD")}))
        passwords.chmod(0o600)
        self._create_database()
        with open(STATE / "logs" / "bench-airflow-migrate.log", "ab") as log:
            for cmd in (["db", "migrate"], ["pools", "set", "lakehouse_member_tables", "1",
                                            "writers of the member Delta tables", "--include-deferred"]):
                if subprocess.run([self.airflow, *cmd], env=self.env, stdout=log, stderr=log).returncode:
                    raise RuntimeError(f"airflow {cmd[0]} failed: see .local/logs/bench-airflow-migrate.log")
        for c in self.COMPONENTS:
            args = [self.airflow, c] + (["--host", "127.0.0.1", "--port", str(self.port)] if c == "api-server" else [])
            log = open(STATE / "logs" / f"bench-airflow-{c}.log", "ab")  # noqa: SIM115 (kept open by the child)
            self.procs[c] = subprocess.Popen(args, env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                             start_new_session=True)
            self._pidfile(c).write_text(f"{self.procs[c].pid} {_start_ticks(self.procs[c].pid)}\n")
        import requests

        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/api/v2/monitor/health", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs.values()):
                raise RuntimeError("the benchmark's Airflow did not start: see .local/logs/bench-airflow-*.log")
            time.sleep(2)
        from dev.airflow_api import AirflowApi

        self.api = AirflowApi(base_url=f"http://127.0.0.1:{self.port}")
        self.api.wait_for_dag(DAG_ID, timeout=300)
        # a run left by an interrupted benchmark would hold the DAG's one active slot (max_active_runs=1),
        # and the first load measured would count its wait as Airflow's (seen: 71 s)
        left = self.http("get", f"dags/{DAG_ID}/dagRuns", params={"state": ["queued", "running"]})
        left.raise_for_status()
        for run in left.json()["dag_runs"]:
            print(f"  failing {run['dag_run_id']}, left {run['state']} by an earlier benchmark", flush=True)
            self.http("patch", f"dags/{DAG_ID}/dagRuns/{run['dag_run_id']}", json={"state": "failed"}
                      ).raise_for_status()
        r = self.http("patch", f"dags/{DAG_ID}", json={"is_paused": False})
        r.raise_for_status()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values() if p.poll() is None]

    def http(self, method: str, path: str, **kwargs):
        import requests

        return requests.request(method, f"{self.api.base_url}/api/v2/{path}", headers=self.api._headers(),
                                timeout=60, **kwargs)

    def xcom(self, run_id: str, task_id: str, key: str) -> Any:
        r = self.http("get", f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
                      params={"deserialize": "true", "stringify": "false"})
        r.raise_for_status()
        value = r.json()["value"]
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                import ast

                value = ast.literal_eval(value)
        return value

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 30
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        for c in self.procs:
            self._pidfile(c).unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------ the contenders
class Bench:
    def __init__(self, args, stamp: str, tmp: Path):
        self.args, self.stamp, self.tmp = args, stamp, tmp
        self.source = Source(args.seed, args.database_prefix)
        self.store = Store(args.bucket_prefix)
        self.runner = Runner()
        self.checker = Checker()
        self.runs: list[dict] = []
        self.airflow: PrivateAirflow | None = None
        self.wheel: dict | None = None
        self.startup: dict | None = None
        self.size: dict = {}
        self.versions_dlt: dict = {}
        self.contenders = args.contenders

    # --- setup
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
        if "notebook" in self.contenders:
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

    # --- one load, measured
    def servers(self) -> dict[str, int | None]:
        return {"mariadb": find_server("mariadbd", f"--port={env('MYSQL_PORT')}"),
                "minio": find_server("minio", "server", env("S3_ENDPOINT_URL").split("//", 1)[1])}

    def measure(self, contender: str, step: str, rows: int, repeat: int, position: int) -> dict:
        run = {"contender": contender, "step": step, "rows": rows, "repeat": repeat, "position": position,
               "loadavg_before": loadavg()}
        tables = self.tables(contender)
        before = {t: (self.store.versions(t) or [None])[-1] for t in tables}
        ok = True
        try:
            out = getattr(self, f"step_{contender}")(step, run)
        except Exception as e:  # noqa: BLE001 (a failed load is a result: reported, and the exit status is 1)
            ok, out = False, {"error": redact(f"{type(e).__name__}: {e}")[-4000:]}
        run.update(out)
        run["ok"] = ok
        run["commits"] = {t.rsplit("/", 1)[1] if not t.startswith("dlt") else "member": commit_totals(
            self.store.commits(t, before[t])) for t in tables}
        run["checks"] = self.check(contender, step, rows, run) if ok else []
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

    # --- (a) the DAG
    def tables(self, contender: str) -> list[str]:
        if contender in ("dag", "job"):
            return [f"delta/{t}" for t in JOB_TABLES]
        if contender == "dlt":
            return ["dlt/member_daily/member"]
        return ["notebook/member"]

    def reset(self, contender: str) -> None:
        """A fresh, empty target (and, for ours, no landed batch, lease or extract state)."""
        lake = self.store.lakehouse
        if contender in ("dag", "job"):
            self.store.delete(lake, "delta/")
            self.store.delete(lake, "_results/")
            self.store.delete(self.store.landing, "member/")
        elif contender == "dlt":
            self.store.delete(lake, "dlt/")
            shutil.rmtree(self.tmp / "dlt-pipelines", ignore_errors=True)
        else:
            self.store.delete(lake, "notebook/")

    def step_dag(self, step: str, run: dict) -> dict:
        af = self.airflow
        run_id = f"daily_bench__{self.stamp}__{run['rows']}__r{run['repeat']}__{step}"
        # the Airflow components, their workers and task processes; the runner's task trees come separately
        with self.probe({"airflow": af.pids}) as probe:
            r = af.http("post", f"dags/{DAG_ID}/dagRuns", json={"dag_run_id": run_id, "logical_date": None})
            r.raise_for_status()
            deadline = time.monotonic() + 4 * 3600
            while (state := af.api.run_state(DAG_ID, run_id)) not in ("success", "failed"):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{run_id} not finished after 4 hours")
                time.sleep(1)
        dag_run = af.http("get", f"dags/{DAG_ID}/dagRuns/{run_id}").json()
        tis = {ti["task_id"]: ti for ti in af.http("get", f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
               .json()["task_instances"]}
        if state != "success":
            details = []
            for task, ti in tis.items():
                if ti["state"] != "success":
                    log = af.http("get", f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task}/logs/"
                                         f"{max(ti['try_number'], 1)}?full_content=true")
                    details.append(f"--- {task}: {ti['state']}\n{log.text[-2500:]}")
            raise RuntimeError(f"DAG run {run_id} ended {state}\n" + "\n".join(details))
        databricks = self.runner.facts(self.runner.get(int(af.xcom(run_id, "merge_members", "run_id"))))
        extracted = af.xcom(run_id, "extract_members", "return_value")
        dag_wall = (_ts(dag_run["end_date"]) - _ts(dag_run["queued_at"]))
        tasks = {t: {"s": round(_ts(ti["end_date"]) - _ts(ti["start_date"]), 1), "tries": ti["try_number"]}
                 for t, ti in tis.items()}
        # every task run of this DAG run's Databricks runs: retries included
        task_dirs = {self.runner.task_dir(databricks["task_run_id"])}
        out = self.measured(probe, ("airflow",), task_dirs)
        extract_s = tasks["extract_members"]["s"]
        out.update({
            "dag_run_id": run_id, "batch_id": extracted["batch_id"], "dag_wall_s": round(dag_wall, 2),
            "tasks_s": tasks, "databricks": databricks,
            "airflow_s": round(dag_wall - extract_s - databricks["run_s"], 2),
            "airflow_share": round((dag_wall - extract_s - databricks["run_s"]) / dag_wall, 3),
            "airflow_peak_rss_mib": probe.peak_mib(("airflow",)),
        })
        return out

    # --- (b) the job alone
    def step_job(self, step: str, run: dict) -> dict:
        day = dt.datetime.now(dt.timezone.utc).date()
        batch_id = f"extract_date={day:%Y-%m-%d}"
        payload = self.run_json(batch_id)
        payload["run_name"] = f"member_daily_bench {batch_id} {step}"
        log = self.tmp / f"job-{run['rows']}-r{run['repeat']}-{step}.log"
        run_id = f"daily_bench__{self.stamp}__job__{run['rows']}__r{run['repeat']}__{step}"
        extract_cmd = [sys.executable, "-m", "include.extract", "--date", day.isoformat(), "--run-id", run_id]
        with open(log, "ab") as f:
            with self.probe({"child": []}) as probe:
                started = time.monotonic()
                proc = subprocess.Popen(extract_cmd, cwd=REPO, env=self.child_env(), stdout=f, stderr=subprocess.STDOUT)
                probe.groups["child"] = [proc.pid]
                proc.wait()
                extract_s = time.monotonic() - started
                if proc.returncode:
                    raise RuntimeError(f"the extract exited {proc.returncode}:\n{log_tail(log)}")
                submitted = time.monotonic()
                db_run = self.runner.wait(self.runner.submit(payload))
                job_wall = time.monotonic() - submitted
        databricks = self.runner.facts(db_run)
        if databricks["state"] != "SUCCESS":
            raise RuntimeError(f"Databricks run {databricks['run_id']} ended {databricks['state']}: "
                               f"{databricks['message']}")
        out = self.measured(probe, ("child",), {self.runner.task_dir(databricks["task_run_id"])})
        out.update({"batch_id": batch_id, "extract_s": round(extract_s, 2), "submit_to_end_s": round(job_wall, 2),
                    "databricks": databricks})
        return out

    # --- (c) dlt
    def step_dlt(self, step: str, run: dict) -> dict:
        result = self.tmp / "dlt-result.json"
        cmd = [str(BENCH_VENV / "bin" / "python"), str(REPO / "benchmarks" / "dlt_contender.py"),
               "--database", self.source.live_db, "--bucket-url", f"s3://{self.store.lakehouse}/dlt",
               "--pipelines-dir", str(self.tmp / "dlt-pipelines"), "--result", str(result),
               "--connectorx-mode", self.args.dlt_connectorx_mode]
        e = {k: v for k, v in self.child_env().items() if not k.startswith(("AIRFLOW", "PYTHON"))}
        _, probe = self.child(cmd, e, self.tmp / f"dlt-{run['rows']}-r{run['repeat']}-{step}.log")
        facts = json.loads(result.read_text())
        self.versions_dlt = facts.pop("versions")
        return {**self.measured(probe, ("child",)), "contender_facts": facts}

    # --- (d) the notebook
    def notebook_conf(self) -> Path:
        from dev.databricks_runner.spark import cluster_spark_conf, write_properties
        from dev.local_spark import local_spark_conf

        conf = local_spark_conf()
        conf["spark.jars"] += f",{JDBC_JAR}"
        conf["spark.log.level"] = "WARN"
        conf.update(cluster_spark_conf(self.cluster_spec(), "2g"))  # the job's driver memory, from its settings
        path = self.tmp / "notebook.properties"
        write_properties(path, conf)
        return path

    @staticmethod
    def cluster_spec() -> dict:
        """The job cluster the DAG's run JSON asks for, from the same settings (DATABRICKS_NODE_TYPE...)."""
        from include.databricks_runs import job_cluster
        from include.settings import DatabricksSettings

        return job_cluster("member_merge", DatabricksSettings.from_env(os.environ))

    @property
    def driver_memory(self) -> str:
        """The job's driver memory as the runner derives it from the cluster spec (the node type's memory)."""
        from dev.databricks_runner.spark import cluster_spark_conf

        return cluster_spark_conf(self.cluster_spec(), "2g")["spark.driver.memory"]

    def step_notebook(self, step: str, run: dict) -> dict:
        runtime = STATE / "databricks-runtime" / "bin"
        result = self.tmp / "notebook-result.json"
        cmd = [str(runtime / "spark-submit"), "--master", "local[2]", "--name", "notebook_contender",
               "--properties-file", str(self.notebook_conf()), str(REPO / "benchmarks" / "notebook_contender.py"),
               "--database", self.source.live_db, "--table-path", f"s3://{self.store.lakehouse}/notebook/member",
               "--partitions", str(self.args.notebook_partitions), "--result", str(result)]
        e = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LAKEHOUSE_PII_", "PYTHONPATH"))}
        e.update({"PYSPARK_PYTHON": str(runtime / "python"), "PYSPARK_DRIVER_PYTHON": str(runtime / "python"),
                  "SPARK_LOCAL_IP": "127.0.0.1"})
        e.pop("SPARK_HOME", None)
        _, probe = self.child(cmd, e, self.tmp / f"notebook-{run['rows']}-r{run['repeat']}-{step}.log")
        return {**self.measured(probe, ("child",)), "contender_facts": json.loads(result.read_text())}

    # --- checks
    def check(self, contender: str, step: str, rows: int, run: dict) -> list[dict]:
        state = "B" if step == "change" else "A"
        want = self.source.facts(rows, state)
        lake = f"s3://{self.store.lakehouse}"
        out = []
        if contender in ("dag", "job"):
            found = self.checker.ours(f"{lake}/delta", run["batch_id"])
            present, member, current = found["present"], found["member"], found["dim_member_current"]
            out += [check("member + quarantined rows = source rows", want["rows"],
                          member["rows"] + found["quarantine"]["rows"]),
                    check("member_id set (checksum) of member + quarantine = source's", want["id_sum"],
                          present["id_sum"]),
                    check("distinct member_id in member + quarantine", want["rows"], present["distinct"]),
                    check("dim_member: one current row per member", member["rows"], current["distinct"]),
                    check("dim_member: current rows", member["rows"], current["rows"]),
                    check("dim_member: current member_id set = member's", member["id_sum"], current["id_sum"])]
            if step == "first":
                self.size["dim_after_first"] = found["dim_member_rows"]
            elif step == "replay":
                for t in ("member", "dim_member"):
                    out.append(check(f"replay commits nothing to {t}", 0, run["commits"][t]["commits"]))
            else:
                out.append(check("dim_member rows: first load + changed members", self.size.get("dim_after_first", 0)
                                 + want["changed_rows"], found["dim_member_rows"]))
            result = self.store.json(self.store.lakehouse, f"_results/member/{run['batch_id']}.json") or {}
            run["job_result"] = {k: result.get(k) for k in ("manifest_rows", "unchanged_rows", "valid_rows",
                                                             "quarantined_rows", "deleted_rows")}
            if step == "change":
                out.append(check("job result: changed rows processed", want["changed_rows"], result.get("valid_rows")))
            elif step == "replay":
                out.append(check("job result: no row processed again", 0, result.get("valid_rows")))
        else:
            uri = f"{lake}/{self.tables(contender)[0]}"
            found = self.checker.plaintext(uri, str(self.changed_ids_file(rows)))
            out += [check("rows = source rows", want["rows"], found["rows"]),
                    check("distinct member_id = source rows", want["rows"], found["distinct"]),
                    check("member_id set (checksum) = source's", want["id_sum"], found["id_sum"]),
                    check("every row's values (checksum) = source's", want["value_sum"], found["value_sum"])]
            if step == "change":
                out.append(check("changed members' values (checksum) = source's", want["changed_value_sum"],
                                 found["changed_value_sum"]))
        return out

    def changed_ids_file(self, rows: int) -> Path:
        path = self.tmp / f"changed-{rows}.parquet"
        if not path.exists():
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({"member_id": pa.array(self.source.changed_ids(rows), pa.string())}), path)
        return path

    # --- the whole run
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
                self.reset(contender)
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
        cur.execute(f"SELECT COUNT(*), SUM(LENGTH(CONCAT_WS(',', {', '.join(_columns())}))) FROM member")
        cur.fetchall()
        conn.close()


def _columns() -> list[str]:
    from lakehouse_jobs.contracts import MEMBER

    return MEMBER.column_names


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# ----------------------------------------------------------------------------------------------- installs
def ensure_bench_venv() -> None:
    """.local/bench-venv from requirements/bench.lock (created or re-synced when the lock changed)."""
    want = hashlib.sha256(BENCH_LOCK.read_bytes()).hexdigest()[:16]
    stamp = BENCH_VENV / ".lock-hash"
    if stamp.exists() and stamp.read_text().strip() == want and (BENCH_VENV / "bin" / "python").exists():
        return
    print(f"  installing requirements/bench.lock into {BENCH_VENV} ...", flush=True)
    uv = str(Path(sys.executable).with_name("uv"))
    if not (BENCH_VENV / "bin" / "python").exists():
        subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(BENCH_VENV)], check=True)
    subprocess.run([uv, "pip", "sync", "-q", "-p", str(BENCH_VENV / "bin" / "python"), "--require-hashes",
                    str(BENCH_LOCK)], check=True)
    stamp.write_text(want + "\n")


def ensure_jdbc_jar() -> None:
    """MySQL Connector/J from Maven Central into the download cache (never the repository), as
    `dev/stack.sh install` gets the Spark jars; kept out of <cache>/jars, which every Spark of the stack loads."""
    if JDBC_JAR.exists():
        return
    print(f"  fetching {JDBC_ARTIFACT} from Maven Central into {JDBC_JAR.parent} ...", flush=True)
    JDBC_JAR.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mvn", "-q", "-B", "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy",
                    f"-Dartifact={JDBC_ARTIFACT}", f"-DoutputDirectory={JDBC_JAR.parent}"],
                   check=True, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL)


# --------------------------------------------------------------------------------------------- reporting
def limit_text(run: dict) -> str:
    """What limits a load, from where the machine's CPU went during it (measured, not guessed): how busy the
    machine was and how much of that was someone else's, the cores each kind of process of the contender used
    on average, time queued behind other runs of the shared runner, and the slowest phases by their own clocks."""
    cores = os.cpu_count() or 1
    wall = run["wall_s"]
    cpu = dict(run["cpu_s"])
    db, s3 = run.get("cpu_mariadb_s") or 0.0, run.get("cpu_minio_s") or 0.0
    others = max(run.get("cpu_others_s") or 0.0, 0.0) + (run.get("cpu_bench_airflow_idle_s") or 0.0)
    machine_busy = (sum(cpu.values()) + db + s3 + others) / (wall * cores)
    others_share = others / (wall * cores)
    parts = {**{k: v for k, v in cpu.items() if v >= 0.05 * wall}, "mariadbd": db, "minio": s3}
    top = sorted(((v, k) for k, v in parts.items() if v >= 0.01 * wall), reverse=True)[:3]
    spent = ", ".join(f"{k} {v / wall:.2f}" for v, k in top)
    if machine_busy >= 0.85 and others_share >= 0.25:
        head = f"CPU, shared: machine {machine_busy:.0%} busy, {others_share:.0%} of it others'"
    elif machine_busy >= 0.85:
        head = f"CPU-bound: machine {machine_busy:.0%} busy"
    elif top and top[0][0] / wall >= 0.85:
        head = f"one core: {top[0][1]} (single-threaded), machine {machine_busy:.0%} busy"
    else:
        head = f"waiting: machine {machine_busy:.0%} busy"
    text = f"{head}; cores used: {spent}"
    if run["contender"] in ("dag", "job"):
        d = run.get("databricks", {})
        if (d.get("queue_s") or 0) >= 1:
            text += f"; queued {d['queue_s']:.0f} s behind other runs on the runner"
        worst = sorted((d.get("job_steps_s") or {}).items(), key=lambda kv: -kv[1])[:2]
        if worst:
            text += "; job steps " + ", ".join(f"{k} {v:.0f} s" for k, v in worst)
        if d.get("start_and_stop_s") is not None:
            text += f", start+stop {d['start_and_stop_s']:.0f} s"
        if run["contender"] == "dag":
            text += f"; Airflow {run['airflow_s']:.0f} s ({run['airflow_share']:.0%})"
    elif run.get("contender_facts", {}).get("steps_s"):
        steps = run["contender_facts"]["steps_s"]
        text += "; " + ", ".join(f"{k} {v:.0f} s" for k, v in steps.items() if k != "run")
    return text


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


def _stat(values: list) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(runs: list[dict]) -> dict:
    summary: dict = {}
    for run in runs:
        if not run["ok"]:
            continue
        by_size = summary.setdefault(str(run["rows"]), {})
        by_size.setdefault(run["contender"], {}).setdefault(run["step"], []).append(run)
    for by_contender in summary.values():
        for by_step in by_contender.values():
            for step, mine in by_step.items():
                by_step[step] = {
                    "runs": len(mine),
                    **{f: _stat([r.get(f) for r in mine]) for f in (
                        "wall_s", "rows_per_s", "peak_rss_mib", "job_peak_rss_mib", "cpu_total_s", "cpu_mariadb_s",
                        "cpu_minio_s", "cpu_others_s", "airflow_share", "airflow_s", "dag_wall_s", "extract_s",
                        "airflow_peak_rss_mib")},
                    "databricks": {k: _stat([r["databricks"].get(k) for r in mine]) for k in (
                        "run_s", "queue_s", "setup_s", "execution_s", "start_and_stop_s")}
                    if "databricks" in mine[0] else None,
                    "tasks_s": {t: _stat([r["tasks_s"][t]["s"] for r in mine]) for t in mine[0]["tasks_s"]}
                    if "tasks_s" in mine[0] else None,
                    # one run's own account (its step times, its cores): the run of median wall time, so
                    # that the column describes a run like the medians beside it
                    "limit": sorted(mine, key=lambda r: r["wall_s"])[len(mine) // 2]["limit"],
                }
    return summary


def evaluate_targets(summary: dict) -> list[dict]:
    """The issue's targets, as ratios of medians measured in this run, at the largest size that has them."""
    targets = []
    sizes = sorted(int(s) for s in summary)
    if not sizes:
        return targets
    rows = sizes[-1]
    by = summary[str(rows)]

    def med(contender, step, field="wall_s"):
        s = by.get(contender, {}).get(step, {}).get(field)
        return s["median"] if s else None

    for step in ("replay", "change", "first"):
        ours, dlt = med("dag", step), med("dlt", step)
        if ours and dlt:
            goal = TARGETS_VS_DLT[step]
            targets.append({"target": f"{STEP_LABELS[step]} through the DAG vs dlt, {rows:,} members",
                            "ratio": ours / dlt, "measured": f"{ours / dlt:.2f}x", "goal": f"<= {goal:g}x",
                            "met": ours / dlt <= goal,
                            "note": f"{ours:.1f} s vs {dlt:.1f} s"})
    for step in STEPS:
        ours, nb = med("dag", step), med("notebook", step)
        if ours and nb:
            targets.append({"target": f"{STEP_LABELS[step]} through the DAG vs the notebook, {rows:,} members",
                            "ratio": ours / nb, "measured": f"{ours / nb:.2f}x", "goal": "< 1x (ahead)",
                            "met": ours < nb,
                            "note": f"{ours:.1f} s vs {nb:.1f} s"})
    queued = [(c, step, s["databricks"]["queue_s"]["max"]) for c in ("dag", "job") for step, s in by.get(c, {}).items()
              if s.get("databricks") and s["databricks"]["queue_s"] and s["databricks"]["queue_s"]["max"] >= 1]
    for t in targets:
        if queued and "through the DAG vs" in t["target"]:
            t["note"] += "; some of ours waited behind other runs of the shared runner (see the queue column)"
    peaks = [s["job_peak_rss_mib"]["max"] for c in ("dag", "job") for s in by.get(c, {}).values()
             if s.get("job_peak_rss_mib")]
    if peaks:
        peak = max(peaks)
        targets.append({"target": f"the job's peak RSS (whole spark-submit tree), {rows:,} members",
                        "ratio": peak / 1024 / JOB_PEAK_GIB, "measured": f"{peak / 1024:.2f} GiB",
                        "goal": f"<= {JOB_PEAK_GIB:g} GiB",
                        "met": peak <= JOB_PEAK_GIB * 1024, "note": f"{peak:,.0f} MiB, the highest of every load"})
    shares = [(step, med("dag", step, "airflow_share")) for step in STEPS]
    shares = [(s, v) for s, v in shares if v is not None]
    if shares:
        worst = max(v for _, v in shares)
        targets.append({"target": f"Airflow's share of a daily run, {rows:,} members", "ratio": worst,
                        "measured": f"{worst:.1%} (the highest median)",
                        "goal": f"<= {AIRFLOW_SHARE:.0%}", "met": worst <= AIRFLOW_SHARE,
                        "note": ", ".join(f"{STEP_LABELS[s]} {v:.1%}" for s, v in shares) + " (medians)"})
    return targets


def versions(bench: Bench | None) -> dict:
    out = {"python": platform.python_version()}
    for dist in ("pyspark", "delta-spark", "pyarrow", "connectorx", "apache-airflow",
                 "apache-airflow-providers-databricks", "apache-airflow-providers-amazon", "boto3"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
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
                     "the Delta log).")
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


# ------------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
            driver_memory = bench.driver_memory
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
        "benchmark": "member_daily",
        "date": started_at.date().isoformat(),
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(duration, 1),
        "command": " ".join(["python -m benchmarks.member_daily_bench", *(sys.argv[1:] if argv is None else argv)]),
        "repeats": args.repeats,
        "seed": args.seed,
        "settings": {"driver_memory": driver_memory, "notebook_partitions": args.notebook_partitions,
                     "dlt_connectorx_mode": args.dlt_connectorx_mode, "change_share": CHANGE_SHARE,
                     "sample_s": SAMPLE_S, "buckets": [bench.store.landing, bench.store.lakehouse],
                     "source": f"{bench.source.live_db}.member"},
        "machine": machine(),
        "versions": versions(bench),
        "load": {"before": load_before, "after": loadavg(),
                 "other_cpu_share_median": statistics.median(shares) if shares else 0.0,
                 "other_cpu_share_max": max(shares) if shares else 0.0},
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
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        base = out / f"member-daily-{report['date']}"
        base.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        base.with_suffix(".md").write_text(text)
        print(f"wrote {base}.json and {base}.md")
    print(f"took {duration / 60:.1f} min")
    return 0 if report["checks_passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
