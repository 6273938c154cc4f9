"""Print the code's layout, one line per module: its path and the first line of its docstring.

Run `python tests/architecture/layout.py`.  Because every module must have
a docstring (tests/architecture/test_layout.py), this tree is always whole.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("mirror", "detectors")


def module_paths() -> list[Path]:
    paths = []
    for package in PACKAGES:
        paths += [p for p in sorted((ROOT / package).rglob("*.py")) if "migrations" not in p.parts]
    return paths


def summary(path: Path) -> str:
    """The first line of the module's docstring, or '' when it has none."""
    docstring = ast.get_docstring(ast.parse(path.read_text()))
    return docstring.strip().splitlines()[0] if docstring else ""


def main() -> None:
    for path in module_paths():
        relative = path.relative_to(ROOT)
        is_package = path.name == "__init__.py"
        indent = "  " * (len(relative.parts) - (2 if is_package else 1))
        label = f"{relative.parent.name}/" if is_package else path.name
        print(f"{indent}{label:<28} {summary(path)}")


if __name__ == "__main__":
    main()
