"""Code that runs without anyone calling it: at interpreter start, at install, at import.

These are the places attackers use because no user action is needed:

- ``.pth`` files in site-packages: ``site`` executes every line that starts
  with ``import`` followed by a space or a tab, at every interpreter start;
- ``sitecustomize``/``usercustomize`` modules at the top of site-packages;
- an sdist's ``setup.py`` replacing the install/develop/egg_info/build
  commands, or reaching the network or starting processes while it builds;
- module-level statements of a package (run at ``import``);
- console scripts that shadow common commands on the user's PATH.

Each check is a pure function of the file's bytes (and its path) that
returns ``Behaviour`` values, so the same diff logic as for the YARA rules
decides what is new.  ``ast`` is used rather than regular expressions where
the question is structural ("at module level", "a cmdclass entry").
"""

from __future__ import annotations

import ast
import configparser
import re
from collections.abc import Iterable, Mapping

from packaging.utils import canonicalize_name

from mirror.content.evidence import excerpt
from mirror.content.pysource import module_level_source
from mirror.content.rules import Behaviour

__all__ = [
    "entry_points",
    "import_time_behaviours",
    "pth_behaviours",
    "setup_py_behaviours",
    "shadowing_scripts",
    "startup_module_behaviour",
]

_RISKY_PTH = re.compile(
    rb"exec\s*\(|eval\s*\(|b64decode|zlib|marshal|subprocess|os\.system|os\.popen|urlopen|requests|socket|"
    rb"http://|https://|Popen|__import__\s*\(\s*['\"](base64|zlib|subprocess|os)"
)
# Lines of .pth files that well-known tools write and that only set up imports.
_BENIGN_PTH = (
    re.compile(rb"^import _virtualenv\s*$"),
    re.compile(rb"^import __editable___[A-Za-z0-9_]+_finder; __editable___[A-Za-z0-9_]+_finder\.install\([^)]*\)\s*$"),
    re.compile(rb"^import os; var = 'SETUPTOOLS_USE_DISTUTILS'; enabled = os\.environ\.get\(var, '(local|stdlib)'\) == 'local'; enabled and __import__\('_distutils_hack'\)\.add_shim\(\); ?$"),
    re.compile(rb"^import sys, types, os;has_mfs = sys\.version_info > \(3, 5\);p = os\.path\.join\("),
)
_SETUP_COMMANDS = frozenset({"install", "develop", "egg_info", "build_py", "build", "bdist_wheel", "build_ext", "sdist", "easy_install", "install_lib", "install_scripts"})
_PROCESS_CALLS = frozenset({
    "os.system", "os.popen", "os.execv", "os.execve", "os.execl", "os.execlp", "os.execvp", "os.spawnl", "os.spawnv",
    "os.startfile", "subprocess.Popen", "subprocess.run", "subprocess.call", "subprocess.check_call",
    "subprocess.check_output", "subprocess.getoutput", "subprocess.getstatusoutput", "Popen", "pty.spawn",
})
_NETWORK_CALLS = frozenset({
    "urllib.request.urlopen", "urlopen", "urllib.request.urlretrieve", "urlretrieve", "requests.get", "requests.post",
    "requests.put", "requests.request", "httpx.get", "httpx.post", "socket.socket", "socket.create_connection",
    "http.client.HTTPConnection", "http.client.HTTPSConnection", "urllib2.urlopen",
})
_EXEC_CALLS = frozenset({"exec", "eval", "compile", "__import__"})
_THREAD_CALLS = frozenset({"threading.Thread", "Thread", "multiprocessing.Process", "Process"})


def _b(behaviour: str, rule: str, severity: str, confidence: str, description: str, data: bytes, offset: int) -> Behaviour:
    return Behaviour(
        behaviour=behaviour, rule=rule, severity=severity, confidence=confidence, description=description,
        offset=offset, excerpt=excerpt(data, offset, 160),
    )


