"""The local runner runs only what a run declares: task environments, libraries and python_wheel_task.

A task sees the Databricks runtime (.local/databricks-runtime: pyspark, pandas, ...) plus the libraries
of its run, nothing of the repository or of the project's venv; a wheel comes from the runner's
workspace folder. One runner for the module, with a fresh state dir, so the first run that declares a
library builds its environment and later ones reuse it. Every job is a plain Python file or entry point
(no SparkSession), so each task costs a spark-submit start of ~3 s.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zipfile
from pathlib import Path

import pytest

from tests.dev.runner_harness import JOBS_ROOT, REPO

# small, pure Python, not part of the runtime (checked below), but in the project's venv (pytest needs
# it): a runner that leaked the venv into jobs would let the undeclared import pass
PINNED = "iniconfig==2.1.0"
MODULES = ("pyspark", "pandas", "iniconfig")  # two from the runtime, one the run must declare
WHEEL_PATH = "/Workspace/Shared/tests/artifacts/tinyjob-0.1.0-py3-none-any.whl"
MISSING_WHEEL = "/Workspace/Shared/tests/artifacts/tinyjob-9.9.9-py3-none-any.whl"  # never deployed
TINYJOB = """\
import json
import sys


def main():
    print("tinyjob main " + json.dumps(sys.argv))


def direct():
    print("tinyjob direct " + json.dumps(sys.argv))
