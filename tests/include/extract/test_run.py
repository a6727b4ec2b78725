"""How the extract task builds its reader from the settings (include/extract/run.py, include/settings.py):
the stall limit a user sets is the one the ConnectorX reader gets, and a limit the task could never reach is
refused when the DAG files are parsed, not at run time."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from airflow.providers.mysql.hooks.mysql import MySqlHook

from include import settings
from include.extract import run
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit


def test_the_reader_gets_the_configured_stall_limit(monkeypatch):
    conn = {"conn_type": "mysql", "host": "db.example", "port": 3306, "schema": "members", "login": "extract",
            "password": "p@ss"}
    monkeypatch.setenv("AIRFLOW_CONN_MYSQL_RUN_TEST", json.dumps(conn))
    monkeypatch.setattr(settings, "EXTRACT_STALL_SECONDS", 42)
    made = {}
    monkeypatch.setattr(run, "connectorx_reader", lambda url, **options: made.update(url=url, **options) or "reader")

    assert run.make_reader(MySqlHook(mysql_conn_id="mysql_run_test"), "8.4.3") == "reader"
    assert made["stall_seconds"] == 42
    assert made["url"] == "mysql://extract:p%40ss@db.example:3306/members"


def settings_error(value: str) -> str:
    done = subprocess.run([sys.executable, "-c", "import include.settings"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "EXTRACT_STALL_SECONDS": value})
    return done.stderr.strip().splitlines()[-1] if done.returncode else ""


@pytest.mark.parametrize(("value", "error"), [
    ("0", "expected a whole number of at least 1"),
    ("abc", "expected a whole number"),
    ("1.5", "expected a whole number"),
    # past the task's execution_timeout the timeout would end a stalled read first, saying nothing of a stall;
    # 99999999999 s would overflow select() at run time
    ("1141", "expected a whole number of at most 1140"),
    ("99999999999", "expected a whole number of at most 1140"),
    ("1140", ""),
])
def test_a_stall_limit_out_of_range_is_refused_at_import(value, error):
    found = settings_error(value)
    assert (error in found) if error else found == "", found