def pth_behaviours(path: str, data: bytes) -> list[Behaviour]:
    """Lines ``site`` would execute in a ``.pth`` file.

    ``site.addpackage`` runs a line when it starts with ``import `` or
    ``import\\t``; everything else is a path entry.  Lines written by common
    tools (virtualenv, editable installs, setuptools' distutils shim,
    legacy namespace packages) are reported with low severity; any other
    executable line is high, and critical when it also decodes, executes,
    starts processes or talks to the network.
    """
    found: list[Behaviour] = []
    offset = 0
    for line in data.splitlines(keepends=True):
        stripped = line.rstrip(b"\r\n")
        if stripped.startswith((b"import ", b"import\t")):
            if any(p.match(stripped) for p in _BENIGN_PTH):
                found.append(_b("pth-exec-known", "hooks.pth_known_line", "low", "high",
                                "a .pth line that a packaging tool writes (runs at every interpreter start)", data, offset))
            elif _RISKY_PTH.search(stripped) or len(stripped) > 400:
                found.append(_b("pth-exec", "hooks.pth_exec_line", "critical", "high",
                                ".pth line executed at every interpreter start, and it decodes, executes, spawns or downloads",
                                data, offset))
            else:
                found.append(_b("pth-exec", "hooks.pth_exec_line", "high", "high",
                                ".pth line executed at every interpreter start", data, offset))
        offset += len(line)
    return found


def startup_module_behaviour(path: str, data: bytes) -> list[Behaviour]:
    """``sitecustomize``/``usercustomize`` at the top of site-packages (imported by ``site``)."""
    return [_b("startup-module", "hooks.sitecustomize", "high", "high",
               f"{path.rsplit('/', 1)[-1]} is imported automatically at every interpreter start", data, 0)]


def _dotted(node: ast.AST) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    elif isinstance(node, ast.Call):
        parts.append(_dotted(node.func) + "()")
    return ".".join(reversed(parts))


def _calls(nodes: Iterable[ast.AST]) -> Iterable[ast.Call]:
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                yield sub


