"""The project's YARA rules, compiled once, run per file with yara-x.

Rules live as ``.yar`` files in ``mirror/content/rules/`` (package data);
each rule's ``meta`` names the behaviour it reveals, its severity and its
confidence, so the rule files alone decide what a match means and the code
only transports it.  Compiling takes tens of milliseconds, so callers build a
``RuleSet`` once at start and share it (yara-x ``Rules`` are immutable and
shareable; a ``Scanner`` is cheap and made per call, so no state is shared
between scans).  ``RuleSet.version`` (hash of the rule files plus the
scanner and the engine versions) is stored with every result so that the
re-audit knows which results are stale when the rules change.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mirror.content.evidence import excerpt

if TYPE_CHECKING:
    import yara_x

__all__ = ["Behaviour", "RuleSet", "default_rules", "load_rules", "RULES_DIR", "SCANNER_VERSION"]

RULES_DIR = Path(__file__).with_name("rules")
# Bump when the code that interprets rule matches changes meaning.
SCANNER_VERSION = "content-2"  # 2: text scanned whole (was its first 2 MiB), damaged .pkl.gz checked

_TEXT_EXTS = frozenset(
    "py pyw pyi pth txt cfg ini toml json yaml yml sh bash zsh js mjs cjs ts bat cmd ps1 rb pl "
    "md rst html htm xml csv in spec service desktop plist".split()
)
_PY_EXTS = frozenset({"py", "pyw", "pth", "pyi"})


@dataclass(frozen=True)
class Behaviour:
    """One rule match in one file: the unit of the inventory and of the diff."""

    behaviour: str
    rule: str
    severity: str
    confidence: str
    description: str
    offset: int
    excerpt: str
    details: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        extra: dict[str, object] = {"details": list(self.details)} if self.details else {}
        return {
            **extra,
            "behaviour": self.behaviour,
            "rule": self.rule,
            "severity": self.severity,
            "confidence": self.confidence,
            "description": self.description,
            "offset": self.offset,
            "excerpt": self.excerpt,
        }


def file_traits(path: str, data: bytes) -> tuple[str, bool, bool]:
    """(extension, is_python, is_text) of one member, as the rules' globals."""
    name = path.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    head = data[:8192]
    is_text = b"\x00" not in head and (ext in _TEXT_EXTS or _mostly_printable(head))
    is_python = ext in _PY_EXTS or (head.startswith(b"#!") and b"python" in head.split(b"\n", 1)[0])
    return ext, is_python and is_text, is_text


_DOC_EXTS = frozenset({"md", "rst", "txt", "html", "htm", "ipynb", "tex", "adoc"})
_DOC_NAMES = re.compile(r"^(METADATA|PKG-INFO|README|CHANGELOG|CHANGES|HISTORY|LICENSE|COPYING|NOTICE|AUTHORS)([._-].*)?$", re.I)


def is_doc(path: str, ext: str) -> bool:
    """Documentation and metadata: text meant for people, where install one-liners are normal."""
    return ext in _DOC_EXTS or bool(_DOC_NAMES.match(path.rsplit("/", 1)[-1]))


_PRINTABLE = bytes(range(0x20, 0x7F)) + b"\t\n\r"


def _mostly_printable(head: bytes) -> bool:
    if not head:
        return False
    printable = len(head) - len(head.translate(None, _PRINTABLE))
    return printable / len(head) > 0.95


class RuleSet:
    """The rules' version, and the compiled rules plus what is needed to interpret a match.

    The version (a hash of the sources) is known at once; yara-x is loaded
    and the rules compiled on the first scan (about 4.5 + 15.5 MiB of
    memory, tens of milliseconds), so a process that never scans content
    never pays for them.  Each thread keeps one ``Scanner``: making one per file cost more
    than scanning a small file.
    """

    def __init__(self, sources: Iterable[tuple[str, str]]) -> None:
        self._sources = tuple(sorted(sources))
        digest = hashlib.sha256()
        for name, text in self._sources:
            digest.update(name.encode() + b"\0" + text.encode() + b"\0")
        engine = importlib.metadata.version("yara-x")
        self.version = f"{SCANNER_VERSION}+yara-x-{engine}+{digest.hexdigest()[:16]}"
        self.rule_files = tuple(name for name, _ in self._sources)
        self._compiled: yara_x.Rules | None = None
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def rules(self) -> yara_x.Rules:
        """The compiled rules (compiled on first use, once)."""
        if self._compiled is None:
            with self._lock:
                if self._compiled is None:
                    self._compiled = self._compile()
        return self._compiled

    @property
    def sources(self) -> tuple[tuple[str, str], ...]:
        """(file name, text) of every rule file: what a worker process compiles the same rules from."""
        return self._sources

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def _compile(self) -> yara_x.Rules:
        import yara_x  # 4.5 MiB of native code: loaded with the first scan, like the rules

        compiler = yara_x.Compiler()
        compiler.define_global("ext", "")
        compiler.define_global("is_python", False)
        compiler.define_global("is_text", False)
        compiler.define_global("is_doc", False)
        for name, text in self._sources:
            compiler.new_namespace(name.removesuffix(".yar"))
            compiler.add_source(text, origin=name)
        return compiler.build()

    def _scanner(self) -> yara_x.Scanner:
        scanner = getattr(self._local, "scanner", None)
        if scanner is None:
            import yara_x

            scanner = yara_x.Scanner(self.rules)
            scanner.max_matches_per_pattern(1000)
            self._local.scanner = scanner
        return scanner

    def scan(self, path: str, data: bytes, limit: int, binary_limit: int | None = None) -> list[Behaviour]:
        """Behaviours of one file: of its first ``limit`` bytes, or ``binary_limit`` if it is not text.

        Every rule that can match a binary file (one whose head holds a NUL
        or is mostly unprintable) reads only its first bytes (magic numbers,
        an anchored shebang); all others require ``is_text``.  So a binary's
        head is all the rules need; a rule that looks deeper into binaries
        must come with a larger ``binary_limit``.
        """
        ext, is_python, is_text = file_traits(path, data)
        scanner = self._scanner()
        scanner.set_global("ext", ext)
        scanner.set_global("is_python", is_python)
        scanner.set_global("is_text", is_text)
        scanner.set_global("is_doc", is_text and is_doc(path, ext))
        if not is_text and binary_limit is not None:
            limit = min(limit, binary_limit)
        view = data[:limit] if len(data) > limit else data
        results = scanner.scan(view)
        found: list[Behaviour] = []
        for rule in results.matching_rules:
            meta = dict(rule.metadata)
            offset, length = 0, 0
            for pattern in rule.patterns:
                if pattern.matches:
                    offset, length = pattern.matches[0].offset, pattern.matches[0].length
                    break
            found.append(
                Behaviour(
                    behaviour=str(meta.get("behaviour", rule.identifier)),
                    rule=f"{rule.namespace}.{rule.identifier}",
                    severity=str(meta.get("severity", "low")),
                    confidence=str(meta.get("confidence", "low")),
                    description=str(meta.get("description", "")),
                    offset=offset,
                    excerpt=excerpt(view, max(0, offset - 20), min(max(length, 60) + 40, 160)) if length else "",
                )
            )
        return found


def load_rules(directory: Path | str = RULES_DIR) -> RuleSet:
    """Compile every ``*.yar`` file of ``directory`` into one RuleSet."""
    folder = Path(directory)
    return RuleSet((p.name, p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.yar")))


@functools.lru_cache(maxsize=1)
def default_rules() -> RuleSet:
    """The packaged rules, compiled on first use and then reused."""
    return load_rules(RULES_DIR)
