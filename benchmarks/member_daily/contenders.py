"""The five contenders, each a day's load of the scratch source into its own target, run under the bench's
probe (benchmarks.member_daily.runner.Bench):

- dag: this project's daily run, `member_pipeline` triggered through the Airflow REST API of the benchmark's
  own Airflow (airflow.PrivateAirflow);
- job: the same extract (`python -m include.extract`) in a child process, then the same run JSON sent to the
  runner's runs/submit, polled to its end: no Airflow;
- dlt: dlt `sql_table(backend="connectorx")` merging into a Delta table on the same MinIO
  (benchmarks/dlt_contender.py, in the venv .local/bench-venv);
- notebook: `spark.read.jdbc` in partitions, then a Delta MERGE, with spark-submit in local[2] with the job's
  driver memory (benchmarks/notebook_contender.py);
- same_work: the notebook that does our job's work (rules, quarantine, encryption, SCD2), every row every
  day, the same way (benchmarks/same_work_contender.py).

Each `load_<contender>(bench, step, run)` returns the load's measurements; it raises on a failed load.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.harness.results import REPO
from benchmarks.harness.stack import log_tail
from benchmarks.member_daily.config import BENCH_VENV, DAG_ID, JDBC_JAR, JOB_TABLES, SAME_WORK_TABLES, STATE
from benchmarks.member_daily.databricks import NO_RUN

if TYPE_CHECKING:
    from benchmarks.member_daily.runner import Bench


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def tables(contender: str) -> list[str]:
    if contender in ("dag", "job"):
        return [f"delta/{t}" for t in JOB_TABLES]
    if contender == "dlt":
        return ["dlt/member_daily/member"]
    if contender == "same_work":
        return [f"same_work/{t}" for t in SAME_WORK_TABLES]
    return ["notebook/member"]


def reset(bench: Bench, contender: str) -> None:
    """A fresh, empty target (and, for ours, no landed batch, lease or extract state)."""
    lake = bench.store.lakehouse
    if contender in ("dag", "job"):
        bench.store.delete(lake, "delta/")
        bench.store.delete(lake, "_results/")
        bench.store.delete(lake, "_state/")  # the change state the next extract compares with
        bench.store.delete(bench.store.landing, "member/")
    elif contender == "dlt":
        bench.store.delete(lake, "dlt/")
        shutil.rmtree(bench.tmp / "dlt-pipelines", ignore_errors=True)
    elif contender == "same_work":
        bench.store.delete(lake, "same_work/")
    else:
        bench.store.delete(lake, "notebook/")


def load_dag(bench: Bench, step: str, run: dict) -> dict:
    af = bench.airflow
    run_id = f"daily_bench__{bench.stamp}__{run['rows']}__r{run['repeat']}__{step}"
    # the Airflow components, their workers and task processes; the runner's task trees come separately
    with bench.probe({"airflow": af.pids}) as probe:
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
    skipped = tis["merge_members"]["state"] == "skipped"  # an unchanged day: no Databricks run at all
    databricks = NO_RUN if skipped else bench.runner.facts(
        bench.runner.get(int(af.xcom(run_id, "merge_members", "run_id"))))
    extracted = af.xcom(run_id, "extract_members", "return_value")
    dag_wall = (_ts(dag_run["end_date"]) - _ts(dag_run["queued_at"]))
    tasks = {t: {"s": round(_ts(ti["end_date"]) - _ts(ti["start_date"]), 1), "tries": ti["try_number"]}
             for t, ti in tis.items()}
    # every task run of this DAG run's Databricks runs: retries included
    task_dirs = set() if skipped else {bench.runner.task_dir(databricks["task_run_id"])}
    out = bench.measured(probe, ("airflow",), task_dirs)
    extract_s = tasks["extract_members"]["s"]
    out.update({
        "dag_run_id": run_id, "batch_id": extracted["batch_id"], "dag_wall_s": round(dag_wall, 2),
        "tasks_s": tasks, "databricks": databricks,
        "airflow_s": round(dag_wall - extract_s - databricks["run_s"], 2),
        "airflow_share": round((dag_wall - extract_s - databricks["run_s"]) / dag_wall, 3),
        "airflow_peak_rss_mib": probe.peak_mib(("airflow",)),
    })
    return out


def load_job(bench: Bench, step: str, run: dict) -> dict:
    day = dt.datetime.now(dt.timezone.utc).date()
    batch_id = f"extract_date={day:%Y-%m-%d}"
    payload = bench.run_json(batch_id)
    payload["run_name"] = f"member_daily_bench {batch_id} {step}"
    log = bench.tmp / f"job-{run['rows']}-r{run['repeat']}-{step}.log"
    run_id = f"daily_bench__{bench.stamp}__job__{run['rows']}__r{run['repeat']}__{step}"
    extract_cmd = [sys.executable, "-m", "include.extract", "--date", day.isoformat(), "--run-id", run_id]
    with open(log, "ab") as f:
        with bench.probe({"child": []}) as probe:
            started = time.monotonic()
            proc = subprocess.Popen(extract_cmd, cwd=REPO, env=bench.child_env(), stdout=f, stderr=subprocess.STDOUT)
            probe.groups["child"] = [proc.pid]
            proc.wait()
            extract_s = time.monotonic() - started
            if proc.returncode:
                raise RuntimeError(f"the extract exited {proc.returncode}:\n{log_tail(log)}")
            submitted = time.monotonic()
            db_run = bench.runner.wait(bench.runner.submit(payload))
            job_wall = time.monotonic() - submitted
    databricks = bench.runner.facts(db_run)
    if databricks["state"] != "SUCCESS":
        raise RuntimeError(f"Databricks run {databricks['run_id']} ended {databricks['state']}: "
                           f"{databricks['message']}")
    out = bench.measured(probe, ("child",), {bench.runner.task_dir(databricks["task_run_id"])})
    out.update({"batch_id": batch_id, "extract_s": round(extract_s, 2), "submit_to_end_s": round(job_wall, 2),
                "databricks": databricks})
    return out


def load_dlt(bench: Bench, step: str, run: dict) -> dict:
    result = bench.tmp / "dlt-result.json"
    cmd = [str(BENCH_VENV / "bin" / "python"), str(REPO / "benchmarks" / "dlt_contender.py"),
           "--database", bench.source.live_db, "--bucket-url", f"s3://{bench.store.lakehouse}/dlt",
           "--pipelines-dir", str(bench.tmp / "dlt-pipelines"), "--result", str(result),
           "--connectorx-mode", bench.args.dlt_connectorx_mode]
    e = {k: v for k, v in bench.child_env().items() if not k.startswith(("AIRFLOW", "PYTHON"))}
    _, probe = bench.child(cmd, e, bench.tmp / f"dlt-{run['rows']}-r{run['repeat']}-{step}.log")
    facts = json.loads(result.read_text())
    bench.versions_dlt = facts.pop("versions")
    return {**bench.measured(probe, ("child",)), "contender_facts": facts}


def notebook_conf(bench: Bench) -> Path:
    from dev.databricks_runner.spark import cluster_spark_conf, write_properties
    from dev.local_spark import local_spark_conf


    conf = local_spark_conf()
    conf["spark.jars"] += f",{JDBC_JAR}"
    conf["spark.log.level"] = "WARN"
    conf.update(cluster_spark_conf(cluster_spec(), "2g"))  # the job's driver memory, from its settings
    path = bench.tmp / "notebook.properties"
    write_properties(path, conf)
    return path


def cluster_spec() -> dict:
    """The job cluster the DAG's run JSON asks for, from the same settings (DATABRICKS_NODE_TYPE...)."""
    from include.databricks_runs import job_cluster
    from include.settings import DatabricksSettings


    return job_cluster("member_merge", DatabricksSettings.from_env(os.environ))


