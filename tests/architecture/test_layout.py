"""Every module says what it is for, so the layout printed by `layout.py` reads as the architecture."""

from __future__ import annotations

import pytest

from tests.architecture.layout import ROOT, module_paths, summary


@pytest.mark.parametrize("path", module_paths(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_has_a_docstring(path) -> None:
    assert summary(path), f"{path.relative_to(ROOT)} has no docstring: say what the module is for"
