# Databricks notebook source
# MAGIC %md
# MAGIC # The pipeline's Spark jobs, run from a Databricks notebook
# MAGIC
# MAGIC The DAGs submit each job as a `python_wheel_task` (include/databricks_runs.py). This notebook runs the same
# MAGIC entry points of the same wheel on a cluster you attach, for a one-off load, a re-run or a look at a result:
# MAGIC
# MAGIC 1. Import this file into the workspace (Workspace > Import > File): it is a notebook in Databricks' source
# MAGIC    format.
# MAGIC 2. Build the wheel (`uv build --wheel spark_jobs`, as `dev/stack.sh deploy` does), upload it to a Unity
# MAGIC    Catalog volume, and install it as a library on a **classic cluster in dedicated (single user) access
# MAGIC    mode** with Databricks Runtime 17.3 LTS, as the DAGs' runs ask (include/databricks_runs.py): the jobs read
# MAGIC    and write their result files through `spark._jvm`, which neither serverless nor standard (shared) access
# MAGIC    mode offers. The cluster reaches the buckets through its instance profile or a Unity Catalog external
# MAGIC    location, as the runs' clusters do.
# MAGIC 3. Fill the widgets: the job, then its parameters, named `<job>.<parameter>` so that switching jobs never
# MAGIC    passes another job's value (empty means the job's default; `<entry point> --help` explains each, from
# MAGIC    `lakehouse_jobs.results`). The PII keys come from the secret scope the runs
# MAGIC    use (docs/pii.md), never from a widget, and reach the job as the runs pass them: environment variables.

# COMMAND ----------

import dataclasses
import importlib.metadata
import json
import os

from lakehouse_jobs import pii
from lakehouse_jobs.results import JobParams

# every job of the wheel, by its entry point, with the parameters it takes (lakehouse_jobs.results)
PARAMS = {cls.ENTRY_POINT: cls for cls in JobParams.__subclasses__()}
FIELDS = {name: dataclasses.fields(cls) for name, cls in PARAMS.items()}

dbutils.widgets.dropdown("job", "member_merge", sorted(PARAMS), "job (the wheel's entry point)")  # noqa: F821
dbutils.widgets.text("secret_scope", "lakehouse", "secret scope of the PII keys")  # noqa: F821
for name, fields in FIELDS.items():
    for field in fields:
        default = field.default if field.default not in (dataclasses.MISSING, None) else ""
        dbutils.widgets.text(f"{name}.{field.name}", str(default))  # noqa: F821

# COMMAND ----------

job = dbutils.widgets.get("job")  # noqa: F821
# the command line a python_wheel_task passes: --name=value for each parameter given
argv = [f"--{f.name.replace('_', '-')}={value}" for f in FIELDS[job]
        if (value := dbutils.widgets.get(f"{job}.{f.name}").strip())]  # noqa: F821
print(job, *argv)

# COMMAND ----------

# The entry point as a python_wheel_task finds it: by name, in the installed wheel's metadata. The keys reach it
# as the cluster's spark_env_vars carry them on a DAG's run (read by pii.PiiKeys.from_env), for this run only.
[entry_point] = importlib.metadata.entry_points(group="console_scripts", name=job)
scope = dbutils.widgets.get("secret_scope")  # noqa: F821
os.environ[pii.HMAC_KEY_ENV] = dbutils.secrets.get(scope, "pii_hmac_key")  # noqa: F821
os.environ[pii.ENCRYPTION_KEY_ENV] = dbutils.secrets.get(scope, "pii_encryption_key")  # noqa: F821
try:
    result = entry_point.load()(argv, spark)  # noqa: F821
finally:
    for name in (pii.HMAC_KEY_ENV, pii.ENCRYPTION_KEY_ENV):
        os.environ.pop(name, None)
print(json.dumps(result.to_dict(), indent=2, default=str))
