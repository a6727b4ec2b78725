"""The three locks (requirements/) agree with each other and with the jobs package's own metadata."""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit
LOCKS = REPO_ROOT / "requirements"


def pins(name: str) -> dict[str, str]:
    text = (LOCKS / f"{name}.lock").read_text()
    return {m[1].lower(): m[2] for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.MULTILINE)}


def jobs_dependencies() -> dict[str, str]:
    project = tomllib.loads((REPO_ROOT / "spark_jobs" / "pyproject.toml").read_text())["project"]
    return dict(d.lower().split("==") for d in project["dependencies"])


def test_jobs_dependencies_are_pinned_and_locked_for_development():
    """The wheel's metadata is the only list of its dependencies; dev.lock is compiled from it (make lock)."""
    dev = pins("dev")
    for package, version in jobs_dependencies().items():
        assert dev.get(package) == version, f"{package}=={version}: run `make lock`"


def test_the_runtime_does_not_provide_what_the_jobs_must_declare():
    """The local runner's base environment is the Databricks runtime: if it carried a job's dependency, a
    run that forgot to declare it would pass locally and fail on a cluster."""
    assert not jobs_dependencies().keys() & pins("runtime").keys()


def test_one_version_of_each_package_everywhere():
    dev = pins("dev")
    for name in ("airflow", "runtime"):
        differing = {p: (v, dev.get(p)) for p, v in pins(name).items() if dev.get(p) != v}
        assert not differing, f"{name}.lock disagrees with dev.lock: {differing}; run `make lock`"
