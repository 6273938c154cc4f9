"""The layout's rules, checked: no import cycles, no private names across modules,
imports at the top of a module, and a pure core that imports nothing of the service.

A newcomer reads the architecture off the imports; these tests keep that reading true.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("mirror", "detectors")
# Imported inside a function on purpose: optional, or heavy and needed by one command only.
DEFERRED_OK = {
    # alembic costs memory: the server migrates in a child process and never loads it itself
    ("mirror.container", "mirror.db.migrate"),
    ("mirror.cli.serve", "mirror.db.migrate"),
    ("mirror.cli.admin", "mirror.db.migrate"),
    ("mirror.cli.serve", "mirror.app"),  # the ASGI app only for `serve`, not for `check` or `admin`
    ("mirror.cli.common", "mirror.sections"),  # the whole service, for the commands that run it, not `check`
    # pip-audit imports pip (~15 MiB): a server loads it when an audit first checks vulnerabilities
    ("mirror.audit.runner", "mirror.audit.vulns"),
}
PURE = ("detectors", "mirror.simple", "mirror.content")  # facts in, findings out


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = modules()


def imports(name: str) -> Iterator[tuple[ast.AST, str, list[str], bool]]:
    """(node, imported module, imported names, at top level) for each import in ``name``."""
    tree = ast.parse(MODULES[name].read_text())
    top = {id(node) for node in tree.body}
    for node in tree.body:  # imports under `if TYPE_CHECKING:` count as top level
        if isinstance(node, ast.If):
            top |= {id(child) for child in node.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name, [], id(node) in top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [alias.name for alias in node.names]
            submodules = [n for n in names if f"{node.module}.{n}" in MODULES]
            for imported in submodules:  # `from package import module`
                yield node, f"{node.module}.{imported}", [], id(node) in top
            others = [n for n in names if n not in submodules]
            if others:
                yield node, node.module, others, id(node) in top


def internal(module: str) -> bool:
    return module.split(".")[0] in PACKAGES


def runtime_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    for name in MODULES:
        tree_text = MODULES[name].read_text()
        for node, module, _, _ in imports(name):
            if module in MODULES and module != name and "TYPE_CHECKING" not in _guard(tree_text, node):
                edges[name].add(module)
    return edges


def _guard(text: str, node: ast.AST) -> str:
    tree = ast.parse(text)
    for stmt in tree.body:
        if isinstance(stmt, ast.If) and node in list(ast.walk(stmt)):
            return ast.unparse(stmt.test)
    return ""


def test_no_import_cycles() -> None:
    edges = runtime_edges()
    seen: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(name: str) -> None:
        seen[name] = 1
        stack.append(name)
        for other in sorted(edges[name]):
            if seen.get(other) == 1:
                cycles.append(stack[stack.index(other):] + [other])
            elif other not in seen:
                visit(other)
        stack.pop()
        seen[name] = 2

    for name in sorted(edges):
        if name not in seen:
            visit(name)
    # A package's __init__ importing its own submodules is not a cycle of design.
    real = [c for c in cycles if not all(m.startswith(c[0] + ".") or m == c[0] for m in c[1:])]
    assert real == []


def test_no_private_names_across_modules() -> None:
    offences = [
        f"{name} imports {module}.{imported}"
        for name in MODULES
        for _, module, names, _ in imports(name)
        if internal(module) and module != name
        for imported in names
        if imported.startswith("_") and not imported.startswith("__")
    ]
    assert offences == []


def test_imports_are_at_the_top() -> None:
    offences = [
        f"{name} imports {module} inside a function"
        for name in MODULES
        for _, module, _, top in imports(name)
        if internal(module) and not top and (name, module) not in DEFERRED_OK
    ]
    assert offences == []


@pytest.mark.parametrize("core", PURE)
def test_pure_cores_import_nothing_of_the_service(core: str) -> None:
    offences = [
        f"{name} imports {module}"
        for name in MODULES
        if name == core or name.startswith(core + ".")
        for _, module, _, _ in imports(name)
        if module.startswith("mirror") and not (module == core or module.startswith(core + "."))
    ]
    assert offences == []
