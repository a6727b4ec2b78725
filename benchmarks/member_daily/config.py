"""The daily benchmark's fixed choices: where its state lives, its contenders and loads, the issue's targets."""

from __future__ import annotations

import os
import re
from pathlib import Path

from benchmarks.harness.results import REPO

STATE = Path(os.environ.get("LAKEHOUSE_STATE", REPO / ".local"))
CACHE = Path(os.environ.get("LAKEHOUSE_CACHE", Path.home() / ".cache" / "lakehouse-ref"))
BENCH_VENV = STATE / "bench-venv"
BENCH_LOCK = REPO / "requirements" / "bench.lock"
JDBC_ARTIFACT = "com.mysql:mysql-connector-j:26.10.0"
JDBC_JAR = CACHE / "bench-jars" / "mysql-connector-j-26.10.0.jar"
CHANGE_SHARE = 0.05
SAMPLE_S = 0.25
DAG_ID = "member_pipeline"
STEPS = ("first", "replay", "change")
STEP_LABELS = {"first": "first load (A)", "replay": "unchanged replay (A)", "change": "5% change (B)"}
JOB_TABLES = ("member", "dim_member", "member_quarantine", "member_batches")
SAME_WORK_TABLES = ("member", "dim_member", "member_quarantine")
STEP_LINE = re.compile(r"lakehouse_jobs\.member\.job: step (\w+): ([0-9.]+) s")

CONTENDERS = {
    "dag": "ours: daily run through the DAG (Airflow)",
    "job": "ours: extract + Spark job, no Airflow",
    "dlt": "dlt sql_table (ConnectorX) -> Delta merge",
    "notebook": "notebook: spark.read.jdbc + Delta MERGE",
    "same_work": "same-work notebook: our rules, quarantine, encryption, SCD2 MERGE",
}
# issue 22 (replay, change) and the issue before it (first): ours through the DAG as a ratio to dlt in the same run
TARGETS_VS_DLT = {"replay": 1.0, "change": 3.0, "first": 5.0}
# issue 22: ours (through the DAG) as a ratio to the same-work notebook in the same run at the largest size
TARGETS_VS_SAME_WORK = {"change": 0.5, "first": 0.5}
JOB_PEAK_GIB = 3.0  # issue 22: the whole spark-submit tree
AIRFLOW_SHARE = 0.10
