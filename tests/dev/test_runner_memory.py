"""The local runner sizes the driver as the run's cluster would be sized (dev/databricks_runner/spark.py)."""

import pytest

from dev.databricks_runner.spark import cluster_spark_conf
from include.databricks_runs import member_merge_run
from include.settings import DatabricksSettings

pytestmark = pytest.mark.unit


def test_driver_memory_follows_the_node_type_of_the_submitted_run():
    (task,) = member_merge_run("b", DatabricksSettings.from_env({}))["tasks"]
    assert cluster_spark_conf(task["new_cluster"], "2g")["spark.driver.memory"] == "4096m"  # m6gd.large: 8 GiB
    bigger = member_merge_run("b", DatabricksSettings.from_env({"DATABRICKS_NODE_TYPE": "r6gd.xlarge"}))
    assert cluster_spark_conf(bigger["tasks"][0]["new_cluster"], "2g")["spark.driver.memory"] == "16384m"


def test_explicit_setting_wins_and_unknown_clusters_get_the_default():
    assert cluster_spark_conf({"node_type_id": "m6gd.large", "spark_conf": {"spark.driver.memory": "6g"}},
                              "2g")["spark.driver.memory"] == "6g"
    assert cluster_spark_conf({"node_type_id": "z9.huge"}, "3g")["spark.driver.memory"] == "3g"
    assert cluster_spark_conf(None, "3g") == {"spark.driver.memory": "3g"}  # existing cluster, serverless
    # only settings that change what a job computes pass; the rest is for a real cluster
    assert cluster_spark_conf({"spark_conf": {"spark.sql.shuffle.partitions": "8", "spark.hadoop.x": "y"}},
                              "2g") == {"spark.sql.shuffle.partitions": "8", "spark.driver.memory": "2g"}
