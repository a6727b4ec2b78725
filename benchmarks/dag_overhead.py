"""What a small member_pipeline run is made of: one DAG run on the running stack, as a timeline.

    dev/stack.sh run python -m benchmarks.dag_overhead                 # the demo's table (SEED_ROWS members)
    dev/stack.sh run python -m benchmarks.dag_overhead --runs 3 --out -

Triggers `member_pipeline` as a user does and waits for it, then reads back, from Airflow's REST API, when
each task instance was queued, started and ended (the gaps between them are the scheduler's and executor's
latency), and from the Databricks Jobs API (runs/get, runs/get-output) when the merge run started, how long
its setup took (the task's library environment), and, from the driver log's own timestamps, when the job's
code started (so spark-submit and SparkSession start are separated from the job's work) and ended. What is
left of the merge task is waiting: the trigger's polling interval and handing the task back to a worker.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import requests

from dev.airflow_api import AirflowApi, trigger
from include import settings

DAG_ID = "member_pipeline"
MAINTENANCE_DAG_ID = "lakehouse_maintenance"
RESULTS = Path(__file__).parent / "results"
LOG_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}) INFO lakehouse_jobs\.member\.job: (.*)$", re.M)
TASKS = ("extract_members", "wait_for_manifest", "merge_members", "reconcile")


def _ts(value: str | None) -> float | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def databricks_run(run_id: int) -> dict:
    """runs/get and runs/get-output of the merge run, from the Jobs API the DAG used."""
    conn = urlparse(os.environ["AIRFLOW_CONN_DATABRICKS_DEFAULT"])
    base = f"http://{conn.hostname}:{conn.port}"
    headers = {"Authorization": f"Bearer {conn.password}"}
    run = requests.get(f"{base}/api/2.2/jobs/runs/get", params={"run_id": run_id}, headers=headers, timeout=30).json()
    task = run["tasks"][0]
    output = requests.get(f"{base}/api/2.2/jobs/runs/get-output", params={"run_id": task["run_id"]},
                          headers=headers, timeout=30).json()
    return {"run": run, "task": task, "logs": output.get("logs", "")}


def timeline(api: AirflowApi, run_id: str) -> dict:
    """Seconds from the trigger for every boundary of the run, and the durations derived from them."""
    dag_run = api.get(f"dags/{DAG_ID}/dagRuns/{run_id}").json()
    instances = api.get(f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
    tis = {ti["task_id"]: ti for ti in instances}
    t0 = _ts(dag_run["queued_at"])
    rel = {}
    for task in TASKS:
        ti = tis[task]
        rel[task] = {k: round(_ts(ti[f]) - t0, 2) for k, f in (("queued", "queued_when"), ("start", "start_date"),
                                                              ("end", "end_date")) if ti.get(f)}
    xcom = api.get(f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/merge_members/xcomEntries/run_id").json()
    db = databricks_run(int(xcom["value"]))
    task = db["task"]
    lines = [(dt.datetime.strptime(t, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=dt.timezone.utc).timestamp(), msg)
             for t, msg in LOG_TIME.findall(db["logs"])]
    run_start = task["start_time"] / 1000
    merge = {
        "submitted_to_run_start": round(run_start - t0 - rel["merge_members"]["start"], 2),
        "run_setup_s": round(task["setup_duration"] / 1000, 2),
        # spark-submit: JVM, SparkSession, the wheel's imports, up to the job's first log line (the manifest read)
        "spark_start_s": round(lines[0][0] - run_start - task["setup_duration"] / 1000, 2) if lines else None,
        "job_code_s": round(lines[-1][0] - lines[0][0], 2) if lines else None,
        "job_end_to_run_end_s": round(task["end_time"] / 1000 - lines[-1][0], 2) if lines else None,
        "run_end_to_task_end_s": round(t0 + rel["merge_members"]["end"] - task["end_time"] / 1000, 2),
        "steps": {m[1]: float(m[2]) for _, msg in lines if (m := re.match(r"step (\w+): ([0-9.]+) s", msg))},
    }
    total = round(_ts(dag_run["end_date"]) - t0, 2)
    busy = sum(rel[t]["end"] - rel[t]["start"] for t in TASKS)
    return {"run_id": run_id, "total_s": total, "tasks": rel,
            "task_s": {t: round(rel[t]["end"] - rel[t]["start"], 2) for t in TASKS},
            "between_tasks_s": round(total - busy, 2), "merge": merge}


def markdown(report: dict) -> str:
    runs = report["runs"]

    def med(get) -> str:
        values = [v for v in (get(r) for r in runs) if v is not None]
        return f"{statistics.median(values):.1f}" if values else "–"

    rows = [
        ("DAG run, trigger to end", lambda r: r["total_s"]),
        ("between tasks (scheduling, queueing)", lambda r: r["between_tasks_s"]),
        *[(f"task {t}", lambda r, t=t: r["task_s"][t]) for t in TASKS],
        ("merge: submit to run start", lambda r: r["merge"]["submitted_to_run_start"]),
        ("merge: run setup (library environment)", lambda r: r["merge"]["run_setup_s"]),
        ("merge: spark-submit, JVM and SparkSession start", lambda r: r["merge"]["spark_start_s"]),
        ("merge: the job's code", lambda r: r["merge"]["job_code_s"]),
        ("merge: job end to run terminated (JVM stop)", lambda r: r["merge"]["job_end_to_run_end_s"]),
        ("merge: run end to task end (poll, resume)", lambda r: r["merge"]["run_end_to_task_end_s"]),
    ]
    lines = [f"# member_pipeline overhead, {report['date']}", "",
             f"`{report['command']}`: {len(runs)} run(s) of the DAG on {report['rows']:,} members; medians, "
             "seconds. Settings: " + ", ".join(f"{k}={v}" for k, v in report["settings"].items()) + ".", "",
             "| part | s |", "|---|---:|"]
    lines += [f"| {name} | {med(get)} |" for name, get in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS), help="results directory; - for none")
    args = parser.parse_args(argv)
    api = AirflowApi()
    api.wait_for_dag(DAG_ID)
    api.wait_until_idle(DAG_ID)
    runs = []
    for i in range(args.runs):
        # a verified run's Assets start lakehouse_maintenance, which holds the member tables' pool slot for a
        # minute or two: a run triggered meanwhile would wait for it, and that wait is not overhead
        api.wait_until_idle(MAINTENANCE_DAG_ID)
        run_id = f"overhead__{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}_{i}"
        trigger(DAG_ID, run_id)
        state = api.wait_for_run(DAG_ID, run_id, timeout=1800)
        if state != "success":
            print(f"{run_id}: {state}", file=sys.stderr)
            return 1
        time.sleep(2)  # the API's end_date lands a moment after the state
        runs.append(timeline(api, run_id))
        print(json.dumps({k: runs[-1][k] for k in ("run_id", "total_s", "task_s")}), flush=True)
    db = settings.DatabricksSettings.from_env(os.environ)
    extract = api.get(f"dags/{DAG_ID}/dagRuns/{runs[-1]['run_id']}/taskInstances/extract_members/xcomEntries/"
                      "return_value").json()["value"]
    rows = (json.loads(extract) if isinstance(extract, str) else extract).get("row_count")
    report = {"date": dt.date.today().isoformat(), "command": "python -m benchmarks.dag_overhead "
              + " ".join(sys.argv[1:] if argv is None else argv), "rows": rows, "runs": runs,
              "settings": {"deferrable": db.deferrable, "poll_seconds": db.poll_seconds, "sensor_poke_s": 15}}
    text = markdown(report)
    print(text)
    if args.out != "-":
        base = Path(args.out) / f"dag-overhead-{report['date']}"
        base.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        base.with_suffix(".md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
