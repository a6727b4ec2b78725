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
import base64
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import platform
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.extract_bench import cpu_seconds, fmt_stat, loadavg, machine, process_tree, system_cpu, vm_rss_kib

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"
SEED = 42
SAMPLE_S = 0.2
MiB = 1024 * 1024
ROWS_PER_FILE = 1_000_000  # the extract's defaults (include/extract/engine.extract_table)
ROW_GROUP_ROWS = 128 * 1024
BATCH_A = ("extract_date=2026-01-01", "2026-01-01T19:00:00.000000+00:00")
BATCH_B = ("extract_date=2026-01-02", "2026-01-02T19:00:00.000000+00:00")
JOB_TABLES = ("member", "dim_member", "member_quarantine", "member_batches")
JOB_LOGGER = "lakehouse_jobs.member_merge"
STEP_LINE = re.compile(r"^step (\w+): ([0-9.]+) s$")

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


# ------------------------------------------------------------------------------------------- synthetic data
FIRST_NAMES = ("Aiko", "Hiroshi", "Emma", "Liam", "Zoë", "José", "Ananya", "Chloé", "李小龍", "Noah", "Olivia",
               "Lukas", "Mia", "Ravi", "Sofia", "Yuki")
LAST_NAMES = ("Sato", "Suzuki", "Smith", "Müller", "Dubois", "Silva", "Patel", "O'Brien", "García", "Kim",
              "Nguyen", "Rossi", "小林", "Taylor", "Schmidt", "Tanaka")
STREETS = ("Main Street", "Oak Avenue", "Station Road", "Sakura-dori", "Rue de la Paix", "Hauptstraße",
           "Rua Augusta", "MG Road")
# (country as the source spells it, cities, phone number: literal text and runs of random digits)
COUNTRIES = (
    ("Japan", ("Tokyo", "Osaka", "Sapporo"), ("+81 3-", 4, "-", 4)),
    ("United States", ("Springfield", "Los Angeles", "Austin"), ("+1 213-948-", 4)),
    ("Germany", ("Berlin", "Hamburg", "Munich"), ("+49 30 ", 8)),
    ("France", ("Paris", "Lyon", "Lille"), ("+33 1 42 ", 2, " ", 2, " ", 2)),
    ("United Kingdom", ("London", "Leeds", "Bristol"), ("+44 20 7946 0", 3)),
    ("Brazil", ("São Paulo", "Campinas", "Santos"), ("+55 11 9", 4, "-", 4)),
    ("India", ("Mumbai", "Pune", "Chennai"), ("+91 98765 ", 5)),
    ("Australia", ("Sydney", "Newcastle", "Wollongong"), ("+61 2 9374 ", 4)),
)
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2025, 12, 31)  # registration dates


def member_ids(rng, n: int) -> pa.Array:
    """n distinct random UUIDs (version 4) as lower-case text, in ascending order (the extract reads the
    table in primary-key order): built as bytes in numpy, never one Python string per row."""
    import numpy as np
    import pyarrow as pa

    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    # lower-case hex sorts as its bytes do ('0'-'9' < 'a'-'f'), so sort the bytes as two big-endian words
    words = raw.view(">u8")
    raw = raw[np.lexsort((words[:, 1], words[:, 0]))]
    if n > 1 and (raw[1:] == raw[:-1]).all(axis=1).any():
        raise RuntimeError("duplicate UUIDs generated")  # 122 random bits: never, but the benchmark counts on it
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    hexed = np.empty((n, 32), dtype=np.uint8)
    hexed[:, 0::2], hexed[:, 1::2] = hexdigits[raw >> 4], hexdigits[raw & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    for start, stop, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        text[:, at:at + stop - start] = hexed[:, start:stop]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(text)])


def _digits(rng, n: int, width: int) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.utf8_lpad(pa.array(rng.integers(0, 10 ** width, n)).cast(pa.string()), width, "0")


