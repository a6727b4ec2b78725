"""The JSON of each Databricks run the DAGs submit (`runs/submit` with a `spark_python_task`).

Built in one place from per-environment settings, so the run sent to the local runner and the run sent to
a real workspace differ only by configured values (cluster, workspace path), never by code path.

Cluster choice, from the environment:
- DATABRICKS_EXISTING_CLUSTER_ID set: run on that all-purpose cluster (development);
- otherwise a job cluster (`new_cluster`) from DATABRICKS_SPARK_VERSION, DATABRICKS_NODE_TYPE,
  DATABRICKS_MIN_WORKERS / DATABRICKS_MAX_WORKERS and optional DATABRICKS_POLICY_ID.
"""

from __future__ import annotations

import os

from include import layout, settings

# Libraries the jobs import beyond the Databricks runtime; same pins as requirements.lock.
JOB_LIBRARIES = [{"pypi": {"package": "phonenumbers==9.0.43"}}, {"pypi": {"package": "pycountry==26.2.16"}}]


def cluster_spec(env: dict[str, str] | None = None) -> dict:
    env = os.environ if env is None else env
    if env.get("DATABRICKS_EXISTING_CLUSTER_ID"):
        return {"existing_cluster_id": env["DATABRICKS_EXISTING_CLUSTER_ID"]}
    cluster = {
        "spark_version": env.get("DATABRICKS_SPARK_VERSION", "16.4.x-scala2.12"),
        "node_type_id": env.get("DATABRICKS_NODE_TYPE", "m6gd.large"),
        "autoscale": {
            "min_workers": int(env.get("DATABRICKS_MIN_WORKERS", "1")),
            "max_workers": int(env.get("DATABRICKS_MAX_WORKERS", "4")),
        },
        "spark_conf": {"spark.sql.session.timeZone": "UTC"},
        "custom_tags": {"project": "lakehouse-ref"},
    }
    if env.get("DATABRICKS_POLICY_ID"):
        cluster["policy_id"] = env["DATABRICKS_POLICY_ID"]
    return {"new_cluster": cluster}


def spark_python_run(task_key: str, job_file: str, parameters: list[str], *, run_name: str,
                     timeout_seconds: int = 3600, env: dict[str, str] | None = None) -> dict:
    return {
        "run_name": run_name,
        "timeout_seconds": timeout_seconds,
        "tasks": [
            {
                "task_key": task_key,
                "spark_python_task": {
                    "python_file": f"{settings.SPARK_JOBS_ROOT}/spark_jobs/{job_file}",
                    "parameters": parameters,
                },
                "libraries": JOB_LIBRARIES,
                **cluster_spec(env),
            }
        ],
    }


def member_merge_run(batch_id: str, env: dict[str, str] | None = None) -> dict:
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
        env=env,
    )
