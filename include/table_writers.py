"""Which Databricks runs are writing the lakehouse's Delta tables now, whoever submitted them.

The erasure's purge removes files no version uses any more (lakehouse_jobs.member.erasure). Beside a writer
that has written files but not yet committed them, a VACUUM that also removes unreferenced files corrupts
the table (delta-io/delta#1470). The erasure therefore waits until no run of a job that writes the tables is
active (dags/member_erasure.py, `wait_for_table_writers`), asking the Jobs API rather than Airflow's pool,
which misses a run submitted outside Airflow and a run whose task waits for a retry; the job's own VACUUM is
guarded at the Delta level too (a writer may start after this check).
"""

from __future__ import annotations

from collections.abc import Iterable

from lakehouse_jobs.results import ErasureParams, InvoiceLoadParams, MaintenanceParams, MemberMergeParams

# the jobs wheel's entry points that commit to tables under their --tables-root
WRITER_ENTRY_POINTS = frozenset(p.ENTRY_POINT for p in (MemberMergeParams, InvoiceLoadParams, MaintenanceParams,
                                                         ErasureParams))
PACKAGE_NAME = "lakehouse_jobs"
RUNS_LIST = ("GET", "2.2/jobs/runs/list")


def _tables_root(wheel_task: dict) -> str | None:
    """The --tables-root of a python_wheel_task: in its named_parameters (as include/databricks_runs.py submits
    them) or its positional parameters."""
    if root := (wheel_task.get("named_parameters") or {}).get("tables-root"):
        return root
    parameters = wheel_task.get("parameters") or []
    for i, arg in enumerate(parameters):
        if arg == "--tables-root" and i + 1 < len(parameters):
            return parameters[i + 1]
        if arg.startswith("--tables-root="):
            return arg.split("=", 1)[1]
    return None


def table_writers(runs: Iterable[dict], tables_root: str) -> list[str]:
    """"<run_id> <run_name>" of each of `runs` (jobs/runs/list's, with their tasks) that runs an entry point of
    WRITER_ENTRY_POINTS with ``--tables-root`` `tables_root` (compared without a trailing slash)."""
    root = tables_root.rstrip("/")
    found = []
    for run in runs:
        for task in run.get("tasks", []):
            wheel = task.get("python_wheel_task") or {}
            if (wheel.get("package_name") == PACKAGE_NAME and wheel.get("entry_point") in WRITER_ENTRY_POINTS
                    and (_tables_root(wheel) or "").rstrip("/") == root):
                found.append(f"{run['run_id']} {run.get('run_name', '')}".strip())
                break
    return found


def active_table_writers(hook, tables_root: str) -> list[str]:
    """table_writers among the workspace's active runs (jobs/runs/list, active_only, every page).

    `hook`: a DatabricksHook. It has no list of runs, so the call goes through its _do_api_call, which carries
    the connection's authentication, retries and errors (AirflowException naming the status)."""
    runs: list[dict] = []
    page: dict = {}
    while True:
        response = hook._do_api_call(RUNS_LIST, {"active_only": "true", "expand_tasks": "true", "limit": 25, **page})
        runs += response.get("runs", [])
        if not response.get("has_more"):
            return table_writers(runs, tables_root)
        page = {"page_token": response["next_page_token"]}
