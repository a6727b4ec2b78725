"""Run records on disk, so a restarted runner still answers for every run it ever accepted.

Layout under ``--state-dir``::

    runner.lock                      held (flock) by the runner using the dir
    runs/<run_id>.json               one record per run (tasks included), rewritten on every change
    tasks/<task_run_id>/driver.log   stdout + stderr of the task's spark-submit (written by the process)
    tasks/<task_run_id>/             also the process's working directory (spark-warehouse, derby, ...)
    envs/<key>/                      a task environment, shared by tasks declaring the same libraries
                                     (written by environments.py, not by this module)

Records are replaced atomically (write a temporary file, then rename), so a crash leaves either the old
or the new record, never half of one. Ids come from one counter shared by runs, task runs and the
anonymous job of each run; it restarts above the highest id on disk, so ids keep increasing across
restarts without a separate counter file.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dev.databricks_runner.state import Run, TaskRun

log = logging.getLogger(__name__)


class StateDirBusy(RuntimeError):
    """Another runner holds the state dir."""


class RunStore:
    def __init__(self, state_dir: Path):
        self._runs_dir = state_dir / "runs"
        self._tasks_dir = state_dir / "tasks"
        self._runs_dir.mkdir(parents=True, exist_ok=True)
        self._tasks_dir.mkdir(parents=True, exist_ok=True)
        # One runner per state dir: a second one would "recover" (kill) the first one's runs. The kernel
        # drops the lock when the process dies, even by SIGKILL, so a crash never leaves it stale.
        self._lock_file = (state_dir / "runner.lock").open("w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateDirBusy(f"another runner is using the state dir {state_dir}") from None
        # One lock for every read and write of a record: the API renders a consistent snapshot while
        # executor threads change states. RLock because rendering helpers may look records up again.
        self.lock = threading.RLock()
        self._runs: dict[int, Run] = {}
        self._task_parent: dict[int, int] = {}  # task run id -> run id
        self._by_token: dict[str, int] = {}
        for path in sorted(self._runs_dir.glob("*.json")):
            self._index(Run.from_dict(json.loads(path.read_text())))
        ids = [i for run in self._runs.values() for i in (run.run_id, run.job_id)] + list(self._task_parent)
        self._next_id = max(ids, default=0) + 1
        log.info("%d run record(s) in %s; next id %d", len(self._runs), self._runs_dir, self._next_id)

    def _index(self, run: Run) -> None:
        self._runs[run.run_id] = run
        for task in run.tasks:
            self._task_parent[task.run_id] = run.run_id
        if run.idempotency_token:
            self._by_token[run.idempotency_token] = run.run_id

    def _write(self, run: Run) -> None:
        path = self._runs_dir / f"{run.run_id}.json"
        tmp = path.with_suffix(".tmp")
        with tmp.open("w") as f:
            json.dump(run.to_dict(), f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    # --- writing -------------------------------------------------------------------------------------
    def new_id(self) -> int:
        with self.lock:
            self._next_id += 1
            return self._next_id - 1

    def add(self, run: Run) -> None:
        with self.lock:
            self._write(run)
            self._index(run)

    @contextmanager
    def changing(self, run: Run) -> Iterator[Run]:
        """``with store.changing(run): ...`` changes a run and persists it, atomically for readers."""
        with self.lock:
            yield run
            self._write(run)

    # --- reading -------------------------------------------------------------------------------------
    def find(self, any_run_id: int) -> tuple[Run, TaskRun | None] | None:
        """Look up a run id or a task run id: (run, None) or (parent run, task run)."""
        with self.lock:
            if any_run_id in self._runs:
                return self._runs[any_run_id], None
            parent = self._task_parent.get(any_run_id)
            if parent is None:
                return None
            run = self._runs[parent]
            return run, next(t for t in run.tasks if t.run_id == any_run_id)

    def by_token(self, token: str) -> Run | None:
        run_id = self._by_token.get(token)
        return None if run_id is None else self._runs[run_id]

    def all_runs(self) -> list[Run]:
        """Newest first, as runs/list orders them."""
        with self.lock:
            return sorted(self._runs.values(), key=lambda r: r.run_id, reverse=True)

    def task_dir(self, task_run_id: int) -> Path:
        return self._tasks_dir / str(task_run_id)

    def driver_log(self, task_run_id: int) -> Path:
        return self.task_dir(task_run_id) / "driver.log"
