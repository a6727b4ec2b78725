"""The local runner sizes the driver as the run's cluster would, and passes a task no secret of the stack."""

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


def test_tasks_inherit_no_secret_of_the_stack(monkeypatch):
    """The runner's process has the whole .env; a task gets only what a process needs to run."""
    from types import SimpleNamespace

    from dev.databricks_runner.spark import environment

    for name in ("MYSQL_ROOT_PASSWORD", "AIRFLOW__CORE__FERNET_KEY", "DATABRICKS_TOKEN", "AIRFLOW_CONN_X",
                 "S3_SECRET_ACCESS_KEY", "PYTHONPATH", "VIRTUAL_ENV"):
        monkeypatch.setenv(name, "canary-secret")
    monkeypatch.setenv("LANG", "C.UTF-8")
    env = environment(SimpleNamespace(runtime=SimpleNamespace(spark_home="/spark")), "/envs/e/bin/python")
    assert "canary-secret" not in env.values()
    assert env["LANG"] == "C.UTF-8" and env["PYSPARK_PYTHON"] == "/envs/e/bin/python"
    assert env["PATH"].startswith("/envs/e/bin")
