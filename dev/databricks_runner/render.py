"""Runs as the Jobs API shows them (JSON), and as the run page shows them (HTML).

Field names and shapes follow Databricks' ``jobs/runs/get`` response; what the provider actually reads
is ``run_id``, ``job_id``, ``run_page_url``, ``state{...}``, ``tasks[]{run_id, task_key, start_time,
state}``, ``next_page_token`` and (with ``include_history``) ``repair_history``. The rest is there so
the response looks like the real thing to anyone reading it.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

from dev.databricks_runner.state import CANCELED, QUEUED, TERMINATION_TYPE, TIMEDOUT, Run, State, TaskRun

PAGE_SIZE = 100  # tasks[] per runs/get page, as Databricks paginates them


def state_json(s: State) -> dict[str, Any]:
    out: dict[str, Any] = {
        "life_cycle_state": s.life_cycle_state,
        "state_message": s.state_message,
        "user_cancelled_or_timedout": s.result_state in (CANCELED, TIMEDOUT),
    }
    if s.result_state:
        out["result_state"] = s.result_state
    return out


def status_json(s: State) -> dict[str, Any]:
    """The newer ``status`` object: the provider ignores it, other clients read it."""
    out: dict[str, Any] = {"state": "TERMINATED" if s.is_terminal else s.life_cycle_state}
    if s.termination_code:
        out["termination_details"] = {
            "code": s.termination_code,
            "type": TERMINATION_TYPE[s.termination_code],
            "message": s.state_message,
        }
    if s.life_cycle_state == QUEUED:
        out["queue_details"] = {"code": "ACTIVE_RUNS_LIMIT_REACHED", "message": s.state_message}
    return out


def _duration(start: int, end: int) -> int:
    return end - start if start and end else 0


def task_json(task: TaskRun, base_url: str) -> dict[str, Any]:
    return {
        **task.spec,  # echo the submitted task (spark_python_task, depends_on, cluster fields...)
        "run_id": task.run_id,
        "task_key": task.task_key,
        "state": state_json(task.state),
        "status": status_json(task.state),
        "start_time": task.start_time,
        "end_time": task.end_time,
        "setup_duration": task.setup_duration,  # installing its libraries
        "execution_duration": max(0, _duration(task.start_time, task.end_time) - task.setup_duration),
        "cleanup_duration": 0,
        "attempt_number": 0,
        "run_page_url": f"{base_url}/runs/{task.run_id}",
        "cluster_instance": {"cluster_id": "local"},
    }


def run_json(run: Run, base_url: str, offset: int = 0, include_history: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        **run.extra,  # git_source, job_clusters, environments... as submitted
        "job_id": run.job_id,
        "run_id": run.run_id,
        "number_in_job": run.run_id,
        "original_attempt_run_id": run.run_id,
        "attempt_number": 0,
        "run_name": run.run_name,
        "run_type": "SUBMIT_RUN",
        "format": "MULTI_TASK",
        "timeout_seconds": run.timeout_seconds,
        "state": state_json(run.state),
        "status": status_json(run.state),
        "start_time": run.start_time,
        "end_time": run.end_time,
        "setup_duration": 0,
        "execution_duration": _duration(run.exec_start_time, run.end_time),
        "cleanup_duration": 0,
        "run_duration": _duration(run.start_time, run.end_time),
        "queue_duration": _duration(run.start_time, run.exec_start_time),
        "run_page_url": f"{base_url}/runs/{run.run_id}",
        "tasks": [task_json(t, base_url) for t in run.tasks[offset : offset + PAGE_SIZE]],
    }
    if offset:
        out.pop("job_clusters", None)  # paginated like tasks: the first page carries them all
        out["prev_page_token"] = str(max(0, offset - PAGE_SIZE))
    if offset + PAGE_SIZE < len(run.tasks):
        out["next_page_token"] = str(offset + PAGE_SIZE)
    if include_history:
        out["repair_history"] = [
            {
                "type": "ORIGINAL",
                "id": run.run_id,
                "start_time": run.start_time,
                "end_time": run.end_time,
                "state": state_json(run.state),
                "status": status_json(run.state),
                "task_run_ids": [t.run_id for t in run.tasks],
            }
        ]
    return out


def task_as_run_json(run: Run, task: TaskRun, base_url: str) -> dict[str, Any]:
    """``runs/get`` of a task run id: the task seen as a run of its own (the trigger asks for these)."""
    task_view = task_json(task, base_url)
    return {
        **task_view,
        "job_id": run.job_id,
        "parent_run_id": run.run_id,
        "run_name": task.task_key,
        "run_type": "SUBMIT_RUN",
        "tasks": [task_view],
    }


# --- the run page ---------------------------------------------------------------------------------
def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ms else "-"


def _state_text(s: State) -> str:
    return " / ".join(x for x in (s.life_cycle_state, s.result_state) if x)


def run_page(run: Run, logs: dict[int, str]) -> str:
    """A self-refreshing HTML page with the run's state, its tasks and each task's driver log."""
    e = html.escape
    refresh = "" if run.state.is_terminal else '<meta http-equiv="refresh" content="3">'
    rows = "".join(
        f'<tr id="task-{t.run_id}"><td><a href="#log-{t.run_id}">{e(t.task_key)}</a></td><td>{t.run_id}</td>'
        f"<td>{e(_state_text(t.state))}</td><td>{e(t.state.state_message)}</td>"
        f"<td>{_time(t.start_time)}</td><td>{_time(t.end_time)}</td></tr>"
        for t in run.tasks
    )
    sections = "".join(
        f'<h2 id="log-{t.run_id}">{e(t.task_key)} (task run {t.run_id}): {e(_state_text(t.state))}</h2>'
        + (f"<p><b>Error:</b> <code>{e(t.error)}</code></p>" if t.error else "")
        + f"<pre>{e(logs.get(t.run_id) or '(no driver output yet)')}</pre>"
        for t in run.tasks
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8">{refresh}<title>Run {run.run_id}: {e(run.run_name)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:4px 8px}}
table{{border-collapse:collapse}}pre{{background:#f6f6f6;padding:1em;overflow-x:auto;max-height:40em}}</style>
</head><body>
<h1>Run {run.run_id}: {e(run.run_name)}</h1>
<p>Local Databricks runner. Job {run.job_id}. State: <b class="state">{e(_state_text(run.state))}</b>
{e(run.state.state_message)}</p>
<p>Submitted {_time(run.start_time)}, ended {_time(run.end_time)}.</p>
<table><tr><th>task</th><th>task run id</th><th>state</th><th>message</th><th>start</th><th>end</th></tr>
{rows}</table>
{sections}
</body></html>
"""
