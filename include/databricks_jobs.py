"""The JSON of each Databricks run the DAGs submit (`runs/submit` with one `spark_python_task`).

Every run is built here from per-environment settings, so the run sent to the local runner and the run
sent to a real workspace differ only by configured values, never by code path
(`tests/include/test_units.py` shows the difference). The operator that sends it, and what it adds at
execution time (the idempotency token), is `include/databricks_submit.py`.

Settings (environment variables, read when the DAG file is parsed; none is a secret; defaults in brackets):
- DATABRICKS_COMPUTE: `job_cluster`, `serverless` or `existing_cluster`
  [`existing_cluster` when DATABRICKS_EXISTING_CLUSTER_ID is set, else `job_cluster`].
- job cluster: DATABRICKS_SPARK_VERSION [16.4.x-scala2.12], DATABRICKS_NODE_TYPE [m6gd.large],
  DATABRICKS_MIN_WORKERS / DATABRICKS_MAX_WORKERS (autoscale) [1 / 4], DATABRICKS_POLICY_ID (instance
  profile, limits; its default values are applied) [none], DATABRICKS_SPARK_CONF (JSON object, over
  spark.sql.session.timeZone=UTC) [{}], DATABRICKS_TAGS (JSON object of extra cluster tags) [{}].
- existing cluster: DATABRICKS_EXISTING_CLUSTER_ID, an all-purpose cluster (development only).
- serverless: DATABRICKS_ENVIRONMENT_VERSION [2, Python 3.11 like the jobs], DATABRICKS_BUDGET_POLICY_ID
  (its tags attribute the cost) [none].
- DATABRICKS_RUN_TIMEOUT_SECONDS: the run's timeout_seconds, after which Databricks ends it [3000].
- SPARK_JOBS_ROOT: the workspace folder the bundle deploys `spark_jobs/` to (include/settings.py).

Libraries: each job names the PyPI packages it imports beyond the Databricks runtime. On a cluster they
are the task's `libraries`; on serverless they are the dependencies of the run's environment.
Tags: runs/submit has no run-level tags, so they go on the job cluster (`custom_tags`, which also tag
the cloud instances); an existing cluster keeps its own tags, serverless is tagged by its budget policy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

from include import layout, settings

COMPUTE_KINDS = ("job_cluster", "serverless", "existing_cluster")
# Same pins as requirements.in (a unit test keeps them equal), so the cluster runs the tested versions.
MEMBER_MERGE_PACKAGES = ("phonenumbers==9.0.43", "pycountry==26.2.16")
DEFAULT_SPARK_CONF = {"spark.sql.session.timeZone": "UTC"}
ENVIRONMENT_KEY = "default"


def compute_kind(env: Mapping[str, str]) -> str:
    kind = env.get("DATABRICKS_COMPUTE") or (
        "existing_cluster" if env.get("DATABRICKS_EXISTING_CLUSTER_ID") else "job_cluster"
    )
    if kind not in COMPUTE_KINDS:
        raise ValueError(f"DATABRICKS_COMPUTE={kind!r}: expected one of {', '.join(COMPUTE_KINDS)}")
    if kind == "existing_cluster" and not env.get("DATABRICKS_EXISTING_CLUSTER_ID"):
        raise ValueError("DATABRICKS_COMPUTE=existing_cluster needs DATABRICKS_EXISTING_CLUSTER_ID")
    return kind


def _json_object(env: Mapping[str, str], name: str) -> dict[str, str]:
    value = json.loads(env.get(name) or "{}")
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object, got {value!r}")
    return {str(k): str(v) for k, v in value.items()}


def job_cluster(task_key: str, env: Mapping[str, str]) -> dict:
    """A `new_cluster` created for the run and deleted after it."""
    cluster = {
        "spark_version": env.get("DATABRICKS_SPARK_VERSION", "16.4.x-scala2.12"),
        "node_type_id": env.get("DATABRICKS_NODE_TYPE", "m6gd.large"),
        "autoscale": {
            "min_workers": int(env.get("DATABRICKS_MIN_WORKERS", "1")),
            "max_workers": int(env.get("DATABRICKS_MAX_WORKERS", "4")),
        },
        # the jobs use spark._jvm (spark_jobs/README.md): dedicated access mode, not standard/shared
        "data_security_mode": "SINGLE_USER",
        "spark_conf": {**DEFAULT_SPARK_CONF, **_json_object(env, "DATABRICKS_SPARK_CONF")},
        "custom_tags": {
            "project": "lakehouse-ref",
            "job": task_key,
            # rendered by the operator (json is a template field): the Airflow task that paid for it
            "airflow_dag_id": "{{ ti.dag_id }}",
            "airflow_task_id": "{{ ti.task_id }}",
            **_json_object(env, "DATABRICKS_TAGS"),
        },
    }
    if env.get("DATABRICKS_POLICY_ID"):
        cluster["policy_id"] = env["DATABRICKS_POLICY_ID"]
        cluster["apply_policy_default_values"] = True
    return cluster


def spark_python_run(task_key: str, job_file: str, parameters: Sequence[str], *, run_name: str,
                     packages: Sequence[str] = (), classic_only: bool = False,
                     env: Mapping[str, str] | None = None) -> dict:
    """The runs/submit JSON of one `spark_jobs/<job_file>` task, on the configured compute.

    `classic_only`: the job needs a classic cluster (e.g. it uses `spark._jvm`), so serverless is refused
    when the DAG is parsed rather than failing on Databricks later.
    """
    env = os.environ if env is None else env
    kind = compute_kind(env)
    if kind == "serverless" and classic_only:
        raise ValueError(f"{job_file} needs a classic cluster: DATABRICKS_COMPUTE=serverless cannot run it")
    jobs_root = env.get("SPARK_JOBS_ROOT", settings.SPARK_JOBS_ROOT)
    task: dict = {
        "task_key": task_key,
        "spark_python_task": {
            "python_file": f"{jobs_root}/spark_jobs/{job_file}",
            "parameters": list(parameters),
        },
    }
    run: dict = {
        "run_name": run_name,
        "timeout_seconds": int(env.get("DATABRICKS_RUN_TIMEOUT_SECONDS", "3000")),
        "tasks": [task],
    }
    libraries = [{"pypi": {"package": p}} for p in packages]
    if kind != "serverless":
        if kind == "job_cluster":
            task["new_cluster"] = job_cluster(task_key, env)
        else:
            task["existing_cluster_id"] = env["DATABRICKS_EXISTING_CLUSTER_ID"]
        if libraries:
            task["libraries"] = libraries
    else:
        task["environment_key"] = ENVIRONMENT_KEY
        version = env.get("DATABRICKS_ENVIRONMENT_VERSION", "2")
        spec = {"environment_version": version, "dependencies": list(packages)}
        run["environments"] = [{"environment_key": ENVIRONMENT_KEY, "spec": spec}]
        if env.get("DATABRICKS_BUDGET_POLICY_ID"):
            run["budget_policy_id"] = env["DATABRICKS_BUDGET_POLICY_ID"]
    return run


def member_merge_run(batch_id: str, env: Mapping[str, str] | None = None) -> dict:
    """The run that MERGEs one landed member batch into the Delta table `member`.

    `batch_id` may be a Jinja template: the operator renders its `json` field.
    """
    return spark_python_run(
        "member_merge",
        "member_merge.py",
        [
            "--manifest", layout.manifest_uri("member", batch_id),
            "--table-path", layout.delta_table_uri("member"),
            "--quarantine-path", layout.delta_table_uri("member_quarantine"),
            "--result-path", layout.result_uri("member", batch_id),
        ],
        run_name=f"member_merge {batch_id}",
        packages=MEMBER_MERGE_PACKAGES,
        classic_only=True,
        env=env,
    )
