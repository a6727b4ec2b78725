"""The runner's settings: command-line options plus environment variables, read once at start-up.

Two folders stand in for what a workspace provides:

- the workspace file system (``--workspace-dir``): ``/Workspace/...``, ``/Volumes/...`` and ``dbfs:/...``
  paths map to ``<workspace-dir>/Workspace/...``, ``<workspace-dir>/Volumes/...``, ``<workspace-dir>/dbfs/...``;
- the Databricks runtime (``--runtime-python``): a virtualenv with what a cluster provides (pyspark, delta,
  pandas, ...) and nothing else. Its packages are read once here: they identify the runtime in the keys
  of cached task environments, and pin what a library may not replace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dev.databricks_runner.secrets import store_path
from dev.local_spark import local_spark_conf

REPO = Path(__file__).resolve().parents[2]
DEFAULT_WORKSPACE = REPO / ".local" / "workspace"
DEFAULT_RUNTIME_PYTHON = REPO / ".local" / "databricks-runtime" / "bin" / "python"

# Workspace path prefixes and the folder of --workspace-dir each maps to ("dbfs:/x" is "/dbfs/x" on a cluster).
WORKSPACE_ROOTS = {"/Workspace/": "Workspace", "/Volumes/": "Volumes", "dbfs:/": "dbfs"}

# What the runtime's interpreter reports about itself; -I (isolated) keeps PYTHONPATH and user site out.
_RUNTIME_QUERY = """
import json, sys, sysconfig
from importlib.metadata import distributions
import pyspark
print(json.dumps({
    "python_version": "%d.%d" % sys.version_info[:2],
    "site_packages": sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}),
    "spark_home": pyspark.__path__[0],
    "packages": {d.metadata["Name"].lower().replace("_", "-"): d.version for d in distributions()},
}))
"""


class ConfigError(Exception):
    """A setting that makes the runner refuse to start."""


@dataclass(frozen=True)
class Runtime:
    """The Databricks runtime stand-in: a virtualenv that task environments are layered on."""

    python: str  # its interpreter, as given (a venv's bin/python: resolving the symlink would leave the venv)
    python_version: str  # "3.11"
    site_packages: list[str]
    spark_home: str  # its pyspark, where spark-submit finds Spark
    packages: dict[str, str]  # normalised distribution name -> version

    @classmethod
    def inspect(cls, python: Path) -> Runtime:
        if not os.access(python, os.X_OK):
            raise ConfigError(f"--runtime-python {python} does not exist: run `dev/stack.sh install` first")
        done = subprocess.run([str(python), "-I", "-c", _RUNTIME_QUERY], check=False, capture_output=True, text=True)
        if done.returncode:
            raise ConfigError(f"--runtime-python {python} has no working pyspark:\n{done.stderr[-2000:]}")
        return cls(python=str(python), **json.loads(done.stdout))


@dataclass(frozen=True)
class RunnerConfig:
    token: str  # the only bearer token the API accepts
    state_dir: Path
    workspace_dir: Path
    runtime: Runtime
    uv: str  # installs each task's libraries
    max_concurrent_runs: int
    spark_master: str
    spark_conf: dict[str, str]  # dev/local_spark.py's Delta + S3A settings, computed once
    secrets_file: Path  # the secret store (secrets.py): RUNNER_SECRETS_FILE, else <state-dir>/secrets.json
    # the driver heap of a task whose cluster names no known node type (spark.cluster_spark_conf)
    default_driver_memory: str = "2g"
    kill_grace_seconds: float = 5.0  # SIGTERM, then SIGKILL after this long

    def __repr__(self) -> str:  # keep the token (and S3 keys in spark_conf) out of any log line
        return f"RunnerConfig(state_dir={self.state_dir}, workspace_dir={self.workspace_dir}, ...)"

    @property
    def spark_submit(self) -> str:
        return str(Path(self.runtime.python).with_name("spark-submit"))

    def workspace_file(self, path: str) -> Path:
        """The local file a workspace path names. ValueError for any other path, or one escaping the folder."""
        prefix = next((p for p in WORKSPACE_ROOTS if path.startswith(p)), None)
        if prefix is None:
            raise ValueError(f"{path!r} is not a workspace path ({', '.join(WORKSPACE_ROOTS)}...)")
        relative = PurePosixPath(WORKSPACE_ROOTS[prefix], path[len(prefix) :])
        local = (self.workspace_dir / relative).resolve()
        if not local.is_relative_to(self.workspace_dir / WORKSPACE_ROOTS[prefix]):
            raise ValueError(f"{path!r} points outside {prefix}")
        return local

    @classmethod
    def load(
        cls,
        *,
        state_dir: Path,
        workspace_dir: Path | None = None,
        runtime_python: Path | None = None,
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
            raise ConfigError(f"--workspace-dir {workspace} is not a directory (`dev/stack.sh deploy` makes it)")
        runtime = Runtime.inspect((runtime_python or DEFAULT_RUNTIME_PYTHON).absolute())
        uv = Path(sys.executable).with_name("uv")
        uv = str(uv) if uv.exists() else shutil.which("uv")
        if not uv:
            raise ConfigError("uv not found next to this Python or on PATH: it installs the runs' libraries")
        try:
            spark_conf = local_spark_conf(dict(env))
        except RuntimeError as e:  # no Delta/S3A jars yet
            raise ConfigError(str(e)) from e
        # Spark's INFO chatter would bury the job's own output and traceback in the driver log.
        spark_conf.setdefault("spark.log.level", "WARN")
        return cls(
            token=token.strip(),
            state_dir=state_dir.resolve(),
            workspace_dir=workspace,
            runtime=runtime,
            uv=uv,
            max_concurrent_runs=max_runs,
            spark_master=spark_master,
            spark_conf=spark_conf,
            secrets_file=store_path(state_dir.resolve(), env),
            default_driver_memory=env.get("RUNNER_DEFAULT_DRIVER_MEMORY", "2g"),
        )
