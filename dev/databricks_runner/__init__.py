"""A local stand-in for the Databricks Jobs API, for development without a workspace.

It speaks the slice of the Jobs API the Airflow databricks provider calls (runs/submit, runs/get,
runs/get-output, runs/cancel, runs/list, clusters/spark-versions) and runs each ``spark_python_task``
with spark-submit on local Spark with Delta and S3A, so a DAG submits the same JSON here as to a real
workspace. See docs/databricks-runner.md.

Modules, in the order a request meets them:

- ``__main__``  the command line (``python -m dev.databricks_runner serve ...``)
- ``config``    settings from options and environment, read once
- ``app``       the HTTP routes (FastAPI), auth, parameter parsing
- ``submit``    a runs/submit request -> a Run (validation, python_file mapping, dependency order)
- ``state``     Run / TaskRun and the Databricks state machine rules (pure)
- ``store``     run records on disk (survive restarts)
- ``executor``  the slot pool and the threads that run spark-submit, cancel and time out
- ``spark``     the spark-submit command, its settings file, reading tracebacks from driver logs
- ``render``    runs as JSON (Jobs API shapes) and as the HTML run page
- ``errors``    Databricks-style errors and lenient number parsing
"""
