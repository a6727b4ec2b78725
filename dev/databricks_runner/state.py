"""Runs, task runs and the rules of the Databricks run state machine. Plain data and pure functions.

A run moves PENDING -> QUEUED (waiting for a free slot) -> RUNNING -> a terminal state; each task run
moves PENDING -> RUNNING -> a terminal state, or straight to SKIPPED when its dependencies say so.
The values and the messages copy what Databricks reports, because the Airflow provider branches on them:
it treats TERMINATED, SKIPPED and INTERNAL_ERROR as terminal, only ``result_state == "SUCCESS"`` as
success, and asks ``runs/get-output`` for the error of every task whose ``result_state`` is FAILED.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

# life_cycle_state
PENDING, QUEUED, RUNNING, TERMINATING = "PENDING", "QUEUED", "RUNNING", "TERMINATING"
TERMINATED, SKIPPED, INTERNAL_ERROR = "TERMINATED", "SKIPPED", "INTERNAL_ERROR"
TERMINAL = {TERMINATED, SKIPPED, INTERNAL_ERROR}

# result_state
SUCCESS, FAILED, TIMEDOUT, CANCELED = "SUCCESS", "FAILED", "TIMEDOUT", "CANCELED"
UPSTREAM_FAILED, UPSTREAM_CANCELED, EXCLUDED = "UPSTREAM_FAILED", "UPSTREAM_CANCELED", "EXCLUDED"

# Why a run stopped before its tasks were done (set by runs/cancel, the run timeout, or runner shutdown).
CANCEL, TIMEOUT, SHUTDOWN = "cancel", "timeout", "shutdown"

# status.termination_details.type for each termination code we use (Databricks' TerminationCode enum)
TERMINATION_TYPE = {
    "SUCCESS": "SUCCESS",
    "RUN_EXECUTION_ERROR": "CLIENT_ERROR",
    "USER_CANCELED": "SUCCESS",
    "CANCELED": "CLIENT_ERROR",  # Databricks' code for "maximum run duration exceeded"
    "LIBRARY_INSTALLATION_ERROR": "CLIENT_ERROR",
    "CLUSTER_ERROR": "CLIENT_ERROR",  # the cluster could not start (a secret reference it cannot resolve)
    "SKIPPED": "SUCCESS",
    "INTERNAL_ERROR": "INTERNAL_ERROR",
}

WORKLOAD_FAILED = "Workload failed, see run output for details."
SHUTDOWN_MESSAGE = "The local Databricks runner was stopped while this run was in flight; it did not finish."
RESTART_MESSAGE = (
    "The local Databricks runner stopped unexpectedly while this run was in flight (found when it "
    "restarted); the run did not finish and its outcome is unknown. Submit it again."
)


def now_ms() -> int:
    """Databricks reports every time as epoch milliseconds."""
    return int(time.time() * 1000)


@dataclass
class State:
    life_cycle_state: str = PENDING
    result_state: str | None = None  # absent until terminal, as in Databricks' responses
    state_message: str = ""
    termination_code: str | None = None  # feeds status.termination_details; None until terminal

    @property
    def is_terminal(self) -> bool:
        return self.life_cycle_state in TERMINAL


def ended(result: str, message: str, code: str, life_cycle: str = TERMINATED) -> State:
    return State(life_cycle, result, message, code)


@dataclass
class TaskRun:
    run_id: int
    task_key: str
    spec: dict[str, Any]  # the task as submitted, echoed back by runs/get like Databricks does
    local_file: str | None  # a spark_python_task's python_file, mapped into the workspace folder
    parameters: list[str]
    depends_on: list[str]
    wheel: list[str] | None = None  # a python_wheel_task's [package_name, entry_point]
    # the libraries to install, as {"whl": workspace path} or {"pypi": requirement}
    libraries: list[dict[str, str]] = field(default_factory=list)
    run_if: str = "ALL_SUCCESS"
    timeout_seconds: int = 0  # 0 = no timeout
    spark_conf: dict[str, str] = field(default_factory=dict)  # from the task's cluster, filtered
    # the cluster's spark_env_vars as submitted: secret references stay references here, their values
    # are resolved when the task starts and live only in its process's environment (secrets.py)
    spark_env_vars: dict[str, str] = field(default_factory=dict)
    state: State = field(default_factory=State)
    start_time: int = 0  # 0 until the task starts, like Databricks
    setup_duration: int = 0  # ms spent preparing its environment (installing libraries)
    end_time: int = 0
    error: str | None = None  # last line of the Python traceback (runs/get-output `error`)
    error_trace: str | None = None  # the whole traceback (runs/get-output `error_trace`)
    # The spark-submit process: its pid (also its process group id) and kernel start time, kept so a
    # restarted runner can kill a process group orphaned by a crash without hitting a recycled pid.
    pid: int | None = None
    pid_start: str | None = None


@dataclass
class Run:
    run_id: int
    job_id: int  # Databricks gives one-time runs an anonymous job too; the deferrable path reads it
    run_name: str
    tasks: list[TaskRun]  # in execution order (dependencies first)
    timeout_seconds: int = 0  # 0 = no timeout
    idempotency_token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # recorded, echoed: git_source, job_clusters, ...
    state: State = field(default_factory=State)
    start_time: int = field(default_factory=now_ms)  # submission time, as Databricks reports it
    exec_start_time: int = 0  # when the run left the queue
    end_time: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        tasks = [TaskRun(**{**t, "state": State(**t["state"])}) for t in data["tasks"]]
        return cls(**{**data, "tasks": tasks, "state": State(**data["state"])})


# --- dependencies ----------------------------------------------------------------------------------
_FAILED_LIKE = {FAILED, TIMEDOUT, UPSTREAM_FAILED}

# Databricks' `run_if` conditions, over (succeeded, failed, total) dependency counts.
RUN_IF = {
    "ALL_SUCCESS": lambda ok, bad, n: ok == n,
    "AT_LEAST_ONE_SUCCESS": lambda ok, bad, n: ok >= 1,
    "NONE_FAILED": lambda ok, bad, n: bad == 0,
    "ALL_DONE": lambda ok, bad, n: True,
    "AT_LEAST_ONE_FAILED": lambda ok, bad, n: bad >= 1,
    "ALL_FAILED": lambda ok, bad, n: bad == n,
}


def skip_state(task: TaskRun, results: dict[str, str | None]) -> State | None:
    """None when ``task`` may run given its dependencies' results, else the SKIPPED state it gets."""
    deps = [results[key] for key in task.depends_on]
    ok = sum(r == SUCCESS for r in deps)
    bad = sum(r in _FAILED_LIKE for r in deps)
    if RUN_IF[task.run_if](ok, bad, len(deps)):
        return None
    if task.run_if != "ALL_SUCCESS":
        return ended(EXCLUDED, f"run_if {task.run_if} is not met.", "SKIPPED", SKIPPED)
    if bad:
        return ended(UPSTREAM_FAILED, "Upstream task(s) failed.", "SKIPPED", SKIPPED)
    return ended(UPSTREAM_CANCELED, "Upstream task(s) were canceled.", "SKIPPED", SKIPPED)


