"""dev/stack.sh's commands that a test or an operator may call with a wrong argument: they refuse before they
touch anything (the restart of a running component is exercised by tests/e2e, which restarts the scheduler)."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit


def stack(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO_ROOT / "dev" / "stack.sh"), *args], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/root", "LAKEHOUSE_PROFILE": "test"})


@pytest.mark.parametrize(("args", "message"), [
    ((), "name the Airflow components to restart: scheduler triggerer dag-processor api-server"),
    (("scheduler", "foo"), "'foo' is not an Airflow component of the stack"),
    (("scheduler triggerer",), "'scheduler triggerer' is not an Airflow component of the stack"),
])
def test_restart_airflow_refuses_what_it_cannot_restart(args, message):
    done = stack("restart-airflow", *args)
    assert done.returncode == 1 and message in done.stderr

