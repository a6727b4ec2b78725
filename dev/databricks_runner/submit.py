"""Turn a ``jobs/runs/submit`` request into a Run: validate it, map workspace paths into the workspace folder.

Both request shapes the provider sends are accepted: the single-task form (the task fields plus cluster
fields at the top level) and the ``tasks[]`` form with ``depends_on``. A task is a ``spark_python_task``
or a ``python_wheel_task``; its libraries come from its ``libraries`` (``whl`` and ``pypi``) or, on
serverless, from the ``dependencies`` of its ``environment_key``'s environment. Cluster settings are
recorded and echoed back, but every task runs on local Spark; of its cluster, only ``spark.sql.*`` /
``spark.databricks.delta.*`` settings, the driver's memory and ``spark_env_vars`` (checked here, their
secret references resolved when the task starts: secrets.py) reach the task.

Problems the runner cannot mimic (other task or library types, paths outside the workspace, Git
sources) and a python file that is not there are refused here with 400 INVALID_PARAMETER_VALUE: locally
that saves a 10-second Spark start-up, and the message names the path mapping that went wrong. A missing
library file is not: a workspace fails the run at library installation, and so does the runner.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from dev.databricks_runner import secrets
from dev.databricks_runner.config import WORKSPACE_ROOTS, RunnerConfig
from dev.databricks_runner.errors import ApiError, as_int
from dev.databricks_runner.spark import cluster_spark_conf
from dev.databricks_runner.state import RUN_IF, Run, TaskRun

# Top-level fields of the single-task form that belong to its one task.
SINGLE_TASK_FIELDS = (
    "spark_python_task", "spark_jar_task", "notebook_task", "spark_submit_task", "pipeline_task",
    "dbt_task", "python_wheel_task", "sql_task", "new_cluster", "existing_cluster_id", "libraries",
    "environment_key",
)  # fmt: skip
TASK_TYPES = ("spark_python_task", "python_wheel_task")
OTHER_TASK_TYPES = tuple(f for f in SINGLE_TASK_FIELDS if f.endswith("_task") and f not in TASK_TYPES)
# Run-level fields recorded and echoed back by runs/get.
RECORDED_RUN_FIELDS = (
    "git_source", "job_clusters", "environments", "access_control_list", "performance_target",
)  # fmt: skip
MAX_TASKS = 1000
# A name the shell can export: a cluster exports each of its spark_env_vars (`export X='Y'`). Used with
# fullmatch(): a "$" anchor would let a name with a final newline through.
ENV_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

EMBEDDED_REFERENCE = (
    "task %s: spark_env_vars.%s holds '{{secrets/' inside a longer value: it reaches the job as written, "
    "unresolved (Databricks resolves only a whole value {{secrets/<scope>/<key>}})"
)

log = logging.getLogger(__name__)


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
    environments = {e.get("environment_key"): e.get("spec") or {} for e in body.get("environments") or []}

    run_id, job_id = new_id(), new_id()
    tasks = [_build_task(spec, new_id, body, job_clusters, environments, config) for spec in specs]
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
    spec: dict,
    new_id: Callable[[], int],
    body: dict,
    job_clusters: dict,
    environments: dict,
    config: RunnerConfig,
) -> TaskRun:
    key = spec.get("task_key")
    if not isinstance(key, str) or not key:
        raise invalid("every task needs a task_key")
    if other := [f for f in OTHER_TASK_TYPES if f in spec]:
        raise invalid(f"task {key}: the local runner runs only {' and '.join(TASK_TYPES)}, not {', '.join(other)}")
    deps = spec.get("depends_on") or []
    if not isinstance(deps, list) or not all(isinstance(d, dict) and "task_key" in d for d in deps):
        raise invalid(f"task {key}: depends_on must be a list of {{'task_key': ...}}")
    run_if = spec.get("run_if") or "ALL_SUCCESS"
    if run_if not in RUN_IF:
        raise invalid(f"task {key}: run_if must be one of {', '.join(RUN_IF)}")
    cluster = spec.get("new_cluster") or job_clusters.get(spec.get("job_cluster_key"))
    local_file, wheel, parameters = _task_entry(spec, key, body.get("git_source"), config)
    return TaskRun(
        run_id=new_id(),
        task_key=key,
        spec=spec,
        local_file=local_file,
        wheel=wheel,
        parameters=parameters,
        libraries=_libraries(spec, key, environments, config),
        depends_on=[str(d["task_key"]) for d in deps],
        run_if=run_if,
        timeout_seconds=as_int(spec.get("timeout_seconds", 0), f"tasks[{key}].timeout_seconds"),
        spark_conf=cluster_spark_conf(cluster, config.default_driver_memory),
        spark_env_vars=_spark_env_vars(cluster, key),
    )


def _spark_env_vars(cluster: Any, key: str) -> dict[str, str]:
    """The cluster's ``spark_env_vars``, checked: names a shell can export (a cluster exports each pair as
    ``export X='Y'``), string values (numbers are stringified, as the provider does). Secret references
    stay unresolved until the task starts. Messages name variables, never values."""
    env_vars = cluster.get("spark_env_vars") if isinstance(cluster, dict) else None
    if env_vars is None:
        return {}
    if not isinstance(env_vars, dict):
        raise invalid(f"task {key}: new_cluster.spark_env_vars must be an object of name: value")
    checked = {}
    for name, value in env_vars.items():
        if not isinstance(name, str) or not ENV_VAR_NAME.fullmatch(name):
            raise invalid(
                f"task {key}: spark_env_vars name {name!r} is not an environment variable name "
                "(a letter or '_', then letters, digits or '_')"
            )
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise invalid(f"task {key}: spark_env_vars.{name} must be a string")
        value = str(value)
        if "\0" in value:
            raise invalid(f"task {key}: spark_env_vars.{name} contains a NUL character")
        if secrets.looks_like_reference(value) and not secrets.reference(value):
            raise invalid(f"task {key}: spark_env_vars.{name} is not a secret reference {{{{secrets/<scope>/<key>}}}}")
        if "{{secrets/" in value and not secrets.reference(value):
            # Databricks resolves a reference only as the whole value; this one reaches the job as written
            log.warning(EMBEDDED_REFERENCE, key, name)
        checked[name] = value
    return checked


def _task_entry(
    spec: dict, key: str, git_source: Any, config: RunnerConfig
) -> tuple[str | None, list[str] | None, list[str]]:
    """(local python file, None, parameters) of a spark_python_task, (None, [package, entry point],
    parameters) of a python_wheel_task."""
    if isinstance(wheel_task := spec.get("python_wheel_task"), dict):
        package, entry_point = wheel_task.get("package_name"), wheel_task.get("entry_point")
        if not (isinstance(package, str) and package and isinstance(entry_point, str) and entry_point):
            raise invalid(f"task {key}: python_wheel_task needs package_name and entry_point")
        parameters, named = wheel_task.get("parameters") or [], wheel_task.get("named_parameters") or {}
        if parameters and named:
            raise invalid(f"task {key}: python_wheel_task takes parameters or named_parameters, not both")
        if not isinstance(parameters, list) or not isinstance(named, dict):
            raise invalid(f"task {key}: python_wheel_task parameters must be a list, named_parameters an object")
        # named parameters reach the entry point as --key=value, as Databricks passes them
        named_parameters = [f"--{name}={value}" for name, value in named.items()]
        return None, [package, entry_point], [str(p) for p in parameters] + named_parameters
    python_task = spec.get("spark_python_task")
    if not isinstance(python_task, dict) or not isinstance(python_task.get("python_file"), str):
        raise invalid(f"task {key}: spark_python_task.python_file or a python_wheel_task is required")
    parameters = python_task.get("parameters") or []
    if not isinstance(parameters, list):
        raise invalid(f"task {key}: spark_python_task.parameters must be a list")
    local_file = resolve_python_file(python_task["python_file"], python_task.get("source"), git_source, config)
    return str(local_file), None, [str(p) for p in parameters]


def resolve_python_file(python_file: str, source: str | None, git_source: Any, config: RunnerConfig) -> Path:
    """Map a python_file (``/Workspace/...``, ``/Volumes/...``, ``dbfs:/...``) into the workspace folder."""
    if source == "GIT" or (git_source and source != "WORKSPACE"):
        raise invalid(
            f"python_file {python_file!r}: the local runner has no Git checkout (source GIT / git_source); "
            "deploy the file to the workspace and use source WORKSPACE"
        )
    try:
        path = config.workspace_file(python_file)
    except ValueError as e:
        raise invalid(f"python_file {e}") from None
    if not path.is_file():
        raise invalid(f"python_file {python_file!r} maps to {path}, which does not exist")
    return path


def _libraries(spec: dict, key: str, environments: dict, config: RunnerConfig) -> list[dict[str, str]]:
    """The task's libraries as {"whl": workspace path} or {"pypi": requirement}, in declaration order."""
    libraries = []
    for library in spec.get("libraries") or []:
        match library:
            case {"whl": str(path)} if len(library) == 1:
                libraries.append({"whl": _library_path(path, key, config)})
            case {"pypi": {"package": str(package)} as pypi} if len(library) == 1 and not pypi.get("repo"):
                libraries.append({"pypi": _requirement(package, key)})
            case _:
                raise invalid(
                    f"task {key}: library {library!r}: the local runner installs only whl (a workspace path) and "
                    "pypi (a package, without repo) libraries; jar, maven, cran, egg and requirements need a "
                    "real cluster"
                )
    if "environment_key" in spec:
        if spec["environment_key"] not in environments:
            raise invalid(f"task {key}: environment_key {spec['environment_key']!r} is not in the run's environments")
        for dependency in environments[spec["environment_key"]].get("dependencies") or []:
            if not isinstance(dependency, str) or dependency.startswith("-"):
                raise invalid(f"task {key}: dependency {dependency!r}: the local runner takes requirement strings "
                              "and workspace paths, not pip options")  # fmt: skip
            is_path = dependency.startswith(tuple(WORKSPACE_ROOTS))
            libraries.append({"whl": _library_path(dependency, key, config)} if is_path
                             else {"pypi": _requirement(dependency, key)})
    return libraries


def _requirement(text: str, key: str) -> str:
    """A PyPI requirement (name, extras, version specifier, marker), or 400: a local path, URL or pip option
    in its place would install something a cluster cannot reach (the checkout itself, for instance)."""
    try:
        requirement = Requirement(text)
    except InvalidRequirement as e:
        raise invalid(f"task {key}: {text!r} is not a PyPI requirement ({e})") from None
    if requirement.url:
        raise invalid(f"task {key}: {text!r} names a URL; a pypi library is a package from the index")
    return text


def _library_path(path: str, key: str, config: RunnerConfig) -> str:
    """A library's workspace path, checked to map into the workspace folder. Whether the file is there is
    only checked when the task runs: on Databricks a missing library fails the run, not the submit."""
    try:
        config.workspace_file(path)
    except ValueError as e:
        raise invalid(f"task {key}: library {e}") from None
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
