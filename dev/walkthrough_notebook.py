"""Execute docs/walkthrough.ipynb against the running stack and store it with its outputs, so a reader sees
what every cell printed without running anything:

    dev/stack.sh run python -m dev.walkthrough_notebook      # `make notebook`

tests/docs/test_walkthrough_notebook.py executes it the same way (``execute``) and compares the result with the
stored copy by ``structure``: the same cells, the same kinds of output, no error. A cell whose output changes
shape (a new print, a removed display) fails that test until this command stores the notebook again.

The notebook works in a scratch MySQL database and a scratch bucket named by the run stamp (``WALKTHROUGH_RUN``)
and removes both in its last cell.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import uuid
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO_ROOT / "docs" / "walkthrough.ipynb"
# the values no output may show: keys and passwords the stack's environment holds
SECRET_VARIABLES = ("LAKEHOUSE_PII_HMAC_KEY", "LAKEHOUSE_PII_ENCRYPTION_KEY", "LAKEHOUSE_CHANGE_HASH_KEY",
                    "MYSQL_ROOT_PASSWORD", "MYSQL_EXTRACT_PASSWORD", "S3_SECRET_ACCESS_KEY", "DATABRICKS_TOKEN",
                    "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW_ADMIN_PASSWORD",
                    "AIRFLOW_METADATA_PASSWORD", "MINIO_KMS_SECRET_KEY")


def new_run() -> str:
    """A run stamp for the scratch names: UTC time and six random hex digits."""
    return f"{dt.datetime.now(dt.timezone.utc):%Y%m%dt%H%M%S}-{uuid.uuid4().hex[:6]}"


def execute(run: str, timeout_s: int = 600) -> nbformat.NotebookNode:
    """The notebook executed in a kernel of its own with this process's environment (the stack's) and
    WALKTHROUGH_RUN=`run`, the repository importable. Raises nbclient's CellExecutionError at the first cell
    that fails (its scratch database and bucket are then left for the caller to remove)."""
    # NO_COLOR: log lines without ANSI colour codes, which a stored notebook would show as junk
    env = {**os.environ, "WALKTHROUGH_RUN": run, "NO_COLOR": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}
    env.pop("WALKTHROUGH_KEEP", None)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=timeout_s, record_timing=False,
                   resources={"metadata": {"path": str(REPO_ROOT)}}).execute(env=env)
    return nb


def structure(nb: nbformat.NotebookNode) -> list[tuple]:
    """(cell type, source, kinds of output) of each cell, where a code cell's kinds are its outputs' types
    in order, stderr left out (Spark and library warnings come and go) and consecutive equal kinds merged
    (a print may arrive as one stream chunk or several)."""
    cells = []
    for cell in nb.cells:
        kinds: list[str] = []
        for out in cell.get("outputs", []):
            kind = f"stream:{out.name}" if out.output_type == "stream" else out.output_type
            if kind != "stream:stderr" and (not kinds or kinds[-1] != kind):
                kinds.append(kind)
        cells.append((cell.cell_type, cell.source, tuple(kinds)))
    return cells


def problems(nb: nbformat.NotebookNode, env: dict[str, str] | None = None) -> list[str]:
    """What makes an executed notebook unfit to store: a code cell not executed, an error output, or an
    output holding the value of one of SECRET_VARIABLES (from `env`, default os.environ)."""
    env = os.environ if env is None else env
    secrets = [env[name] for name in SECRET_VARIABLES if len(env.get(name, "")) >= 8]
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("execution_count") is None:
            found.append(f"cell {i} was not executed")
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                found.append(f"cell {i} raised {out.ename}")
            text = json.dumps(out, ensure_ascii=False)
            found += [f"cell {i} shows a secret" for s in secrets if s in text]
    return found


def main() -> int:
    run = new_run()
    nb = execute(run)
    if found := problems(nb):
        print(f"not stored: {'; '.join(found)}", file=sys.stderr)
        return 1
    nbformat.write(nb, NOTEBOOK)
    print(f"stored {NOTEBOOK.relative_to(REPO_ROOT)} with its outputs (run {run})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
