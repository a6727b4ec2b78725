"""Turn a ``jobs/runs/submit`` request into a Run: validate it, map python files into the checkout.

Both request shapes the provider sends are accepted: the single-task form (``spark_python_task`` plus
cluster fields at the top level) and the ``tasks[]`` form with ``depends_on``. Cluster and environment
fields are recorded and echoed back, but every task runs on local Spark.

Problems Databricks would only report when the run starts (a python file that is not there, a task
type the runner cannot run) are refused here with 400 INVALID_PARAMETER_VALUE: locally that saves a
10-second Spark start-up, and the message names the path mapping that went wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dev.databricks_runner.config import RunnerConfig
from dev.databricks_runner.errors import ApiError, as_int
from dev.databricks_runner.spark import cluster_spark_conf
from dev.databricks_runner.state import RUN_IF, Run, TaskRun

# Top-level fields of the single-task form that belong to its one task.
SINGLE_TASK_FIELDS = (
    "spark_python_task", "spark_jar_task", "notebook_task", "spark_submit_task", "pipeline_task",
    "dbt_task", "python_wheel_task", "sql_task", "new_cluster", "existing_cluster_id", "libraries",
    "environment_key",
)  # fmt: skip
OTHER_TASK_TYPES = tuple(f for f in SINGLE_TASK_FIELDS if f.endswith("_task") and f != "spark_python_task")
# Run-level fields recorded and echoed back by runs/get.
RECORDED_RUN_FIELDS = (
    "git_source", "job_clusters", "environments", "access_control_list", "performance_target",
)  # fmt: skip
MAX_TASKS = 1000


def invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def idempotency_token(body: dict[str, Any]) -> str | None:
    token = body.get("idempotency_token")
    if token is not None and (not isinstance(token, str) or not 0 < len(token) <= 64):
        raise invalid("idempotency_token must be a string of 1 to 64 characters")
    return token


def build_run(body: dict[str, Any], new_id: Callable[[], int], config: RunnerConfig) -> Run:
    run_name = str(body.get("run_name") or "Untitled")
    timeout = as_int(body.get("timeout_seconds", 0), "timeout_seconds")
    token = idempotency_token(body)
    if "tasks" in body:
        specs = body["tasks"]
        if not isinstance(specs, list) or not specs or not all(isinstance(s, dict) for s in specs):
            raise invalid("tasks must be a non-empty list of task objects")
        if len(specs) > MAX_TASKS:
            raise invalid(f"a run may have at most {MAX_TASKS} tasks")
    else:
        # Databricks names the one task of the single-task form after the run
        specs = [{"task_key": run_name, **{f: body[f] for f in SINGLE_TASK_FIELDS if f in body}}]
    job_clusters = {c.get("job_cluster_key"): c.get("new_cluster") for c in body.get("job_clusters") or []}

    run_id, job_id = new_id(), new_id()
    tasks = [_build_task(spec, new_id, body, job_clusters, config) for spec in specs]
    return Run(
        run_id=run_id,
        job_id=job_id,
        run_name=run_name,
        tasks=_in_dependency_order(tasks),
        timeout_seconds=timeout,
        idempotency_token=token,
        extra={f: body[f] for f in RECORDED_RUN_FIELDS if f in body},
    )


def _build_task(
    spec: dict, new_id: Callable[[], int], body: dict, job_clusters: dict, config: RunnerConfig
) -> TaskRun:
    key = spec.get("task_key")
    if not isinstance(key, str) or not key:
        raise invalid("every task needs a task_key")
    if other := [f for f in OTHER_TASK_TYPES if f in spec]:
        raise invalid(f"task {key}: the local runner runs only spark_python_task, not {', '.join(other)}")
    python_task = spec.get("spark_python_task")
    if not isinstance(python_task, dict) or not isinstance(python_task.get("python_file"), str):
        raise invalid(f"task {key}: spark_python_task.python_file is required")
    parameters = python_task.get("parameters") or []
    if not isinstance(parameters, list):
        raise invalid(f"task {key}: spark_python_task.parameters must be a list")
    deps = spec.get("depends_on") or []
    if not isinstance(deps, list) or not all(isinstance(d, dict) and "task_key" in d for d in deps):
        raise invalid(f"task {key}: depends_on must be a list of {{'task_key': ...}}")
    run_if = spec.get("run_if") or "ALL_SUCCESS"
    if run_if not in RUN_IF:
        raise invalid(f"task {key}: run_if must be one of {', '.join(RUN_IF)}")
    cluster = spec.get("new_cluster") or job_clusters.get(spec.get("job_cluster_key"))
    local_file = resolve_python_file(
        python_task["python_file"], python_task.get("source"), body.get("git_source"), config
    )
    return TaskRun(
        run_id=new_id(),
        task_key=key,
        spec=spec,
        local_file=str(local_file),
        parameters=[str(p) for p in parameters],
        depends_on=[str(d["task_key"]) for d in deps],
        run_if=run_if,
        timeout_seconds=as_int(spec.get("timeout_seconds", 0), f"tasks[{key}].timeout_seconds"),
        spark_conf=cluster_spark_conf(cluster),
    )


def resolve_python_file(python_file: str, source: str | None, git_source: Any, config: RunnerConfig) -> Path:
    """Map a python_file to a file of the checkout.

    - ``${SPARK_JOBS_ROOT}/x/y.py`` (a workspace path) -> ``<workspace-dir>/x/y.py``
    - a relative path (``source: GIT``, or a ``git_source`` on the run) -> ``<workspace-dir>/<path>``
    """
    root = config.spark_jobs_root
    from_git = source == "GIT" or (git_source and source != "WORKSPACE")
    if root and python_file.startswith(root + "/"):
        relative = python_file[len(root) + 1 :]
    elif not python_file.startswith("/") and ":" not in python_file.split("/")[0]:
        relative = python_file  # repo-relative, as Databricks resolves it against git_source
    elif from_git:
        raise invalid(f"python_file {python_file!r}: with source GIT the path must be repository-relative")
    else:
        raise invalid(
            f"python_file {python_file!r} is not under SPARK_JOBS_ROOT ({root or 'unset'}), the workspace "
            f"prefix the local runner maps to {config.workspace_dir}, and is not a repository-relative path"
        )
    path = (config.workspace_dir / relative).resolve()
    if not path.is_relative_to(config.workspace_dir):
        raise invalid(f"python_file {python_file!r} points outside {config.workspace_dir}")
    if not path.is_file():
        raise invalid(f"python_file {python_file!r} maps to {path}, which does not exist")
    return path


def _in_dependency_order(tasks: list[TaskRun]) -> list[TaskRun]:
    """Tasks sorted so each comes after its dependencies, otherwise in the order submitted."""
    by_key: dict[str, TaskRun] = {}
    for task in tasks:
        if task.task_key in by_key:
            raise invalid(f"task_key {task.task_key} is used twice")
        by_key[task.task_key] = task
    for task in tasks:
        if missing := [d for d in task.depends_on if d not in by_key]:
            raise invalid(f"task {task.task_key} depends on unknown task(s) {', '.join(missing)}")
    ordered: list[TaskRun] = []
    done: set[str] = set()
    while len(ordered) < len(tasks):
        ready = [t for t in tasks if t.task_key not in done and set(t.depends_on) <= done]
        if not ready:
            raise invalid("depends_on has a cycle")
        ordered += ready
        done.update(t.task_key for t in ready)
    return ordered
