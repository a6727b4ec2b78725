"""The runner's settings: command-line options plus environment variables, read once at start-up."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dev.local_spark import local_spark_conf

# The checkout containing this package: python_file paths map into it unless --workspace-dir says otherwise.
DEFAULT_WORKSPACE = Path(__file__).resolve().parents[2]


class ConfigError(Exception):
    """A setting that makes the runner refuse to start."""


@dataclass(frozen=True)
class RunnerConfig:
    token: str  # the only bearer token the API accepts
    state_dir: Path
    workspace_dir: Path
    spark_jobs_root: str | None  # workspace prefix that maps to workspace_dir (SPARK_JOBS_ROOT)
    max_concurrent_runs: int
    spark_master: str
    spark_submit: str
    spark_home: str
    spark_conf: dict[str, str]  # dev/local_spark.py's Delta + S3A settings, computed once
    kill_grace_seconds: float = 5.0  # SIGTERM, then SIGKILL after this long

    def __repr__(self) -> str:  # keep the token (and S3 keys in spark_conf) out of any log line
        return f"RunnerConfig(state_dir={self.state_dir}, workspace_dir={self.workspace_dir}, ...)"

    @classmethod
    def load(
        cls,
        *,
        state_dir: Path,
        workspace_dir: Path | None = None,
        spark_master: str = "local[2]",
        env: Mapping[str, str] = os.environ,
    ) -> RunnerConfig:
        token = env.get("DATABRICKS_TOKEN", "")
        if not token.strip():
            raise ConfigError("DATABRICKS_TOKEN is not set: the runner accepts only that bearer token")
        try:
            max_runs = int(env.get("RUNNER_MAX_CONCURRENT_RUNS", "1"))
        except ValueError:
            max_runs = 0
        if max_runs < 1:
            raise ConfigError("RUNNER_MAX_CONCURRENT_RUNS must be a whole number >= 1")
        workspace = (workspace_dir or DEFAULT_WORKSPACE).resolve()
        if not workspace.is_dir():
            raise ConfigError(f"--workspace-dir {workspace} is not a directory")
        try:
            spark_conf = local_spark_conf(dict(env))
        except RuntimeError as e:  # no Delta/S3A jars yet
            raise ConfigError(str(e)) from e
        # Spark's INFO chatter would bury the job's own output and traceback in the driver log.
        spark_conf.setdefault("spark.log.level", "WARN")
        # the spark-submit of this venv's pyspark, so jobs get the same Spark as the tests
        spark_submit = Path(sys.executable).with_name("spark-submit")
        if not spark_submit.exists():
            spark_submit = Path(shutil.which("spark-submit") or "")
        if not spark_submit.name:
            raise ConfigError("spark-submit not found next to this Python or on PATH")
        spec = importlib.util.find_spec("pyspark")
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError("pyspark is not installed in this Python environment")
        return cls(
            token=token.strip(),
            state_dir=state_dir.resolve(),
            workspace_dir=workspace,
            spark_jobs_root=env.get("SPARK_JOBS_ROOT", "").rstrip("/") or None,
            max_concurrent_runs=max_runs,
            spark_master=spark_master,
            spark_submit=str(spark_submit),
            spark_home=spec.submodule_search_locations[0],
            spark_conf=spark_conf,
        )
