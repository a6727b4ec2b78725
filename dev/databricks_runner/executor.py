"""Executes runs: a bounded pool of slots, one thread per run; per task, its environment (environments.py,
uv processes when its libraries are not cached yet), then one spark-submit process.

Nothing polls. A queued run's thread sleeps on the pool's condition until a slot frees up or the run is
cancelled; a running task's thread sleeps in ``Popen.wait(timeout=<time left>)``, which returns when the
process exits or the timeout is due. Each process of a task starts in a new session, so its process id
is also the id of a process group holding everything it forks (for spark-submit: the JVM and the Python
driver): cancel, timeout and shutdown signal that whole group (SIGTERM, then SIGKILL after a grace
period), and a runner restarted after a crash kills the group it finds recorded for a task in flight.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from dev.databricks_runner import spark
from dev.databricks_runner.config import RunnerConfig
from dev.databricks_runner.environments import Environments, LibraryInstallError
from dev.databricks_runner.secrets import SecretError, SecretStore
from dev.databricks_runner.state import (
    CANCEL,
    FAILED,
    INTERNAL_ERROR,
    QUEUED,
    RESTART_MESSAGE,
    RUNNING,
    SHUTDOWN,
    SHUTDOWN_MESSAGE,
    TERMINATING,
    TIMEOUT,
    WORKLOAD_FAILED,
    Run,
    State,
    TaskRun,
    ended,
    finish,
    interrupt,
    now_ms,
    skip_state,
    task_exit_state,
)
from dev.databricks_runner.store import RunStore

log = logging.getLogger(__name__)

DRIVER_LOG_TAIL = 1 << 20  # bytes of the driver log searched for the traceback


class SlotPool:
    """At most ``size`` runs execute at once; the others wait in submission order."""

    def __init__(self, size: int):
        self._cond = threading.Condition()
        self._free = size
        self._waiting: deque[object] = deque()

    def try_acquire(self) -> bool:
        with self._cond:
            if self._free and not self._waiting:
                self._free -= 1
                return True
            return False

    def acquire(self, give_up: Callable[[], bool]) -> bool:
        """Wait for a slot in FIFO order; False if ``give_up()`` turns true first (see ``wake``)."""
        ticket = object()
        with self._cond:
            self._waiting.append(ticket)
            try:
                while not give_up():
                    if self._free and self._waiting[0] is ticket:
                        self._free -= 1
                        return True
                    self._cond.wait()
                return False
            finally:
                self._waiting.remove(ticket)
                self._cond.notify_all()  # the next in line may be at the head now

    def release(self) -> None:
        with self._cond:
            self._free += 1
            self._cond.notify_all()

    def wake(self) -> None:
        """Make waiters re-check ``give_up`` (after a cancel)."""
        with self._cond:
            self._cond.notify_all()


@dataclass
class _Control:
    """What the executor keeps in memory about a run in flight."""

    run: Run
    thread: threading.Thread | None = None
    stop_reason: str | None = None  # CANCEL, TIMEOUT or SHUTDOWN once the run must stop
    proc: subprocess.Popen | None = None  # the process (uv or spark-submit) of the task running now
    task_timed_out: bool = False  # the running task's own timeout_seconds passed


class _Stopped(Exception):
    """The run was stopped before a task's next process could start."""


