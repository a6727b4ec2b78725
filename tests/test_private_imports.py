"""No module imports another module's private (underscore) name: a helper two modules share is public in
the module that owns it. The other import rules (layers, no cycles) are import-linter contracts in
pyproject.toml, checked by `make lint`; this one is beyond what import-linter expresses."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("dags", "include", "spark_jobs/src/lakehouse_jobs", "dev")
FIRST_PARTY = ("dags", "include", "lakehouse_jobs", "dev")


def private_imports(path: Path) -> list[str]:
    """`module.name` for every `from <first-party module> import _name` in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level \
                and node.module.split(".")[0] in FIRST_PARTY:
            found += [f"{node.module}.{a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")]
    return found


def test_the_check_sees_a_private_import(tmp_path: Path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from include.extract.engine import _remove\n")
    assert private_imports(sample) == ["include.extract.engine._remove"]


def test_no_private_name_imported_across_modules():
    files = [p for top in PRODUCT for p in sorted((ROOT / top).rglob("*.py"))]
    assert len(files) > 50  # the product's modules were found
    found = {str(p.relative_to(ROOT)): names for p in files if (names := private_imports(p))}
    assert found == {}