# --- outcomes --------------------------------------------------------------------------------------
def task_exit_state(returncode: int, stop_reason: str | None, task_timed_out: bool, run: Run) -> State:
    """The state of a task whose spark-submit process has exited (with ``returncode``)."""
    if returncode == 0:
        return ended(SUCCESS, "", "SUCCESS")  # the work is done even if a cancel raced with the exit
    if stop_reason == CANCEL:
        return ended(CANCELED, "Run was cancelled.", "USER_CANCELED")
    if stop_reason == TIMEOUT:
        return ended(TIMEDOUT, f"Run timed out after {run.timeout_seconds} seconds.", "CANCELED")
    if stop_reason == SHUTDOWN:
        return ended(FAILED, SHUTDOWN_MESSAGE, "INTERNAL_ERROR", INTERNAL_ERROR)
    if task_timed_out:
        return ended(TIMEDOUT, "Task timed out.", "CANCELED")
    return ended(FAILED, WORKLOAD_FAILED, "RUN_EXECUTION_ERROR")


def _unstarted_state(stop_reason: str | None) -> State:
    if stop_reason == CANCEL:
        return ended(CANCELED, "Run was cancelled before this task started.", "USER_CANCELED")
    if stop_reason == TIMEOUT:
        return ended(CANCELED, "Run timed out before this task started.", "CANCELED")
    return ended(FAILED, SHUTDOWN_MESSAGE, "INTERNAL_ERROR", INTERNAL_ERROR)


def run_outcome(run: Run, stop_reason: str | None) -> State:
    """The terminal state of a run, from its tasks' results and why it stopped, as Databricks words it."""
    results = [t.state.result_state for t in run.tasks]
    if all(r == SUCCESS for r in results):
        return ended(SUCCESS, "", "SUCCESS")
    if stop_reason == SHUTDOWN:
        return ended(FAILED, SHUTDOWN_MESSAGE, "INTERNAL_ERROR", INTERNAL_ERROR)
    if stop_reason == CANCEL:
        return ended(CANCELED, "Run was cancelled.", "USER_CANCELED")
    if stop_reason == TIMEOUT:
        return ended(TIMEDOUT, f"Run timed out after {run.timeout_seconds} seconds.", "CANCELED")
    for task in run.tasks:
        if task.state.result_state == FAILED:
            message = f"Task {task.task_key} failed with message: {task.state.state_message}"
            return ended(FAILED, message, task.state.termination_code, INTERNAL_ERROR)
    for task in run.tasks:
        if task.state.result_state == TIMEDOUT:
            return ended(TIMEDOUT, f"Task {task.task_key} timed out.", "CANCELED")
    # only skipped tasks are left (e.g. run_if conditions that were not met)
    return ended(SUCCESS, "", "SUCCESS")


def finish(run: Run, stop_reason: str | None) -> None:
    """Close a run whose executor is done with it: unstarted tasks get a reason, the run its outcome."""
    now = now_ms()
    for task in run.tasks:
        if not task.state.is_terminal:
            task.state = _unstarted_state(stop_reason)
            if task.state.result_state == FAILED:
                task.error = task.state.state_message
    run.state = run_outcome(run, stop_reason)
    run.end_time = now


def interrupt(run: Run, message: str) -> None:
    """Mark a run the runner lost track of (crash, stuck shutdown) as INTERNAL_ERROR, never forget it."""
    now = now_ms()
    for task in run.tasks:
        if not task.state.is_terminal:
            task.state = ended(FAILED, message, "INTERNAL_ERROR", INTERNAL_ERROR)
            task.error = message
            if task.start_time:
                task.end_time = now
    run.state = ended(FAILED, message, "INTERNAL_ERROR", INTERNAL_ERROR)
    run.end_time = now