class Executor:
    def __init__(self, config: RunnerConfig, store: RunStore):
        self._config = config
        self._store = store
        self._pool = SlotPool(config.max_concurrent_runs)
        self._environments = Environments(config)
        self._secrets = SecretStore(config.secrets_file)
        self._env = spark.environment(config, config.runtime.python)  # for uv; spark-submit gets the task's
        self._lock = threading.Lock()  # guards _active and each _Control's stop_reason / proc
        self._active: dict[int, _Control] = {}

    # --- called by the API and the app's lifespan -------------------------------------------------------
    def recover(self) -> None:
        """Runs in flight when a previous runner died: kill their leftovers, report them INTERNAL_ERROR."""
        for run in self._store.all_runs():
            if run.state.is_terminal:
                continue
            for task in run.tasks:
                if task.pid and not task.state.is_terminal:
                    _kill_orphan(task)
                (self._store.task_dir(task.run_id) / "spark.properties").unlink(missing_ok=True)
            with self._store.changing(run):
                interrupt(run, RESTART_MESSAGE)
            log.warning("run %d was in flight when the runner last stopped: now INTERNAL_ERROR", run.run_id)

    def start(self, run: Run) -> None:
        ctl = _Control(run)
        ctl.thread = threading.Thread(target=self._run, args=(ctl,), name=f"run-{run.run_id}", daemon=True)
        with self._lock:
            self._active[run.run_id] = ctl
        ctl.thread.start()

    def cancel(self, run_id: int) -> None:
        """Asynchronous, like Databricks: the run reports TERMINATING until its process group is gone."""
        with self._lock:
            ctl = self._active.get(run_id)
        if ctl is None:
            return  # already finished: cancelling a terminal run is a no-op
        if ctl.proc is not None:
            with self._store.changing(ctl.run) as run:
                if not run.state.is_terminal:
                    run.state = State(TERMINATING, None, "Cancellation requested.")
        self._stop(ctl, CANCEL)

    def shutdown(self) -> None:
        """Stop every run in flight (runner shutdown): they end INTERNAL_ERROR, their processes killed."""
        with self._lock:
            controls = list(self._active.values())
        for ctl in controls:
            self._stop(ctl, SHUTDOWN)
        deadline = time.monotonic() + self._config.kill_grace_seconds + 5
        for ctl in controls:
            ctl.thread.join(timeout=max(0.0, deadline - time.monotonic()))
            if ctl.thread.is_alive():  # stuck: record the outcome anyway, the process exits next
                with self._store.changing(ctl.run) as run:
                    interrupt(run, SHUTDOWN_MESSAGE)

    # --- the thread of one run ------------------------------------------------------------------------
    def _run(self, ctl: _Control) -> None:
        run = ctl.run
        try:
            if not self._pool.try_acquire():
                message = f"Waiting for a free slot ({self._config.max_concurrent_runs} run(s) at a time)."
                with self._store.changing(run):
                    run.state = State(QUEUED, None, message)
                if not self._pool.acquire(lambda: ctl.stop_reason is not None):
                    with self._store.changing(run):
                        finish(run, ctl.stop_reason)
                    return
            try:
                self._run_tasks(run, ctl)
            finally:
                self._pool.release()
            with self._store.changing(run):
                finish(run, ctl.stop_reason)
        except Exception as e:  # a bug in the runner must still end the run, never leave it RUNNING
            log.exception("run %d: internal error", run.run_id)
            with self._store.changing(run):
                interrupt(run, f"Internal error in the local Databricks runner: {e!r}")
        finally:
            with self._lock:
                self._active.pop(run.run_id, None)
            s = run.state
            log.info("run %d: %s %s %s", run.run_id, s.life_cycle_state, s.result_state, s.state_message)

    def _run_tasks(self, run: Run, ctl: _Control) -> None:
        with self._store.changing(run):
            run.state = State(RUNNING)
            run.exec_start_time = now_ms()
        # the run's clock starts when it leaves the queue
        deadline = time.monotonic() + run.timeout_seconds if run.timeout_seconds else None
        for task in run.tasks:  # already in dependency order
            if deadline is not None and time.monotonic() >= deadline:
                self._stop(ctl, TIMEOUT)
            if ctl.stop_reason:
                return  # finish() gives the remaining tasks their state
            skipped = skip_state(task, {t.task_key: t.state.result_state for t in run.tasks})
            if skipped:
                with self._store.changing(run):
                    task.state = skipped
                continue
            self._run_task(run, task, ctl, deadline)

    def _run_task(self, run: Run, task: TaskRun, ctl: _Control, run_deadline: float | None) -> None:
        workdir = self._store.task_dir(task.run_id)
        workdir.mkdir(parents=True, exist_ok=True)
        driver_log = self._store.driver_log(task.run_id)
        properties = workdir / "spark.properties"
        task_deadline = time.monotonic() + task.timeout_seconds if task.timeout_seconds else None
        ctl.task_timed_out = False

        def execute(cmd: list[str], env: dict[str, str] = self._env) -> int:
            return self._execute(run, task, ctl, cmd, env, (run_deadline, task_deadline))

        with self._store.changing(run):
            task.state = State(RUNNING, None, "Installing libraries." if task.libraries else "")
            task.start_time = now_ms()
        error = None
        try:
            # What a cluster start does first: resolve the secret references of its spark_env_vars. A
            # missing secret fails the task before anything runs; the values stay in this local variable
            # and the process's environment, nowhere else.
            cluster_env = self._secrets.resolve(task.spark_env_vars)
            python = self._environments.prepare(task.libraries, execute, driver_log)
            with self._store.changing(run):
                task.state.state_message = ""
                task.setup_duration = now_ms() - task.start_time
            if task.wheel:
                shutil.copyfile(spark.WHEEL_LAUNCHER, workdir / spark.WHEEL_LAUNCHER.name)
            # the local Delta/S3A settings win over what the task's cluster asked for
            spark.write_properties(properties, {**task.spark_conf, **self._config.spark_conf})
            log.info(
                "run %d task %s (task run %d): spark-submit %s %s",
                run.run_id, task.task_key, task.run_id, task.local_file or task.wheel, " ".join(task.parameters),
            )  # fmt: skip
            cmd = spark.command(self._config, task, run.run_name, properties)
            if overridden := sorted(set(cluster_env) & spark.LOCAL_ENV):
                log.info("run %d task %s: spark_env_vars %s: the local settings win", run.run_id, task.task_key,
                         ", ".join(overridden))  # fmt: skip
            returncode = execute(cmd, spark.environment(self._config, python, cluster_env))
            state = task_exit_state(returncode, ctl.stop_reason, ctl.task_timed_out, run)
            if state.termination_code == "RUN_EXECUTION_ERROR":
                text, _ = spark.read_tail(driver_log, DRIVER_LOG_TAIL)
                error = spark.python_error(text) or _no_traceback_error(text, returncode)
        except _Stopped:
            return  # stopped before its next process started: finish() gives it its state
        except SecretError as e:  # names the scope and key (or the store's problem), never a value
            log.warning("run %d task %s: the cluster cannot start: %s", run.run_id, task.task_key, e)
            state = ended(FAILED, f"Cluster failed to start: {e}", "CLUSTER_ERROR", INTERNAL_ERROR)
        except LibraryInstallError as e:
            if ctl.stop_reason or ctl.task_timed_out:  # uv was killed by a cancel or a timeout
                state = task_exit_state(-1, ctl.stop_reason, ctl.task_timed_out, run)
            else:
                state = ended(FAILED, str(e), "LIBRARY_INSTALLATION_ERROR", INTERNAL_ERROR)
        except OSError as e:  # spark-submit or uv missing or not executable
            log.error("run %d task %s: cannot start a process: %s", run.run_id, task.task_key, e)
            state = ended(FAILED, WORKLOAD_FAILED, "RUN_EXECUTION_ERROR")
            message = f"Could not start the task: {e}"
            error = (message, message)
        finally:
            properties.unlink(missing_ok=True)  # it holds the S3 secret key
        if error is None and state.result_state == FAILED:
            error = (state.state_message, state.state_message)
        with self._store.changing(run):
            task.state, task.end_time = state, now_ms()
            task.error, task.error_trace = error or (None, None)

    def _execute(
        self,
        run: Run,
        task: TaskRun,
        ctl: _Control,
        cmd: list[str],
        env: dict[str, str],
        deadlines: tuple[float | None, float | None],
    ) -> int:
        """Run one process of a task (uv or spark-submit) to its end, output to the task's driver log, under
        the run's cancel and timeouts; its exit code. Raises _Stopped if the run was stopped before."""
        with self._store.driver_log(task.run_id).open("ab") as driver_log, self._lock:
            if ctl.stop_reason:
                raise _Stopped
            proc = subprocess.Popen(
                cmd,
                cwd=self._store.task_dir(task.run_id),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=driver_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as a whole
            )
            ctl.proc = proc
        with self._store.changing(run):
            task.pid, task.pid_start = proc.pid, _start_ticks(proc.pid)
        run_deadline, task_deadline = deadlines
        try:
            proc.wait(timeout=_time_left(run_deadline, task_deadline))
        except subprocess.TimeoutExpired:
            if task_deadline is not None and (run_deadline is None or task_deadline < run_deadline):
                ctl.task_timed_out = True
                self._terminate(proc)
            else:
                self._stop(ctl, TIMEOUT)
            proc.wait()  # _terminate guarantees a SIGKILL after the grace period
        with self._lock:
            ctl.proc = None
        _signal_group(proc.pid, signal.SIGKILL)  # whatever the process left running in its group
        return proc.returncode

    # --- stopping -----------------------------------------------------------------------------------
    def _stop(self, ctl: _Control, reason: str) -> None:
        with self._lock:
            if ctl.stop_reason is None:
                ctl.stop_reason = reason
            proc = ctl.proc
        if proc is not None:
            self._terminate(proc)
        self._pool.wake()  # a queued run gives up its place

    def _terminate(self, proc: subprocess.Popen) -> None:
        """SIGTERM the process group (Spark cleans up), SIGKILL what is left after the grace period."""
        if proc.returncode is not None:
            return  # already reaped: its thread cleans up the group
        _signal_group(proc.pid, signal.SIGTERM)

        def kill_if_alive() -> None:
            # returncode stays None until the run's thread reaps the process, so until then the pid,
            # and with it the process group id, cannot have been reused by another process
            if proc.returncode is None:
                _signal_group(proc.pid, signal.SIGKILL)

        timer = threading.Timer(self._config.kill_grace_seconds, kill_if_alive)
        timer.daemon = True
        timer.start()


def _time_left(*deadlines: float | None) -> float | None:
    due = [d for d in deadlines if d is not None]
    return max(0.0, min(due) - time.monotonic()) if due else None


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already gone


def _start_ticks(pid: int) -> str | None:
    """The kernel's start time of a process (field 22 of /proc/<pid>/stat): with the pid, an identity."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _kill_orphan(task: TaskRun) -> None:
    """Kill the process group of a task whose runner died, unless its pid now belongs to someone else."""
    ticks = _start_ticks(task.pid)
    if ticks is not None and ticks != task.pid_start:
        return  # the pid was recycled by an unrelated process
    # If the leader is gone, members of its group may be left; a pid still used as a group id is
    # never handed to a new process, so the signal can reach only them.
    _signal_group(task.pid, signal.SIGKILL)
    log.warning("killed the process group %d left by task run %d", task.pid, task.run_id)


def _no_traceback_error(log_text: str, returncode: int) -> tuple[str, str]:
    """An error for a driver that died without a Python traceback (a JVM error, sys.exit(n), ...)."""
    lines = [line for line in log_text.splitlines() if line.strip()]
    error = lines[-1] if lines else f"spark-submit exited with code {returncode}"
    return error, "\n".join(lines[-50:]) or error
