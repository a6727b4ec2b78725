"""The walkthrough notebook (docs/walkthrough.ipynb) is stored executed, with its outputs, and executed again here
cell by cell against the local stack, so that it never goes stale: a cell that raises, or one of its asserts that
fails, fails this test, and so does a run whose cells or kinds of output differ from the stored copy
(dev.walkthrough_notebook.structure; `make notebook` stores it again).

The notebook works in a scratch MySQL database and a scratch bucket named by the run stamp it receives in
WALKTHROUGH_RUN, and removes both in its last cell; when a cell fails before that, this test removes them.
"""

from __future__ import annotations

import MySQLdb
import nbformat
import pytest

from dev import walkthrough_notebook
from dev.walkthrough_notebook import NOTEBOOK, problems, structure
from tests.services import empty_bucket, require_env


@pytest.mark.unit
def test_notebook_is_stored_executed_without_errors():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert not problems(nb, env={}), "run `make notebook` to store it executed"
    assert sum(1 for c in nb.cells if c.cell_type == "code" and c.outputs) >= 10, "stored without outputs"


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_walkthrough_notebook_runs(mysql_env, mysql_root, s3_env, s3):
    # what the notebook's cells read besides the services' variables (MYSQL_*, S3_*) the fixtures check
    require_env("AIRFLOW_CONN_MYSQL_MEMBERS", "AIRFLOW_CONN_AWS_LAKEHOUSE", "LAKEHOUSE_PII_HMAC_KEY",
                "LAKEHOUSE_PII_ENCRYPTION_KEY")
    run = walkthrough_notebook.new_run()
    stored = nbformat.read(NOTEBOOK, as_version=4)
    try:
        executed = walkthrough_notebook.execute(run)
        assert not problems(executed)
        assert structure(executed) == structure(stored), (
            "the notebook's cells or their kinds of output changed: `make notebook` stores it again")
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
