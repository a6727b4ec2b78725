"""The default production runtime runs the Spark line the tests run (include/databricks_runtime.py)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

import pytest

from include.databricks_runtime import DEFAULT_RUNTIME, spark_line
from include.settings import DatabricksSettings
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit


def pin(lock: Path, package: str) -> str:
    match = re.search(rf"^{re.escape(package)}==(\S+)", lock.read_text(), re.MULTILINE)
    assert match, f"{package} is not pinned in {lock}"
    return match.group(1)


def pom_versions() -> dict[str, str]:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.parse(REPO_ROOT / "dev" / "jars" / "pom.xml").getroot()
    return {d.find("m:artifactId", ns).text: d.find("m:version", ns).text
            for d in root.iterfind("m:dependencies/m:dependency", ns)}


def major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def test_default_runtime_runs_the_tested_spark():
    assert DatabricksSettings.from_env({}).spark_version == DEFAULT_RUNTIME
    runtime_lock = REPO_ROOT / "requirements" / "runtime.lock"
    assert major_minor(pin(runtime_lock, "pyspark")) == spark_line(DEFAULT_RUNTIME)
    # the pyspark that runs this test session is the one the runtime lock pins
    assert metadata.version("pyspark") == pin(runtime_lock, "pyspark")


def test_jars_match_the_python_pins():
    runtime_lock = REPO_ROOT / "requirements" / "runtime.lock"
    jars = pom_versions()
    delta = pin(runtime_lock, "delta-spark")
    assert jars["delta-spark_2.13"] == jars["delta-storage"] == delta
    # hadoop-aws must be the Hadoop version bundled in the pyspark wheel (hadoop-client-api-<v>.jar)
    import pyspark

    (client,) = (Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar")
    assert jars["hadoop-aws"] == client.stem.removeprefix("hadoop-client-api-")


def test_unknown_runtime_is_not_guessed():
    with pytest.raises(KeyError):
        spark_line("99.9.x-scala2.13")
