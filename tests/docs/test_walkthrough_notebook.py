"""The walkthrough notebook (docs/walkthrough.ipynb), executed cell by cell against the local stack, so that it
never goes stale: a cell that raises, or one of its asserts that fails, fails this test.

The notebook works in a scratch MySQL database and a scratch bucket named by the run stamp it receives in
WALKTHROUGH_RUN, and removes both in its last cell; when a cell fails before that, this test removes them.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import MySQLdb
import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO_ROOT
from tests.services import empty_bucket, require_env

NOTEBOOK = REPO_ROOT / "docs" / "walkthrough.ipynb"


@pytest.mark.unit
def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    stored = [i for i, c in enumerate(nb.cells)
              if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not stored, f"cells {stored} of {NOTEBOOK.name} hold outputs: clear them before committing"


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_walkthrough_notebook_runs(mysql_env, mysql_root, s3_env, s3):
    # what the notebook's cells read besides the services' variables (MYSQL_*, S3_*) the fixtures check
    require_env("AIRFLOW_CONN_MYSQL_MEMBERS", "AIRFLOW_CONN_AWS_LAKEHOUSE", "LAKEHOUSE_PII_HMAC_KEY",
                "LAKEHOUSE_PII_ENCRYPTION_KEY")
    run = f"{dt.datetime.now(dt.timezone.utc):%Y%m%dt%H%M%S}-{uuid.uuid4().hex[:6]}"
    # the kernel is a process of its own: this environment (the stack's), the repository importable
    env = {**os.environ, "WALKTHROUGH_RUN": run,
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}
    env.pop("WALKTHROUGH_KEEP", None)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": str(REPO_ROOT)}})
    try:
        client.execute(env=env)
    finally:
        # the notebook's own names (its section 1); a no-op when its clean-up cell ran
        database = "walkthrough_" + run.replace("-", "_")
        if mysql_root.cursor().execute("SHOW DATABASES LIKE %s", (database,)):
            cur = mysql_root.cursor()
            for table in ("member", "member_card"):
                try:
                    cur.execute(f"REVOKE SELECT ON `{database}`.`{table}` FROM %s@'%%'",
                                (mysql_env["MYSQL_EXTRACT_USER"],))
                except MySQLdb.OperationalError:  # never granted: the notebook failed before
                    pass
            cur.execute(f"DROP DATABASE `{database}`")
        bucket = "walkthrough-" + run
        empty_bucket(s3, bucket)
        if bucket in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            s3.delete_bucket(Bucket=bucket)
