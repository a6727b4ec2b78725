"""A local stand-in for the Databricks Jobs API, for development without a workspace.

It speaks the slice of the Jobs API the Airflow databricks provider calls (runs/submit, runs/get,
runs/get-output, runs/cancel, runs/list, clusters/spark-versions) and runs each ``spark_python_task``
and ``python_wheel_task`` with spark-submit on local Spark with Delta and S3A, so a DAG submits the same
JSON here as to a real workspace. Like a workspace, it runs only what a run declares: files come from a
local workspace folder (never the repository), and each task gets a Python environment made of the
runtime plus the libraries the run lists. See docs/databricks-runner.md.

Modules, in the order a request meets them:

- ``__main__``  the command line (``python -m dev.databricks_runner serve ...``)
- ``config``    settings from options and environment, read once
- ``app``       the HTTP routes (FastAPI), auth, parameter parsing
- ``submit``    a runs/submit request -> a Run (validation, workspace paths, libraries, dependency order)
- ``state``     Run / TaskRun and the Databricks state machine rules (pure)
- ``store``     run records on disk (survive restarts)
- ``executor``  the slot pool and the threads that run spark-submit, cancel and time out
- ``environments`` each task's Python environment: runtime + declared libraries, cached by content
- ``wheel_task``  the launcher a python_wheel_task runs: finds and calls the package's entry point
- ``spark``     the spark-submit command, its settings file, reading tracebacks from driver logs
- ``render``    runs as JSON (Jobs API shapes) and as the HTML run page
- ``errors``    Databricks-style errors and lenient number parsing
"""