def driver_memory() -> str:
    """The job's driver memory as the runner derives it from the cluster spec (the node type's memory)."""
    from dev.databricks_runner.spark import cluster_spark_conf


    return cluster_spark_conf(cluster_spec(), "2g")["spark.driver.memory"]


def load_notebook(bench: Bench, step: str, run: dict) -> dict:
    runtime = STATE / "databricks-runtime" / "bin"
    result = bench.tmp / "notebook-result.json"
    cmd = [str(runtime / "spark-submit"), "--master", "local[2]", "--name", "notebook_contender",
           "--properties-file", str(notebook_conf(bench)), str(REPO / "benchmarks" / "notebook_contender.py"),
           "--database", bench.source.live_db, "--table-path", f"s3://{bench.store.lakehouse}/notebook/member",
           "--partitions", str(bench.args.notebook_partitions), "--result", str(result)]
    e = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LAKEHOUSE_PII_", "PYTHONPATH"))}
    e.update({"PYSPARK_PYTHON": str(runtime / "python"), "PYSPARK_DRIVER_PYTHON": str(runtime / "python"),
              "SPARK_LOCAL_IP": "127.0.0.1"})
    e.pop("SPARK_HOME", None)
    _, probe = bench.child(cmd, e, bench.tmp / f"notebook-{run['rows']}-r{run['repeat']}-{step}.log")
    return {**bench.measured(probe, ("child",)), "contender_facts": json.loads(result.read_text())}


def load_same_work(bench: Bench, step: str, run: dict) -> dict:
    """The same-work notebook, spark-submit as the notebook's (runtime, local[2], the job's driver memory),
    its Python the project's (lakehouse_jobs with phonenumbers, email-validator and pycountry: the libraries
    a cluster gets from the jobs wheel), with the PII keys of our job in its environment."""
    runtime = STATE / "databricks-runtime" / "bin"
    result = bench.tmp / "same-work-result.json"
    cmd = [str(runtime / "spark-submit"), "--master", "local[2]", "--name", "same_work_contender",
           "--properties-file", str(notebook_conf(bench)), str(REPO / "benchmarks" / "same_work_contender.py"),
           "--database", bench.source.live_db, "--tables-root", f"s3://{bench.store.lakehouse}/same_work",
           "--result", str(result)]
    e = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHONPATH"))}
    e.update({"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
              "SPARK_LOCAL_IP": "127.0.0.1"})
    e.pop("SPARK_HOME", None)
    _, probe = bench.child(cmd, e, bench.tmp / f"same_work-{run['rows']}-r{run['repeat']}-{step}.log")
    facts = json.loads(result.read_text())
    run["batch_id"] = facts["batch_id"]
    return {**bench.measured(probe, ("child",)), "contender_facts": facts}


LOADS = {"dag": load_dag, "job": load_job, "dlt": load_dlt, "notebook": load_notebook, "same_work": load_same_work}
