"""Every DAG imports cleanly, with no I/O at parse time, and carries the reliability settings we promise."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest
from airflow.models.dagbag import DagBag
from airflow.sdk.bases.sensor import BaseSensorOperator

from include import settings

pytestmark = pytest.mark.unit

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    """Parse the DAG folder with the network cut off and no connections defined: parsing must need neither."""
    real_connect = socket.socket.connect

    def no_network(self, address):
        raise AssertionError(f"DAG parsing opened a connection to {address}")

    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", no_network)
    for var in [v for v in __import__("os").environ if v.startswith("AIRFLOW_CONN_")]:
        mp.delenv(var)
    try:
        return DagBag(str(DAGS_DIR))
    finally:
        mp.undo()
        assert socket.socket.connect is real_connect


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_expected_dags_present(dagbag):
    assert "member_pipeline" in dagbag.dags


def all_dags():
    return sorted(DagBag(str(DAGS_DIR)).dags.items())


@pytest.mark.parametrize("dag_id,dag", all_dags())
def test_dag_conventions(dag_id, dag):
    assert dag.tags, f"{dag_id} has no tags"
    assert dag.doc_md and len(dag.doc_md) > 100, f"{dag_id} lacks a doc_md description"
    assert dag.dagrun_timeout is not None, f"{dag_id} has no dagrun_timeout"
    for task in dag.tasks:
        where = f"{dag_id}.{task.task_id}"
        assert task.owner and task.owner != "airflow", f"{where} has no real owner"
        assert task.retries >= 2, f"{where} retries={task.retries}"
        assert task.retry_exponential_backoff, f"{where} has no exponential backoff"
        assert task.execution_timeout is not None, f"{where} has no execution_timeout"
        if isinstance(task, BaseSensorOperator):
            assert task.timeout <= task.execution_timeout.total_seconds(), f"{where} sensor timeout too long"
            assert task.mode == "reschedule" or task.deferrable, f"{where} sensor holds a worker slot"


def worst_case(task) -> dt.timedelta:
    """The longest a task can take: every try runs into its execution_timeout, every wait is the longest
    backoff (max_retry_delay caps the exponential backoff; retry_delay is the wait without it)."""
    wait = task.max_retry_delay if task.retry_exponential_backoff and task.max_retry_delay else task.retry_delay
    return (task.retries + 1) * task.execution_timeout + task.retries * wait


@pytest.mark.parametrize("dag_id,dag", all_dags())
def test_timeouts_add_up(dag_id, dag):
    """Tries times timeouts plus waits, along the longest chain of tasks, fit in dagrun_timeout: the run's
    own timeout must never cut a task short that is still within its retries."""
    longest: dict[str, dt.timedelta] = {}
    for task in dag.topological_sort():
        before = max((longest[t] for t in task.upstream_task_ids), default=dt.timedelta(0))
        longest[task.task_id] = before + worst_case(task)
    assert dag.dagrun_timeout is not None, f"{dag_id} has no dagrun_timeout"
    assert max(longest.values()) <= dag.dagrun_timeout, (
        f"{dag_id}: the longest chain can take {max(longest.values())}, dagrun_timeout is {dag.dagrun_timeout}")


def test_member_pipeline_shape(dagbag):
    dag = dagbag.dags["member_pipeline"]
    assert dag.max_active_runs == 1  # runs of one table serialise; MERGE still tolerates overlap
    order = ["extract_members", "wait_for_manifest", "choose_run", "merge_members", "reconcile"]
    for upstream, downstream in zip(order, order[1:]):
        assert downstream in dag.get_task(upstream).downstream_task_ids
    # an unchanged day branches around the Databricks run (issue 22 item 4); confirm_unchanged updates no Asset
    assert dag.get_task("choose_run").downstream_task_ids == {"merge_members", "confirm_unchanged"}
    assert not dag.get_task("confirm_unchanged").outlets and dag.get_task("reconcile").outlets
    merge = dag.get_task("merge_members")
    assert merge.deferrable is True
    task = merge.json["tasks"][0]
    assert task["python_wheel_task"]["entry_point"] == "member_merge"
    # the guards are run parameters, so a deliberate purge is a trigger with {"max_delete_ratio": 1}
    assert task["python_wheel_task"]["named_parameters"]["max-delete-ratio"] == "{{ params.max_delete_ratio }}"
    assert dag.params["max_delete_ratio"] == 0.05
    assert task["libraries"] == [{"whl": settings.DATABRICKS.jobs_wheel_path}]
