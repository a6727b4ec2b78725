"""How a task run becomes a spark-submit process, and how its driver log is read back.

Every setting goes to spark-submit through a ``--properties-file`` (mode 0600, deleted when the process
ends) rather than ``--conf k=v`` pairs: the S3 secret key from dev/local_spark.py would otherwise sit
in the process's argv, readable by any local user through ``ps``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from dev.databricks_runner.config import RunnerConfig
from dev.databricks_runner.state import TaskRun

# A cluster's spark_conf is written for a real cluster (instance profiles, Unity Catalog, DBFS...), so
# most of it would break local Spark. Only settings that change what a job computes are worth keeping,
# and the local Delta/S3A settings still win on a clash.
CLUSTER_CONF_PREFIXES = ("spark.sql.", "spark.databricks.delta.")

# What a task inherits from the runner's environment: only what a process needs to run (locale, temp
# dir, Java, uv's and TLS settings), never the stack's .env, which holds every local secret (database
# passwords, Airflow's keys, the runner's token). A job reading a variable its cluster would not have must
# fail here as on Databricks; S3 access reaches Spark through the properties file, not the environment.
_PASSED_ENV = re.compile(
    r"^(PATH|HOME|USER|LOGNAME|SHELL|TERM|LANG|LANGUAGE|LC_\w+|TZ|TMPDIR|JAVA_HOME|UV_\w+|SSL_CERT_\w+"
    r"|REQUESTS_CA_BUNDLE|OPENBLAS_\w+|OMP_\w+|(?i:https?_proxy|no_proxy))$"
)

# Variables the runner sets for every task, which a cluster's spark_env_vars do not override: they point
# at the local Spark, interpreter and JVM, where a cluster's values (PYSPARK_PYTHON=/databricks/python3/...,
# a common default of cluster specs) name paths of a Databricks node.
LOCAL_ENV = frozenset({"SPARK_HOME", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "PATH", "SPARK_LOCAL_IP", "JAVA_HOME"})

# The primary file of every python_wheel_task, copied into the task's work directory.
WHEEL_LAUNCHER = Path(__file__).with_name("wheel_task.py")


# Memory (GiB) of the node types a job cluster may name: AWS's instance specifications. The driver of a
# job cluster runs on one such node; locally it is the single JVM that does all the work.
NODE_MEMORY_GIB = {
    "m6gd.large": 8, "m6gd.xlarge": 16, "m6gd.2xlarge": 32, "m5d.large": 8, "m5d.xlarge": 16,
    "r6gd.large": 16, "r6gd.xlarge": 32, "r6gd.2xlarge": 64, "i3.xlarge": 30.5,
}
# Share of a node's memory given to the driver's JVM heap; the rest stays for the OS, the Python workers
# (pandas UDFs) and off-heap buffers, as on a Databricks node, where the heap is well under the node size.
DRIVER_HEAP_SHARE = 0.5


def cluster_spark_conf(cluster: Mapping | None, default_driver_memory: str) -> dict[str, str]:
    """The spark-submit settings a task's cluster implies locally.

    Only spark.sql.* and spark.databricks.delta.* of its spark_conf (the rest is for a real cluster), and
    the driver memory: spark.driver.memory from the spark_conf if set, else DRIVER_HEAP_SHARE of the
    driver node's memory (NODE_MEMORY_GIB by driver_node_type_id or node_type_id), else
    `default_driver_memory` (an existing cluster, serverless, or a node type not in the table).
    """
    conf = (cluster or {}).get("spark_conf") or {}
    kept = {str(k): str(v) for k, v in conf.items() if str(k).startswith(CLUSTER_CONF_PREFIXES)}
    node = (cluster or {}).get("driver_node_type_id") or (cluster or {}).get("node_type_id")
    if "spark.driver.memory" in conf:
        kept["spark.driver.memory"] = str(conf["spark.driver.memory"])
    elif node in NODE_MEMORY_GIB:
        kept["spark.driver.memory"] = f"{int(NODE_MEMORY_GIB[node] * DRIVER_HEAP_SHARE * 1024)}m"
    else:
        kept["spark.driver.memory"] = default_driver_memory
    return kept


def write_properties(path: Path, conf: Mapping[str, str]) -> None:
    """Write a Java properties file that only the runner's user can read."""

    def escape(text: str, is_key: bool) -> str:
        text = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        if is_key:
            text = re.sub(r"([=: #!])", r"\\\1", text)
        return text

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for key, value in conf.items():
            f.write(f"{escape(key, True)}={escape(value, False)}\n")


