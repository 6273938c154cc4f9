"""House rules: the content core is a pure library and ships its rules as package data."""

from __future__ import annotations

import ast
import io
import zipfile
from pathlib import Path

import mirror.content
from mirror.content import Artifact, ScanConfig, scan_release
from mirror.content.rules import RULES_DIR

PACKAGE = Path(mirror.content.__file__).parent


def test_core_imports_nothing_else_from_the_mirror():
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                assert not (name.startswith("mirror") and not name.startswith("mirror.content")), (path.name, name)


def test_core_does_no_network_or_database_io():
    banned = {"requests", "httpx", "urllib.request", "socket", "sqlalchemy", "http.client"}
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not imported & banned, (path.name, imported & banned)


def test_rules_are_package_data_next_to_the_code():
    assert RULES_DIR.parent == PACKAGE
    assert len(list(RULES_DIR.glob("*.yar"))) >= 8


def test_zip_sdist_is_walked_like_a_tar_sdist():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("demo-1.0/PKG-INFO", "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n\n")
        archive.writestr("demo-1.0/demo/__init__.py", "import base64\nexec(base64.b64decode('eA=='))\n")
        archive.writestr("demo-1.0/../escape.py", "x = 1\n")
    report = scan_release([Artifact("demo-1.0.zip", out.getvalue(), provenance_known=False)], None, ScanConfig())
    found = {(f.detector, f.evidence["file"]) for f in report.findings}
    assert ("content.exec-decoded", "demo-1.0/demo/__init__.py") in found
    assert ("content.unsafe-path", "demo-1.0/../escape.py") in found