def _concat(*parts) -> pa.Array:
    """Element-wise string concatenation of arrays and str literals."""
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(*parts, "")


def generate_members(n: int, seed: int) -> pa.Table:
    """Batch A: n valid members in the landed schema (lakehouse_jobs.contracts.arrow_schema(MEMBER,
    landed=True)), deterministic for a seed. Valid means the job quarantines none: lower-case UUIDs, emails
    m<i>@example.com, registration dates 2000-2025, real country names with phone numbers of that country."""
    import numpy as np
    import pyarrow as pa

    from lakehouse_jobs.contracts import MEMBER, arrow_schema

    rng = np.random.default_rng(seed)
    ids = member_ids(rng, n)
    country = rng.integers(0, len(COUNTRIES), n)
    # phone numbers country by country, then put back in row order
    by_country = np.argsort(country, kind="stable")
    chunks = []
    for c, (_, _, template) in enumerate(COUNTRIES):
        m = int((country == c).sum())
        chunks.append(_concat(*(p if isinstance(p, str) else _digits(rng, m, p) for p in template)))
    position = np.empty(n, dtype=np.int64)
    position[by_country] = np.arange(n)
    phone = pa.concat_arrays(chunks).take(pa.array(position))
    cities = pa.array([city for _, names, _ in COUNTRIES for city in names])
    city = cities.take(pa.array(country * 3 + rng.integers(0, 3, n)))
    address = _concat(pa.array(rng.integers(1, 10_000, n)).cast(pa.string()), " ",
                      pa.array(STREETS).take(pa.array(rng.integers(0, len(STREETS), n))))
    days = rng.integers((FIRST_DAY - dt.date(1970, 1, 1)).days, (LAST_DAY - dt.date(1970, 1, 1)).days + 1, n)
    columns = {
        "member_id": ids,
        "first_name": pa.array(FIRST_NAMES).take(pa.array(rng.integers(0, len(FIRST_NAMES), n))),
        "last_name": pa.array(LAST_NAMES).take(pa.array(rng.integers(0, len(LAST_NAMES), n))),
        "email": _concat("m", pa.array(np.arange(n)).cast(pa.string()), "@example.com"),
        "phone_number": phone,
        "address": address,
        "city": city,
        "country": pa.array([name for name, _, _ in COUNTRIES]).take(pa.array(country)),
        "registration_date": pa.array(days.astype(np.int32)).cast(pa.date32()),
        "registration_date_raw": pa.nulls(n, pa.string()),
    }
    schema = arrow_schema(MEMBER, landed=True)
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def change_members(table: pa.Table, share: float, seed: int) -> tuple[pa.Table, int]:
    """Batch B: `table` with the email and address of a random `share` of its rows changed (to other valid
    values); (the table, how many rows changed)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = table.num_rows
    changed = round(n * share)
    rng = np.random.default_rng(seed + 1)
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=changed, replace=False)] = True
    mask = pa.array(mask)
    email = _concat("m", pa.array(np.arange(n)).cast(pa.string()), "@example.net")
    table = table.set_column(table.schema.get_field_index("email"), table.schema.field("email"),
                             pc.if_else(mask, email, table["email"]))
    table = table.set_column(table.schema.get_field_index("address"), table.schema.field("address"),
                             pc.if_else(mask, _concat("Flat 2, ", table["address"]), table["address"]))
    return table, changed


def write_batch(table: pa.Table, landing: Path, batch_id: str, extracted_at: str) -> dict:
    """Write `table` as the extract publishes a batch: zstd Parquet files of ROWS_PER_FILE rows under
    landing/member/<batch_id>/attempt=.../, then _manifest.json (lakehouse_jobs.manifest) naming them with
    their true rows, bytes and sha256. Returns facts about the batch, with the manifest's path."""
    import pyarrow.parquet as pq

    from include.extract.schema_drift import schema_hash, schema_json, select_sql
    from lakehouse_jobs.contracts import MEMBER
    from lakehouse_jobs.manifest import MANIFEST_NAME, BatchManifest, FileEntry

    batch_dir = landing / "member" / batch_id
    attempt = batch_dir / "attempt=member-history-bench"
    attempt.mkdir(parents=True)
    files = []
    for i, start in enumerate(range(0, table.num_rows, ROWS_PER_FILE)):
        path = attempt / f"part-{i:05d}.parquet"
        part = table.slice(start, ROWS_PER_FILE)
        with pq.ParquetWriter(path, table.schema, compression="zstd") as writer:
            writer.write_table(part, row_group_size=ROW_GROUP_ROWS)
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
        files.append(FileEntry(path=str(path), rows=part.num_rows, bytes=path.stat().st_size,
                               sha256=digest.hexdigest()))
    manifest = BatchManifest(
        table="member", batch_id=batch_id, run_id="member_history_bench", mode="snapshot",
        source_query=select_sql(MEMBER), row_count=table.num_rows, schema=schema_json(table.schema),
        schema_hash=schema_hash(table.schema), files=files, extracted_at=extracted_at,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
    manifest_path = batch_dir / MANIFEST_NAME
    manifest_path.write_text(manifest.to_json())
    return {"batch_id": batch_id, "extracted_at": extracted_at, "manifest": str(manifest_path),
            "rows": table.num_rows, "files": [f.path for f in files], "bytes": sum(f.bytes for f in files)}


def generate_batches(landing: str, members: int, share: float, seed: int) -> dict:
    """Batches A and B under `landing` (run in a child process, so that the benchmark's own process holds no
    Arrow memory while it is measured)."""
    started = time.perf_counter()
    a = generate_members(members, seed)
    b, changed = change_members(a, share, seed)
    generated = time.perf_counter() - started
    facts = {"a": write_batch(a, Path(landing), *BATCH_A), "b": write_batch(b, Path(landing), *BATCH_B)}
    return {**facts, "changed": changed, "generate_s": round(generated, 2),
            "write_s": round(time.perf_counter() - started - generated, 2)}


# ---------------------------------------------------------------------------------------- measurement
class TreeSampler(threading.Thread):
    """Peak summed VmRSS, and CPU time, of this process and all its descendants (driver JVM, Python workers),
    sampled from /proc every SAMPLE_S; machine-wide busy CPU around it, so that others' use shows."""

    def __init__(self):
        super().__init__(daemon=True)
        self.root, self.peak_kib, self.samples = os.getpid(), 0, 0
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._done = threading.Event()

    def sample(self) -> None:
        tree = process_tree(self.root)
        self.peak_kib = max(self.peak_kib, sum(vm_rss_kib(p) for p in tree))
        for pid in tree:
            cpu = cpu_seconds(pid)
            if cpu is not None:
                self.last[pid] = cpu
        self.samples += 1

    def __enter__(self) -> TreeSampler:
        self.busy_before, self.load_before = system_cpu()[0], loadavg()
        self.sample()
        self.first = dict(self.last)
        self.start()
        return self

    def run(self) -> None:
        while not self._done.wait(SAMPLE_S):
            self.sample()

    def __exit__(self, *exc) -> None:
        self._done.set()
        self.join()
        self.sample()
        busy = system_cpu()[0] - self.busy_before
        # processes first seen after the start were born during the run: all their CPU time is the run's
        self.cpu_s = sum(cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items())
        self.other_cpu_s = busy - self.cpu_s

    def facts(self, wall: float) -> dict:
        return {"peak_rss_tree_mib": round(self.peak_kib / 1024, 1), "rss_samples": self.samples,
                "cpu_ours_s": round(self.cpu_s, 1), "cpu_other_s": round(self.other_cpu_s, 1),
                "other_cpu_share": round(max(self.other_cpu_s, 0.0) / (wall * (os.cpu_count() or 1)), 3),
                "loadavg_before": self.load_before}


class StepTimes(logging.Handler):
    """Collects the job's "step <name>: <seconds> s" lines (lakehouse_jobs.steps.timed)."""

    def __init__(self):
        super().__init__(level=logging.INFO)
        self.steps: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if m := STEP_LINE.match(record.getMessage()):
            self.steps[m[1]] = round(self.steps.get(m[1], 0.0) + float(m[2]), 1)


@contextlib.contextmanager
def step_times():
    """The job's step lines, whatever the root logger's level (pytest leaves it at WARNING), kept off the
    console (the benchmark prints its own line per run)."""
    logger = logging.getLogger(JOB_LOGGER)
    handler, saved = StepTimes(), (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield handler.steps
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


@contextlib.contextmanager
def pii_keys():
    """Random PII keys in the environment while the job runs (it reads them there, as on a cluster); the
    previous values, if any, back afterwards (a test session's other tests use theirs)."""
    from lakehouse_jobs import pii

    names = (pii.HMAC_KEY_ENV, pii.ENCRYPTION_KEY_ENV)
    saved = {n: os.environ.get(n) for n in names}
    for n in names:
        os.environ[n] = base64.b64encode(secrets.token_bytes(pii.KEY_BYTES)).decode()
    try:
        yield
    finally:
        for n, value in saved.items():
            if value is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = value


def delta_version(path: str) -> int:
    """The table's latest version, from its _delta_log (local disk)."""
    return max(int(p.stem) for p in (Path(path) / "_delta_log").glob("*.json") if p.stem.isdigit())


def commits_since(path: str, version: int) -> list[dict]:
    """What each commit after `version` did, from its log entry: data files written (an `add` of a new
    path), deletion vectors written (an `add` of a path the commit also removes, with a deletion vector),
    files dropped, and the operation's row metrics."""
    commits = []
    for v in range(version + 1, delta_version(path) + 1):
        actions = [json.loads(line) for line in
                   (Path(path) / "_delta_log" / f"{v:020d}.json").read_text().splitlines() if line.strip()]
        adds = [a["add"] for a in actions if "add" in a]
        removed = {a["remove"]["path"] for a in actions if "remove" in a}
        info = next(a["commitInfo"] for a in actions if "commitInfo" in a)
        metrics = info.get("operationMetrics", {})
        new = [a for a in adds if a["path"] not in removed]
        commits.append({
            "version": v, "operation": info.get("operation"),
            "data_files_added": len(new), "data_bytes_added": sum(a["size"] for a in new),
            "deletion_vectors_written": sum(1 for a in adds if a["path"] in removed and a.get("deletionVector")),
            "files_dropped": len(removed - {a["path"] for a in adds}),
            **{k: int(metrics[k]) for k in ("numTargetRowsInserted", "numTargetRowsUpdated", "numTargetRowsDeleted",
                                           "numTargetRowsCopied", "numOutputRows") if k in metrics},
        })
    return commits


def commit_totals(commits: list[dict]) -> dict:
    return {"commits": len(commits), "operations": [c["operation"] for c in commits],
            **{k: sum(c.get(k, 0) for c in commits) for k in (
                "data_files_added", "data_bytes_added", "deletion_vectors_written", "files_dropped",
                "numTargetRowsInserted", "numTargetRowsUpdated", "numOutputRows")}}


def _stat(values: list[float]) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


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
        from lakehouse_jobs import member_merge

        before = {name: delta_version(p) for name, p in self.tables.items() if (Path(p) / "_delta_log").exists()}
        result_path = self.work / "lakehouse" / "_results" / f"{kind}-r{repeat or 0}.json"

        def apply() -> dict:
            with step_times() as steps:
                result = member_merge.main(["--manifest", batch["manifest"], "--tables-root", str(self.root),
                                            "--result-path", str(result_path)], spark=self.spark)
            return {"steps": dict(steps), "result": {k: v for k, v in result.items() if k != "commit_tag"}}

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
        entry = {"runs": len(mine), **{f: _stat([r[f] for r in mine]) for f in (
            "wall_s", "peak_rss_tree_mib", "cpu_ours_s", "cpu_other_s", "other_cpu_share")}}
        if key != "overwrite":
            steps = sorted({s for r in mine for s in r["steps"]})
            entry["steps_s"] = {s: _stat([r["steps"].get(s) for r in mine]) for s in steps}
            entry["commits"] = {t: {k: _stat([r["commits"][t][k] for r in mine]) for k in (
                "commits", "data_files_added", "data_bytes_added", "deletion_vectors_written", "files_dropped",
                "numTargetRowsInserted", "numTargetRowsUpdated")} for t in ("member", "dim_member")}
        else:
            entry["commits"] = {"overwrite": {k: _stat([r["commits"]["overwrite"][k] for r in mine])
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


def versions(spark: SparkSession) -> dict:
    out = {"python": platform.python_version(), "spark": spark.version,
           "java": spark.sparkContext._jvm.System.getProperty("java.version")}
    for dist in ("pyspark", "delta-spark", "pyarrow", "numpy", "lakehouse-jobs"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    jars = spark.sparkContext.getConf().get("spark.jars", "")
    out["delta_jar"] = next((Path(j).name for j in jars.split(",") if Path(j).name.startswith("delta-spark")), None)
    return out


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
        "## Targets (ratios of medians, same run)",
        "",
        "| target | measured | goal | met? | detail |",
        "|---|---|---|---|---|",
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
            "wall_s": _stat([first["wall_s"]]), "peak_rss_tree_mib": _stat([first["peak_rss_tree_mib"]]),
            "cpu_ours_s": _stat([first["cpu_ours_s"]]), "cpu_other_s": _stat([first["cpu_other_s"]]),
            "commits": {t: {k: _stat([first["commits"][t][k]]) for k in ("data_files_added",
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
def local_session(driver_memory: str, extra_conf: dict[str, str] | None = None) -> SparkSession:
    """local[2] with the conf the local runner and the tests use (dev/local_spark.py), plus `extra_conf`."""
    from pyspark.sql import SparkSession

    from dev.local_spark import local_spark_conf

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (SparkSession.builder.master("local[2]").appName("member_history_bench")
               .config("spark.driver.memory", driver_memory).config("spark.ui.showConsoleProgress", "false"))
    for key, value in (local_spark_conf() | (extra_conf or {})).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


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
        spark_info, version_info = spark_facts(spark), versions(spark)
    duration = time.monotonic() - t0
    runs = bench.runs
    measured = [r for r in runs if r["contender"] != "warmup"]
    shares = [r["other_cpu_share"] for r in measured]
    summary = summarize(runs)
    checks = [c for r in runs for c in r.get("checks", [])]
    report = {
        "benchmark": "member_history",
        "date": started_at.date().isoformat(),
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(duration, 1),
        "command": " ".join(["python -m benchmarks.member_history_bench", *(sys.argv[1:] if argv is None else argv)]),
        "members": args.members,
        "changed": data["changed"],
        "change_share": args.change_share,
        "repeats": args.repeats,
        "seed": args.seed,
        "machine": machine(),
        "versions": version_info,
        "spark": spark_info,
        "load": {"before": load_before, "after": loadavg(),
                 "other_cpu_share_median": statistics.median(shares), "other_cpu_share_max": max(shares)},
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
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        base = out / f"member-history-{report['date']}"
        base.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        base.with_suffix(".md").write_text(text)
        print(f"wrote {base}.json and {base}.md")
    if args.workdir is None:
        print("scratch data removed")
    print(f"took {duration / 60:.1f} min")
    return 0 if report["checks_passed"] else 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise SystemExit(main())
