"""How the DAGs submit Databricks runs: the provider's `DatabricksSubmitRunOperator` plus two things it
leaves to each DAG (docs/databricks-submission.md has the whole picture).

1. An idempotency token per try. runs/submit with a token that was already used returns the run it
   started instead of starting another. Derived from dag_id, run_id, task_id, map_index and try_number,
   it makes every repeat of the *same* try (the hook retrying a submit whose answer was lost, a try that
   is executed twice after a scheduler or worker restart) get the run that try started, while a retry,
   which has a new try_number, gets a new run: reusing one token for all tries would hand the retry the
   old *failed* run back and the task could never recover. (In synchronous mode the provider's durable
   mode also reattaches a retry to a run that is still *alive*; a failed one is always resubmitted.)
2. A deferral that ends. Airflow 3.3 applies `execution_timeout` only while `execute()` runs: a deferred
   task gets a deadline only from `defer(timeout=...)`, which the provider does not pass. The deferral is
   given the task's execution_timeout, and when it times out (or the trigger dies, e.g. the API stays
   unreachable) the run of this try is cancelled before the task fails, since the triggerer only
   cancels on a user's action and the retry would otherwise run next to the orphan.

Killing the task cancels the run through the provider: `on_kill` on the worker (synchronous mode, also
on `execution_timeout`), the trigger's `on_kill` when a user marks a deferred task failed or clears it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from airflow.providers.databricks.operators.databricks import XCOM_RUN_ID_KEY, DatabricksSubmitRunOperator
from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR

# API errors (connection, 5xx, 429) are retried inside the hook: 4 attempts, 5 s apart (its exponential
# backoff never waits less than the delay). Anything else, and a failed run, fails the try and is left
# to the task's own retries.
API_RETRY_LIMIT = 4
API_RETRY_DELAY = 5
# The task outlives the run's timeout_seconds by this much, so Databricks' own TIMEDOUT normally ends
# the task (with its clear state) and Airflow's timeout is only the backstop.
TIMEOUT_MARGIN = dt.timedelta(minutes=10)


def idempotency_token(dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> str:
    """64 hex characters (Databricks' limit) naming one try of one task instance."""
    key = "\x1f".join(str(part) for part in (dag_id, run_id, task_id, map_index, try_number))
    return hashlib.sha256(key.encode()).hexdigest()


def execution_timeout_for(run: dict) -> dt.timedelta:
    return dt.timedelta(seconds=int(run["timeout_seconds"])) + TIMEOUT_MARGIN


class DatabricksSubmitRun(DatabricksSubmitRunOperator):
    """`DatabricksSubmitRunOperator` with a per-try idempotency token and a deferral that ends."""

    def execute(self, context: Any):
        ti = context["ti"]
        # set here, not templated in `json`: the token must be computed for the try that executes
        self.idempotency_token = idempotency_token(
            ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number
        )
        return super().execute(context)

    def defer(self, *, trigger, method_name, kwargs=None, timeout=None):
        super().defer(trigger=trigger, method_name=method_name, kwargs=kwargs,
                      timeout=timeout or self.execution_timeout)

    def resume_execution(self, next_method: str, next_kwargs: dict | None, context: Any):
        if next_method == TRIGGER_FAIL_REPR:  # the deferral timed out, or the trigger failed
            self._cancel_run_of_this_try(context)
        return super().resume_execution(next_method=next_method, next_kwargs=next_kwargs, context=context)

    def _cancel_run_of_this_try(self, context: Any) -> None:
        run_id = context["ti"].xcom_pull(task_ids=self.task_id, key=XCOM_RUN_ID_KEY)
        if run_id is None:
            self.log.warning("No Databricks run id recorded for this try: nothing to cancel")
            return
        try:
            self._hook.cancel_run(run_id)
            self.log.warning("Cancelled Databricks run %s: its deferral ended without a result", run_id)
        except Exception:
            self.log.exception("Could not cancel Databricks run %s; its timeout_seconds will end it", run_id)