def command(config: RunnerConfig, task: TaskRun, run_name: str, properties: Path) -> list[str]:
    """spark-submit of the runtime. A python_wheel_task runs the launcher the executor copied next to
    ``properties`` (the task's work directory), which finds and calls the entry point."""
    if task.wheel:
        primary, arguments = str(properties.with_name(WHEEL_LAUNCHER.name)), [*task.wheel, *task.parameters]
    else:
        primary, arguments = task.local_file, task.parameters
    return [
        config.spark_submit,
        "--master", config.spark_master,
        "--name", f"{run_name}:{task.task_key}",
        "--properties-file", str(properties),
        primary,
        *arguments,
    ]  # fmt: skip


def environment(config: RunnerConfig, python: str, cluster_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment of a task whose environment's interpreter is ``python``.

    ``cluster_env`` is its cluster's ``spark_env_vars``, secret references already resolved: added
    explicitly for this task, over what passes from the runner's own environment. The runner's settings
    below still win (LOCAL_ENV), as local Spark settings win over a cluster's spark_conf."""
    env = {k: v for k, v in os.environ.items() if _PASSED_ENV.match(k)}
    env |= {k: v for k, v in (cluster_env or {}).items() if k not in LOCAL_ENV}
    return env | {
        "SPARK_HOME": config.runtime.spark_home,
        # the driver and the executors' Python workers both run the task's environment
        "PYSPARK_PYTHON": python,
        "PYSPARK_DRIVER_PYTHON": python,
        # a job that starts `python` gets its own environment, never the project's .venv on PATH
        "PATH": f"{Path(python).parent}{os.pathsep}{env.get('PATH', '')}",
        # stay on loopback instead of binding the driver to the machine's public interface
        "SPARK_LOCAL_IP": "127.0.0.1",
    }


def read_tail(path: Path, limit: int) -> tuple[str, bool]:
    """The last ``limit`` bytes of a log, and whether anything was cut off."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", errors="replace"), size > limit
    except FileNotFoundError:
        return "", False


_TRACEBACK = "Traceback (most recent call last):"
_CHAINED = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
# a log4j line ("26/11/26 19:04:34 WARN ...") ends a multi-line exception message
_LOG4J_LINE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d ")


def python_error(log_text: str) -> tuple[str, str] | None:
    """(error, error_trace) from the last Python traceback in a driver log, or None if there is none.

    ``error`` is the exception line ("ValueError: boom"), ``error_trace`` the whole traceback including
    the exceptions it was chained from, as Databricks fills runs/get-output for a spark_python_task.
    """
    lines = log_text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(_TRACEBACK)]
    if not starts:
        return None
    # Frames are indented; the first unindented line after the header is the exception itself.
    start = starts[-1]
    end = next((j for j in range(start + 1, len(lines)) if lines[j][:1] not in ("", " ", "\t")), None)
    if end is None:
        return None
    error = lines[end]
    # keep the rest of a multi-line message (e.g. the JVM stack trace of a Py4J error)
    last = end
    while last + 1 < len(lines) and lines[last + 1].strip() and not _LOG4J_LINE.match(lines[last + 1]):
        last += 1
    # walk back over tracebacks this one was chained from
    first = start
    for prev in reversed(starts[:-1]):
        between = [line.strip() for line in lines[prev:first] if line.strip()]
        if not any(marker in between[-2:] for marker in _CHAINED):
            break
        first = prev
    return error, "\n".join(lines[first : last + 1])
