"""What the dlt and notebook contenders need installed: the bench venv and the MySQL JDBC driver."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.member_daily.config import BENCH_LOCK, BENCH_VENV, JDBC_ARTIFACT, JDBC_JAR


def ensure_bench_venv() -> None:
    """.local/bench-venv from requirements/bench.lock (created or re-synced when the lock changed)."""
    want = hashlib.sha256(BENCH_LOCK.read_bytes()).hexdigest()[:16]
    stamp = BENCH_VENV / ".lock-hash"
    if stamp.exists() and stamp.read_text().strip() == want and (BENCH_VENV / "bin" / "python").exists():
        return
    print(f"  installing requirements/bench.lock into {BENCH_VENV} ...", flush=True)
    uv = str(Path(sys.executable).with_name("uv"))
    if not (BENCH_VENV / "bin" / "python").exists():
        subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(BENCH_VENV)], check=True)
    subprocess.run([uv, "pip", "sync", "-q", "-p", str(BENCH_VENV / "bin" / "python"), "--require-hashes",
                    str(BENCH_LOCK)], check=True)
    stamp.write_text(want + "\n")


def ensure_jdbc_jar() -> None:
    """MySQL Connector/J from Maven Central into the download cache (never the repository), as
    `dev/stack.sh install` gets the Spark jars; kept out of <cache>/jars, which every Spark of the stack loads."""
    if JDBC_JAR.exists():
        return
    print(f"  fetching {JDBC_ARTIFACT} from Maven Central into {JDBC_JAR.parent} ...", flush=True)
    JDBC_JAR.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mvn", "-q", "-B", "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy",
                    f"-Dartifact={JDBC_ARTIFACT}", f"-DoutputDirectory={JDBC_JAR.parent}"],
                   check=True, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL)
