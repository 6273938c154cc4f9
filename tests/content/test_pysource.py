"""The import-time check parses only module-level code: it must see exactly what the whole parse sees.

Every source here is only parsed, never run; the "payloads" start a
process that prints.
"""

from __future__ import annotations

import ast

import pytest

from mirror.content import Artifact
from mirror.content.hooks import import_time_behaviours
from mirror.content.pysource import module_level_source

from tests.content.helpers import detectors, raw_wheel, scan

PAYLOAD = b'subprocess.Popen([sys.executable, "-c", "print(\'harmless\')"])\n'


def _module_view(tree: ast.Module) -> list[object]:
    """What the import-time check depends on: module-level statements, def/class headers, line numbers."""
    out: list[object] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append((type(node).__name__, node.name, node.lineno,
                        [ast.dump(d, include_attributes=True) for d in node.decorator_list]))
        else:
            out.append(ast.dump(node, include_attributes=True))
    return out


def _same_module_level(source: bytes) -> bytes | None:
    skeleton = module_level_source(source)
    if skeleton is not None:
        assert skeleton.count(b"\n") == source.count(b"\n")
        assert _module_view(ast.parse(skeleton)) == _module_view(ast.parse(source))
    return skeleton


# Each hides PAYLOAD at module level behind something a naive line cut would take for a function body.
TRICKY = {
    "col-0 def inside a docstring": b'def f():\n    x = """\ndef g():\n    """\n    return x\n' + PAYLOAD,
    "string closing on an indented line": b's = """\ndef f():\n    """ + str(' + PAYLOAD.rstrip(b"\n") + b')\n',
    "bracket continuation at column 0": b"def f():\n    x = (\n1)\n    return x\n" + PAYLOAD,
    "backslash continuation": b"def f():\n    return 1 + \\\n0\n" + PAYLOAD,
    "comment with quotes and brackets": b"def f():  # it's (\n    return 1\n" + PAYLOAD,
    "escaped quotes": b"def f():\n    return '\\'' + \"\\\"\"\n" + PAYLOAD,
    "raw string ending in an escaped quote": b"def f():\n    return r'\\''\n" + PAYLOAD,
    "triple quote ending in a quote": b'def f():\n    return """a""""b"\n' + PAYLOAD,
    "f-string with fields and specs": b'def f(x, w):\n    return f"{x!r:>{w}} {x[\'k\']} {{}}"\n' + PAYLOAD,
    "multi-line header": b"def f(\n    a,\n    b=(1,\n2),\n):\n    return a\n" + PAYLOAD,
    "decorated class": b"@decorate\nclass A(\n    Base):\n    x = 1\n\n    def m(self):\n        pass\n" + PAYLOAD,
    "under if and try": b"class A:\n    pass\nif True:\n    try:\n        " + PAYLOAD + b"    except OSError:\n        pass\n",
    "async def": b"async def f():\n    await g()\n" + PAYLOAD,
    "no trailing newline": b"def f():\n    return 1\n" + PAYLOAD.rstrip(b"\n"),
    "utf-8 text": "def f():\n    return 'déjà vu'  # ünïcode\n".encode() + PAYLOAD,
}

# Sources the lexer must refuse (the whole file is parsed then).
UNSURE = {
    "carriage returns": b"def f():\r\n    return 1\r\n" + PAYLOAD,
    "form feed": b"def f():\n    return 1\n\x0c" + PAYLOAD,
    "non-ASCII-safe coding": b"# -*- coding: shift_jis -*-\ndef f():\n    return 1\n" + PAYLOAD,
    "PEP 701 quote reuse": b'def f(x):\n    return f"{x["k"]}"\n' + PAYLOAD,
    "PEP 701 nested f-string": b"def f(x):\n    return f\"{f'{x}'}\"\n" + PAYLOAD,
    "backslash in a field": b'def f(x):\n    return f"{\'\\n\'.join(x)}"\n' + PAYLOAD,
    "unpaired quote": b"def f():\n    return 'x\n" + PAYLOAD,
    "unbalanced bracket": b"def f():\n    return (1\n" + PAYLOAD,
}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_tricky_sources_keep_every_module_level_statement(name):
    source = TRICKY[name]
    skeleton = _same_module_level(source)
    assert skeleton is not None, "the lexer should handle this case itself"
    source = b"import subprocess, sys\n" + source
    found = [b.to_dict() for b in import_time_behaviours("pkg/mod.py", source)]
    assert found == [b.to_dict() for b in import_time_behaviours("pkg/mod.py", source, whole_file=True)]
    assert "import-time-process" in {b["behaviour"] for b in found}


@pytest.mark.parametrize("name", sorted(UNSURE))
def test_sources_the_lexer_is_unsure_of_are_parsed_whole(name):
    assert module_level_source(UNSURE[name]) is None
    source = b"import subprocess, sys\n" + UNSURE[name]
    try:
        ast.parse(source)
    except SyntaxError:
        return  # Python would not import it either
    assert "import-time-process" in {b.behaviour for b in import_time_behaviours("pkg/mod.py", source)}


def test_function_bodies_are_cut_and_lines_kept():
    source = b"import os\n\ndef f():\n    os.system('in a function')\n    return 1\n\nclass A:\n    def m(self):\n        os.popen('x')\nVALUE = 1\n"
    skeleton = _same_module_level(source)
    assert skeleton is not None and b"os.system" not in skeleton and b"os.popen" not in skeleton
    assert import_time_behaviours("m.py", source) == []


def _large_module(tail: bytes) -> bytes:
    """About 2 MiB of honest functions (processes started only when called), then ``tail``."""
    chunk = (b"def helper_%d(args):\n    '''Runs a tool when asked.\ndef not_a_function():\n    '''\n"
             b"    return subprocess.run(args, check=True, stdout=subprocess.DEVNULL)\n\n")
    body = b"".join(chunk % i for i in range(2 * 1024 * 1024 // len(chunk % 0)))
    return b"import subprocess, sys\n" + body + tail


def test_payload_at_the_end_of_a_large_module_is_found():
    source = _large_module(PAYLOAD)
    skeleton = _same_module_level(source)
    assert skeleton is not None and len(skeleton) < len(source) // 4
    [found] = [b for b in import_time_behaviours("pkg/big.py", source) if b.behaviour == "import-time-process"]
    assert source[found.offset:].startswith(b"subprocess.Popen(")
    assert import_time_behaviours("pkg/big.py", _large_module(b"")) == []


def test_payload_in_a_large_module_is_a_finding_in_an_upgrade():
    old = scan(Artifact(*raw_wheel("demo", "1.0", {"demo/__init__.py": _large_module(b"")}), provenance_known=False))
    new = scan(Artifact(*raw_wheel("demo", "1.1", {"demo/__init__.py": _large_module(PAYLOAD)}), provenance_known=False),
               previous=old.inventory)
    assert "content.import-time-process" not in detectors(old)
    [found] = [f for f in new.findings if f.detector == "content.import-time-process"]
    assert found.evidence["file"] == "demo/__init__.py"