def _module_level(tree: ast.Module) -> Iterable[ast.AST]:
    """Statements that run at import: everything outside def/class bodies (and not under __main__)."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.If) and _is_main_guard(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.If, ast.Try, ast.TryStar, ast.With, ast.For, ast.While, ast.AsyncWith, ast.AsyncFor)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, field, []) or []:
                    if isinstance(child, ast.ExceptHandler):
                        stack.extend(child.body)
                    else:
                        stack.append(child)
            for expr in ("test", "iter") + (("items",) if isinstance(node, (ast.With, ast.AsyncWith)) else ()):
                value = getattr(node, expr, None)
                if isinstance(value, list):
                    stack.extend(v.context_expr for v in value)
                elif value is not None:
                    stack.append(value)
            continue
        yield node


def _is_main_guard(test: ast.AST) -> bool:
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def _parse(data: bytes) -> ast.Module | None:
    try:
        return ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _line_offset(data: bytes, lineno: int) -> int:
    offset = 0
    for _ in range(max(0, lineno - 1)):
        nxt = data.find(b"\n", offset)
        if nxt < 0:
            return offset
        offset = nxt + 1
    return offset


def import_time_behaviours(path: str, data: bytes, *, whole_file: bool = False) -> list[Behaviour]:
    """Processes, threads, exec and downloads started by module-level code (i.e. at import).

    Only the module level is parsed when the lexer can cut it out safely
    (``pysource``): the bodies of top-level functions and classes, most of
    a big module, never run at import and are not looked at here.
    ``whole_file`` parses everything (the reference the cut is checked against).
    """
    skeleton = None if whole_file else module_level_source(data)
    tree = (_parse(skeleton) if skeleton is not None else None) or _parse(data)
    if tree is None:
        return []
    found: dict[str, Behaviour] = {}
    calls: list[ast.Call] = []
    strings: set[str] = set()  # of module-level code: what a process started at import may name
    for node in _module_level(tree):
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                calls.append(sub)
            elif isinstance(sub, ast.Constant) and isinstance(sub.value, str) and 0 < len(sub.value) < 200:
                strings.add(sub.value)
    literals = tuple(sorted(strings))[:100]
    for call in calls:
        name = _dotted(call.func)
        kind = _import_time_kind(name, call)
        if kind is None or kind in found:
            continue
        offset = _line_offset(data, getattr(call, "lineno", 1))
        if kind == "import-time-process":
            found[kind] = Behaviour(
                kind, "hooks.import_time_process", "medium", "low",
                f"starts a process at import ({name})", offset, excerpt(data, offset, 160), literals)
        elif kind == "import-time-network":
            found[kind] = _b(kind, "hooks.import_time_network", "medium", "low",
                             f"reaches the network at import ({name})", data, offset)
        elif kind == "import-time-thread":
            found[kind] = _b(kind, "hooks.import_time_thread", "low", "low",
                             f"starts a thread or process at import ({name})", data, offset)
        else:
            found[kind] = _b(kind, "hooks.import_time_exec", "medium", "low",
                             f"executes computed code at import ({name})", data, offset)
    return list(found.values())


def _import_time_kind(name: str, call: ast.Call) -> str | None:
    """Which import-time behaviour a module-level call is (None: an ordinary call)."""
    if name in _PROCESS_CALLS or name.endswith(".Popen"):
        return "import-time-process"
    if name in _NETWORK_CALLS:
        return "import-time-network"
    if name in _THREAD_CALLS or (name.rsplit(".", 1)[-1] == "start" and "Thread(" in name):
        return "import-time-thread"
    if name in ("exec", "eval") and call.args and not isinstance(call.args[0], ast.Constant):
        return "import-time-exec"
    return None


def setup_py_behaviours(path: str, data: bytes) -> list[Behaviour]:
    """Custom install/develop/egg_info/build commands and process/network use in ``setup.py``."""
    tree = _parse(data)
    if tree is None:
        return []
    found: list[Behaviour] = []
    overridden: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "cmdclass" and isinstance(node.value, ast.Dict):
            overridden |= {k.value for k in node.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
        if isinstance(node, ast.Call) and _dotted(node.func) == "dict" and any(k.arg in _SETUP_COMMANDS for k in node.keywords):
            overridden |= {k.arg for k in node.keywords if k.arg in _SETUP_COMMANDS}
        if isinstance(node, ast.ClassDef):
            bases = {_dotted(b).rsplit(".", 1)[-1] for b in node.bases}
            overridden |= bases & _SETUP_COMMANDS
    overridden &= _SETUP_COMMANDS
    processes = sorted({_dotted(c.func) for c in _calls([tree]) if _dotted(c.func) in _PROCESS_CALLS})
    network = sorted({_dotted(c.func) for c in _calls([tree]) if _dotted(c.func) in _NETWORK_CALLS})
    execs = [c for c in _calls([tree]) if _dotted(c.func) in ("exec", "eval") and c.args and not _reads_a_file(c.args[0])]
    if overridden:
        install_like = overridden & {"install", "develop", "egg_info", "easy_install", "install_lib", "install_scripts"}
        severity = "high" if install_like and (processes or network or execs) else "medium"
        confidence = "high" if severity == "high" else "low"
        found.append(_b("setup-command-override", "hooks.setup_cmdclass", severity, confidence,
                        "setup.py replaces the " + ", ".join(sorted(overridden)) + " command(s)"
                        + (" and executes code, starts processes or reaches the network" if severity == "high" else ""),
                        data, data.find(b"cmdclass") if b"cmdclass" in data else 0))
    if network:
        found.append(_b("setup-network", "hooks.setup_network", "high", "high",
                        "setup.py reaches the network while building (" + ", ".join(network) + ")", data,
                        max(0, data.find(network[0].rsplit(".", 1)[-1].encode()))))
    if processes:
        found.append(_b("setup-process", "hooks.setup_process", "medium", "low",
                        "setup.py starts processes while building (" + ", ".join(processes) + ")", data,
                        max(0, data.find(processes[0].rsplit(".", 1)[-1].encode()))))
    return found


def _reads_a_file(node: ast.AST) -> bool:
    """``exec(open(...).read())``: the version-file idiom of many setup.py files."""
    if isinstance(node, ast.Constant):
        return True
    return isinstance(node, ast.Call) and _dotted(node.func).endswith(".read") and "open()" in _dotted(node.func)


def entry_points(data: bytes) -> dict[str, dict[str, str]]:
    """``entry_points.txt`` as {group: {name: target}} (unparseable -> empty)."""
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(data.decode("utf-8", "replace"))
    except configparser.Error:
        return {}
    return {section: dict(parser.items(section)) for section in parser.sections()}


def shadowing_scripts(
    project: str, points: Mapping[str, Mapping[str, str]], shadowed: frozenset[str]
) -> list[tuple[str, str]]:
    """Console/GUI scripts named like a common command that this project does not own."""
    own = canonicalize_name(project)
    hits: list[tuple[str, str]] = []
    for group in ("console_scripts", "gui_scripts"):
        for name, target in points.get(group, {}).items():
            script = name.strip()
            base = re.sub(r"[0-9.]+$", "", script.lower())
            if (script.lower() in shadowed or base in shadowed) and not canonicalize_name(base).startswith(own) \
                    and not own.startswith(canonicalize_name(base) + "-") and canonicalize_name(base) != own:
                hits.append((script, target.strip()))
    return hits
