"""Which Apache Spark each Databricks Runtime runs: the one place that maps a cluster's `spark_version`
to the Spark the tests must run.

The default runtime is the one the project is tested against: requirements/runtime.in pins the pyspark
of its Spark line and dev/jars/pom.xml the matching Delta and Hadoop jars, and
tests/include/test_databricks_runtime.py fails when the pins and this table disagree. Source: Databricks
Runtime release notes, "versions and compatibility" (LTS releases and their Apache Spark version).
"""

from __future__ import annotations

# DBR version key -> Apache Spark major.minor. LTS releases only: a job cluster should run an LTS.
SPARK_OF_RUNTIME = {
    "17.3.x-scala2.13": "4.0",  # 17.3 LTS: Spark 4.0.0, Scala 2.13, Delta Lake 4.0
    "16.4.x-scala2.12": "3.5",  # 16.4 LTS: Spark 3.5.2
    "15.4.x-scala2.12": "3.5",  # 15.4 LTS: Spark 3.5.0
}
DEFAULT_RUNTIME = "17.3.x-scala2.13"


def spark_line(runtime: str) -> str:
    """"major.minor" of the Spark a runtime ships; raises KeyError for a runtime not in the table."""
    return SPARK_OF_RUNTIME[runtime]