"""


def import_task(key: str, libraries: list[dict] | None = None) -> dict:
    python_file = f"{JOBS_ROOT}/tests/dev/fixtures/import_job.py"
    return {"task_key": key, "spark_python_task": {"python_file": python_file, "parameters": list(MODULES)},
            "libraries": libraries or []}  # fmt: skip


def wheel_task(key: str, entry_point: str, arguments: dict, **task) -> dict:
    python_wheel_task = {"package_name": "tinyjob", "entry_point": entry_point, **arguments}
    return {"task_key": key, "python_wheel_task": python_wheel_task, **task}


def make_wheel(directory: Path, name: str, version: str, files: dict[str, str], entry_points: str) -> Path:
    """A pure-Python wheel written directly as a zip file, so no build backend has to be downloaded."""
    dist_info = f"{name}-{version}.dist-info"
    files = files | {
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist_info}/entry_points.txt": entry_points,
    }

    def record_line(path: str, text: str) -> str:
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        return f"{path},sha256={digest},{len(text.encode())}"

    record = [record_line(path, text) for path, text in files.items()] + [f"{dist_info}/RECORD,,"]
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
        zf.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return wheel


def state_of(task: dict) -> tuple[str, str | None]:
    return task["state"]["life_cycle_state"], task["state"].get("result_state")


def by_key(run: dict) -> dict[str, dict]:
    return {t["task_key"]: t for t in run["tasks"]}


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_a_job_imports_only_the_runtime_and_what_its_run_declares(runner):
    runtime_lock = (REPO / "requirements" / "runtime.lock").read_text()
    assert not re.search(rf"^{PINNED.split('==')[0]}==", runtime_lock, re.M), "pick a library outside the runtime"
    hook = runner.hook()
    declared = [{"pypi": {"package": PINNED}}]
    run = runner.wait_terminal(
        hook.submit_run(
            {"run_name": "imports", "tasks": [import_task("undeclared"), import_task("declared", declared)]}
        ),
        timeout=150,
    )
    tasks = by_key(run)

    # undeclared: the runtime's packages import, the library fails as it would on Databricks
    assert state_of(tasks["undeclared"]) == ("TERMINATED", "FAILED")
    output = hook.get_run_output(tasks["undeclared"]["run_id"])
    assert output["error"] == "ModuleNotFoundError: No module named 'iniconfig'"
    assert "import_job.py" in output["error_trace"] and output["error_trace"].startswith("Traceback")
    assert "import_job: pandas from" in output["logs"]
    # nothing of the checkout is on the job's path, except the runtime environment kept under .local/
    sys_path = [Path(p) for p in json.loads(re.search(r"^SYS_PATH (.*)$", output["logs"], re.M).group(1))]
    runtime = REPO / ".local" / "databricks-runtime"
    assert [p for p in sys_path if p.is_relative_to(REPO) and not p.is_relative_to(runtime)] == []

    # declared as a pypi library: installed into an environment of the task's own
    envs = runner.state_dir / "envs"
    assert state_of(tasks["declared"]) == ("TERMINATED", "SUCCESS")
    first = hook.get_run_output(tasks["declared"]["run_id"])["logs"]
    assert f"+ {PINNED}" in first  # uv's install output leads the driver log
    (imported,) = re.findall(r"^import_job: iniconfig from (.*)$", first, re.M)
    assert Path(imported).is_relative_to(envs)

    # the same libraries again: the cached environment, nothing installed
    (again,) = runner.wait_terminal(hook.submit_run({"tasks": [import_task("declared", declared)]}))["tasks"]
    assert state_of(again) == ("TERMINATED", "SUCCESS")
    logs = hook.get_run_output(again["run_id"])["logs"]
    assert f"import_job: iniconfig from {imported}" in logs and PINNED not in logs
    assert len([p for p in envs.iterdir() if p.is_dir()]) == 1
    assert again["setup_duration"] < tasks["declared"]["setup_duration"]
    print(f"environment setup: first {tasks['declared']['setup_duration']} ms, cached {again['setup_duration']} ms")


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_python_wheel_task_and_library_installation_failures(runner, tmp_path):
    wheel = make_wheel(
        tmp_path, "tinyjob", "0.1.0", {"tinyjob/__init__.py": TINYJOB}, "[console_scripts]\ntiny = tinyjob:main\n"
    )
    runner.deploy(wheel, WHEEL_PATH)
    hook = runner.hook()
    run_id = hook.submit_run(
        {
            "run_name": "wheels",
            "tasks": [
                # job cluster: the wheel as a library; `tiny` is an entry point of its metadata
                wheel_task(
                    "entry_point",
                    "tiny",
                    {"parameters": ["--manifest", "s3://landing/a b"]},
                    libraries=[{"whl": WHEEL_PATH}],
                ),
                # serverless: the wheel as an environment dependency; `direct` is no entry point, so
                # tinyjob.direct() is called
                wheel_task(
                    "function", "direct", {"named_parameters": {"date": "2026-11-26"}}, environment_key="default"
                ),
                wheel_task("missing_wheel", "tiny", {}, libraries=[{"whl": MISSING_WHEEL}]),
                wheel_task("no_such_version", "tiny", {}, libraries=[{"pypi": {"package": "iniconfig==0.0.1"}}]),
            ],
            "environments": [
                {"environment_key": "default", "spec": {"environment_version": "2", "dependencies": [WHEEL_PATH]}}
            ],
        }
    )
    run = runner.wait_terminal(run_id, timeout=150)
    tasks = by_key(run)

    assert state_of(tasks["entry_point"]) == ("TERMINATED", "SUCCESS")
    logs = hook.get_run_output(tasks["entry_point"]["run_id"])["logs"]
    assert 'tinyjob main ["tinyjob", "--manifest", "s3://landing/a b"]' in logs
    assert "+ tinyjob==0.1.0" in logs  # uv installed the wheel for this task
    assert state_of(tasks["function"]) == ("TERMINATED", "SUCCESS")
    logs = hook.get_run_output(tasks["function"]["run_id"])["logs"]
    assert 'tinyjob direct ["tinyjob", "--date=2026-11-26"]' in logs
    assert "+ tinyjob==0.1.0" not in logs  # the same wheel, so the environment `entry_point` built

    # a library that cannot be installed fails its task as a workspace reports it
    missing, no_version = tasks["missing_wheel"], tasks["no_such_version"]
    for task in (missing, no_version):
        assert state_of(task) == ("INTERNAL_ERROR", "FAILED")
        assert task["state"]["state_message"].startswith("Library installation failed for library due to user error")
        assert task["status"]["termination_details"]["code"] == "LIBRARY_INSTALLATION_ERROR"
        assert hook.get_run_output(task["run_id"])["error"] == task["state"]["state_message"]
    assert f'for whl: "{MISSING_WHEEL}"' in missing["state"]["state_message"]
    assert "iniconfig==0.0.1" in no_version["state"]["state_message"]  # uv's explanation
    assert "No solution found" in hook.get_run_output(no_version["run_id"])["logs"]

    assert state_of(run) == ("INTERNAL_ERROR", "FAILED")
    assert (
        run["state"]["state_message"] == f"Task missing_wheel failed with message: {missing['state']['state_message']}"
    )
    assert run["status"]["termination_details"]["code"] == "LIBRARY_INSTALLATION_ERROR"
