"""What every DAG shares (include/dag_defaults.py): the run-id sanitiser's two forms agree, and the
Databricks run task carries the shared submission settings unless a DAG overrides one."""

from __future__ import annotations

import jinja2
import pytest

from include import settings
from include.dag_defaults import DEFAULT_ARGS, SAFE_RUN_ID, databricks_run_task, default_args, safe_run_id
from include.databricks_runs import table_maintenance_run
from include.databricks_submit import API_RETRY_DELAY, API_RETRY_LIMIT, execution_timeout_for
from include.erasure_landing import REQUEST_ID_PATTERN

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("run_id", ["manual__2026-11-26T13:00:00.123456+00:00", "scheduled__2026-11-26T00:00:00+00:00",
                                    "asset_triggered__2026-11-26T01:02:03+08:00", "plain_id"])
def test_the_template_and_the_function_make_the_same_safe_id(run_id):
    rendered = jinja2.Template(SAFE_RUN_ID).render(run_id=run_id)
    assert rendered == safe_run_id(run_id)
    assert ":" not in rendered and "+" not in rendered
    assert REQUEST_ID_PATTERN.fullmatch(rendered)  # usable as the erasure's request id


def test_default_args_are_a_fresh_copy_with_the_dags_overrides():
    args = default_args(retries=3)
    assert args == {**DEFAULT_ARGS, "retries": 3}
    args["owner"] = "someone"
    assert default_args()["owner"] == "data-platform"


def test_the_databricks_run_task_carries_the_shared_settings_and_the_dags_overrides():
    run = table_maintenance_run("r")
    task = databricks_run_task("optimize", run, retries=5, pool="some_pool")
    assert (task.task_id, task.json, task.retries, task.pool) == ("optimize", run, 5, "some_pool")
    assert task.databricks_conn_id == settings.DATABRICKS_CONN_ID
    assert task.deferrable == settings.DATABRICKS.deferrable
    assert task.polling_period_seconds == settings.DATABRICKS.poll_seconds
    assert (task.databricks_retry_limit, task.databricks_retry_delay) == (API_RETRY_LIMIT, API_RETRY_DELAY)
    assert task.execution_timeout == execution_timeout_for(run)
