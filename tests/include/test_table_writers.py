"""include/table_writers.py: which active Databricks runs write the lakehouse's tables (issue 23 item 2)."""

from __future__ import annotations

import pytest

from include.table_writers import active_table_writers, table_writers

pytestmark = pytest.mark.unit

ROOT = "s3://lakehouse/delta"


def run(run_id: int, entry_point: str, parameters: list[str] | dict[str, str], package: str = "lakehouse_jobs",
        ) -> dict:
    """A run as runs/list lists it; a dict of parameters is the named_parameters form the DAGs submit."""
    arguments = {"named_parameters": parameters} if isinstance(parameters, dict) else {"parameters": parameters}
    return {"run_id": run_id, "run_name": f"{entry_point} {run_id}", "tasks": [
        {"task_key": "t", "python_wheel_task": {"package_name": package, "entry_point": entry_point, **arguments}}]}


def test_a_run_of_a_writing_entry_point_on_the_same_tables_is_a_writer_whoever_submitted_it():
    runs = [
        run(1, "member_merge", {"manifest": "s3://l/m.json", "tables-root": ROOT}),  # as the DAGs submit it
        run(2, "invoice_load", [f"--tables-root={ROOT}/"]),  # the = form, a trailing slash
        run(3, "table_maintenance", ["--tables-root", "s3://other-lakehouse/delta"]),  # another lakehouse
        run(4, "unity_catalog_ddl", ["--tables-root", ROOT]),  # prints DDL, writes nothing
        run(5, "member_merge", ["--tables-root", ROOT], package="someone_elses_jobs"),
        {"run_id": 6, "run_name": "a notebook", "tasks": [{"task_key": "n", "notebook_task": {"notebook_path": "/x"}}]},
        {"run_id": 7, "run_name": "no tasks listed"},
    ]
    runs.append(run(8, "member_merge", ["--manifest", "s3://l/m.json", "--tables-root", ROOT]))  # positional
    assert table_writers(runs, ROOT) == ["1 member_merge 1", "2 invoice_load 2", "8 member_merge 8"]


class FakeHook:
    """The two pages runs/list returns for active runs; records what it was asked."""

    def __init__(self):
        self.calls = []

    def _do_api_call(self, endpoint, params):
        self.calls.append((endpoint, params))
        if "page_token" not in params:
            return {"runs": [run(1, "member_erasure", ["--tables-root", ROOT])], "has_more": True,
                    "next_page_token": "25"}
        return {"runs": [run(2, "member_merge", ["--tables-root", ROOT])], "has_more": False}


def test_every_page_of_active_runs_is_read():
    hook = FakeHook()
    assert active_table_writers(hook, ROOT) == ["1 member_erasure 1", "2 member_merge 2"]
    assert [c[0] for c in hook.calls] == [("GET", "2.2/jobs/runs/list")] * 2
    assert hook.calls[0][1]["active_only"] == "true" and hook.calls[0][1]["expand_tasks"] == "true"
    assert hook.calls[1][1]["page_token"] == "25"
