"""The import rules of include/, checked on the source (no imports run): no cycle between its modules, a
function-local import included (it would only hide one); no private (underscore) name imported from another
module; and include/landing/, the landed batch's home, depends on none of its clients."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in the file, at any depth; `from a import b` also yields a.b, which
    is a module when b is a submodule."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [alias.name for alias in node.names]
            found += [(node.module, names)] + [(f"{node.module}.{n}", []) for n in names]
    return found


MODULES = {module_name(p): p for p in sorted((ROOT / "include").rglob("*.py"))}
GRAPH = {name: sorted({m for m, _ in imports(path) if m in MODULES and m != name}) for name, path in MODULES.items()}


def test_no_import_cycle_between_include_modules():
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for dep in GRAPH[name]:
            assert state.get(dep) != "open", "import cycle: " + " -> ".join([*path, name, dep])
            if dep not in state:
                visit(dep, [*path, name])
        state[name] = "done"

    for name in GRAPH:
        if name not in state:
            visit(name, [])


def test_no_private_name_imported_across_modules():
    private = [(name, module, n) for name, path in MODULES.items() for module, names in imports(path)
               if module.startswith(("include", "lakehouse_jobs")) for n in names
               if n.startswith("_") and not n.startswith("__")]
    assert private == []


def test_the_landing_package_depends_on_none_of_its_clients():
    allowed = ("include.landing", "include.settings")
    outside = {name: [dep for dep in deps if dep != "include" and not dep.startswith(allowed)]
               for name, deps in GRAPH.items() if name.startswith("include.landing")}
    assert {name: deps for name, deps in outside.items() if deps} == {}
    assert len(outside) >= 8  # the package's modules were found
