"""Pickles and model files inside packages, found by their bytes.

Loading a pickle runs whatever callables it imports, so the only safe check
is to read its opcodes without loading it.  The opcode walk and the
resolution of the imported globals (``GLOBAL``/``INST`` and ``STACK_GLOBAL``
through the memo, across several pickles in one stream) come from
``picklescan``, which is maintained for exactly this and reports the
globals with few false alarms on real ML pickles; fickling was compared and
rejected (it marks ``collections.OrderedDict``, ``datetime`` and every
NumPy array as suspicious or unsafe, see benchmarks/content.py).  Two gaps
of picklescan are closed here: a stream that ``pickletools`` cannot parse to
its end is reported even when no global came before the break (the nullifAI
models hid their payload before a deliberately broken stream), and the
allow list is ours, so admins can extend it.

Wrappers recognised by their bytes: raw pickles (protocol 2-5 header, or
protocol 0/1 streams that parse to their ``STOP``), zip archives holding
pickles (PyTorch ``data.pkl``, ``.npz``), NumPy ``.npy`` object arrays, and
gzip/bz2/xz/zlib-compressed pickles (joblib and friends).
"""

from __future__ import annotations

import bz2
import fnmatch
import io
import lzma
import pickletools
import re
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import picklescan.scanner as picklescan

from mirror.content.evidence import excerpt
from mirror.content.rules import Behaviour

__all__ = ["PickleReport", "DEFAULT_ALLOW", "find_pickles", "pickle_behaviours"]

# Globals that only rebuild data.  "mod.*" allows every name of a module,
# "pkg.**" every name of a package and its sub-modules.
DEFAULT_ALLOW: frozenset[str] = frozenset(
    {
        "builtins.set", "builtins.frozenset", "builtins.complex", "builtins.bytearray", "builtins.bytes",
        "builtins.slice", "builtins.range", "builtins.list", "builtins.dict", "builtins.tuple", "builtins.int",
        "builtins.float", "builtins.str", "builtins.bool", "builtins.object", "builtins.type", "builtins.hash",
        "__builtin__.set", "__builtin__.frozenset", "__builtin__.complex", "__builtin__.object", "__builtin__.slice",
        "__builtin__.int", "__builtin__.long", "__builtin__.float", "__builtin__.str", "__builtin__.unicode",
        "__builtin__.dict", "__builtin__.list", "__builtin__.tuple", "__builtin__.bool", "__builtin__.xrange",
        "__builtin__.hash", "__builtin__.bytearray", "builtins.reversed",
        "copy_reg._reconstructor", "copyreg._reconstructor", "copyreg.__newobj__", "_codecs.encode",
        "collections.*", "datetime.*", "decimal.Decimal", "fractions.Fraction", "uuid.UUID", "pathlib.*",
        "array.array", "array._array_reconstructor", "re._compile", "enum.*",
        "numpy.core.multiarray._reconstruct", "numpy.core.multiarray.scalar", "numpy._core.multiarray._reconstruct",
        "numpy._core.multiarray.scalar", "numpy.ndarray", "numpy.dtype", "numpy.ma.core._mareconstruct",
        "numpy.random._pickle.**", "numpy.random.__RandomState_ctor", "numpy.random.mtrand.**",
        "numpy.core._internal._reconstruct", "numpy._core._internal._reconstruct", "numpy.core.records.*",
        "numpy._core.records.*", "numpy.core.multiarray._frombuffer", "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer",
        "numpy.float64", "numpy.float32", "numpy.int64", "numpy.int32", "numpy.bool_", "numpy.str_",
        "torch._utils.**", "torch.*Storage", "torch._tensor._rebuild_from_type_v2", "torch.storage._load_from_bytes",
        "torch.Size", "torch.device", "torch.dtype", "torch.float32", "torch.float16", "torch.bfloat16",
        "pandas.core.**", "pandas._libs.**", "scipy.sparse.**", "sklearn.**", "statsmodels.**", "gensim.**",
        "joblib.numpy_pickle.NumpyArrayWrapper", "joblib.numpy_pickle.NDArrayWrapper",
    }
)
# Callables that act when the pickle is loaded: always critical, whatever the allow list says.
_DANGEROUS_MODULES = frozenset(
    {"os", "posix", "nt", "subprocess", "sys", "socket", "shutil", "pty", "runpy", "importlib", "ctypes", "webbrowser",
     "commands", "platform", "asyncio", "multiprocessing", "threading", "code", "pdb", "timeit", "urllib", "requests",
     "httpx", "http", "ftplib", "smtplib", "telnetlib", "marshal", "pickle", "_pickle", "dill", "cloudpickle", "types",
     "operator", "tempfile", "glob", "ssl", "zipimport", "distutils", "setuptools", "pip"}
)
_DANGEROUS_BUILTINS = frozenset(
    {"eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "__import__", "globals", "locals", "vars",
     "breakpoint", "input", "apply", "execfile", "file", "reload", "memoryview"}
)
_P0_START = re.compile(rb"^(\(|\]|\}|c[A-Za-z_][\w.]*\n[A-Za-z_]\w*\n|I\d|S'|V|N\.|F\d|L\d)")


@dataclass
class PickleReport:
    """What one pickle stream (or one pickle inside a wrapper) imports, and whether it parsed."""

    location: str  # "" for the file itself, else "member path" / "gzip" / "npy"
    globals: list[str] = field(default_factory=list)
    dangerous: list[str] = field(default_factory=list)
    risky: list[str] = field(default_factory=list)  # on picklescan's dangerous list only (e.g. functools.partial)
    unlisted: list[str] = field(default_factory=list)
    complete: bool = True
    error: str = ""
    truncated: bool = False


def _allowed(name: str, allow: Iterable[str]) -> bool:
    module = name.rsplit(".", 1)[0]
    for pattern in allow:
        if pattern.endswith(".**"):
            root = pattern[:-3]
            if module == root or module.startswith(root + "."):
                return True
        elif fnmatch.fnmatchcase(name, pattern):
            return True
    return False


def _dangerous(module: str, name: str) -> bool:
    """Ours: callables that act on load (exec, processes, files, network, imports)."""
    top = module.split(".", 1)[0]
    if top in _DANGEROUS_MODULES:
        return True
    if module in ("builtins", "__builtin__", "__builtins__") and name in _DANGEROUS_BUILTINS:
        return True
    return "unknown" in (module, name)


_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _walk(data: bytes) -> tuple[bool, str, int]:
    """Walk every pickle in ``data`` with pickletools: (complete, error, end of the pickle region).

    Complete means every stream ends at STOP and nothing but padding
    follows.  The legacy ``torch.save`` format is five pickles (magic number,
    protocol, system info, the object, storage keys) followed by raw storage
    bytes, so after its magic number the walk stops at the fifth STOP.
    """
    stream = io.BytesIO(data)
    count = 0
    legacy_torch = False
    try:
        while stream.tell() < len(data):
            if data[stream.tell():].strip(b"\x00 \t\r\n") == b"":
                break
            last = None
            for last in pickletools.genops(stream):
                if count == 0 and last[0].name in ("LONG1", "LONG4", "LONG", "INT") and last[1] == _TORCH_LEGACY_MAGIC:
                    legacy_torch = True
            if last is None or last[0].name != "STOP":
                return False, "stream ends without STOP", stream.tell()
            count += 1
            if legacy_torch and count == 5:
                break
    except Exception as exc:  # ValueError, struct.error, UnicodeDecodeError ...
        return False, f"{type(exc).__name__}: {exc}"[:200], stream.tell()
    return True, "", stream.tell()


def _parses_to_end(data: bytes) -> tuple[bool, str]:
    complete, error, _ = _walk(data)
    return complete, error


def _scan_stream(data: bytes, location: str, allow: Iterable[str], limit: int) -> PickleReport:
    report = PickleReport(location=location)
    if len(data) > limit:
        report.truncated = True
        data = data[:limit]
    complete, error, end = _walk(data)
    # picklescan logs what it finds under "picklescan.scanner"; the service configures that logger.
    result = picklescan.scan_pickle_bytes(io.BytesIO(data[:end] if complete else data), location or "pickle")
    for item in result.globals:
        name = f"{item.module}.{item.name}"
        report.globals.append(name)
        if _dangerous(item.module, item.name):
            report.dangerous.append(name)
        elif item.safety == picklescan.SafetyLevel.Dangerous:
            report.risky.append(name)
        elif not _allowed(name, allow):
            report.unlisted.append(name)
    if result.scan_err and complete:
        complete, error = False, "picklescan could not parse the stream"
    report.complete = complete and not report.truncated
    report.error = error if not report.truncated else f"only the first {limit} bytes were checked"
    report.globals.sort()
    report.dangerous.sort()
    report.risky.sort()
    report.unlisted.sort()
    return report


def _looks_like_pickle(data: bytes) -> bool:
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return True
    if data.endswith(b".") and _P0_START.match(data[:200]) and len(data) <= (8 << 20):
        ok, _ = _parses_to_end(data)
        return ok
    return False


def _npy_pickle(data: bytes) -> bytes | None:
    """The pickle after the header of an object-dtype ``.npy`` array, else None."""
    if not data.startswith(b"\x93NUMPY") or len(data) < 10:
        return None
    major = data[6]
    if major == 1:
        header_len = int.from_bytes(data[8:10], "little")
        start = 10
    else:
        header_len = int.from_bytes(data[8:12], "little")
        start = 12
    header = data[start : start + header_len]
    if b"'O'" in header or b"|O" in header:
        return data[start + header_len :]
    return None


_STEP = 1 << 20


def _decompress(data: bytes, limit: int) -> tuple[str, bytes] | None:
    """(wrapper name, inflated bytes) for gzip/bz2/xz/zlib data, bounded by ``limit`` (a little beyond).

    Inflated a MiB at a time: ``GzipFile.read(limit)`` reserves ``limit``
    bytes up front, 256 MiB for every tiny ``.pkl.gz`` of a wheel.
    """
    try:
        if data.startswith(b"\x1f\x8b"):
            return _gunzip(data, limit)
        if data.startswith(b"BZh"):
            return _inflate("bz2", bz2.BZ2Decompressor(), data, limit)
        if data.startswith(b"\xfd7zXZ"):
            return _inflate("xz", lzma.LZMADecompressor(), data, limit)
        if len(data) > 2 and data[0] == 0x78 and data[1] in (0x01, 0x5E, 0x9C, 0xDA):
            return _inflate("zlib", zlib.decompressobj(), data, limit)
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError):
        return None
    return None


def _inflate(name: str, inflater: Any, data: bytes, limit: int) -> tuple[str, bytes] | None:
    """Up to ``limit + 1`` bytes of one stream (None if it is not a whole stream and ends before that)."""
    parts: list[bytes] = []
    got = 0
    pending = data
    while got <= limit:
        piece = inflater.decompress(pending, min(_STEP, limit + 1 - got))
        parts.append(piece)
        got += len(piece)
        pending = getattr(inflater, "unconsumed_tail", b"")  # zlib keeps what it did not take; bz2/xz buffer it
        if inflater.eof or (not piece and not pending and getattr(inflater, "needs_input", True)):
            break
    return name, b"".join(parts)


def _gunzip(data: bytes, limit: int) -> tuple[str, bytes] | None:
    """Members one after the other, zero padding between, like ``GzipFile``.

    A stream cut inside a member, or followed by junk, gives what it
    inflated so far: ``pickle.load`` on a ``GzipFile`` runs those opcodes
    before the reader notices (``GzipFile.read`` used to answer nothing).
    """
    parts: list[bytes] = []
    got = 0
    rest = data
    while got <= limit:
        inflater = zlib.decompressobj(31)
        _, body = _inflate("gzip", inflater, rest, limit - got) or ("", b"")
        parts.append(body)
        got += len(body)
        rest = inflater.unused_data.lstrip(b"\x00")
        if got > limit or not inflater.eof or not rest.startswith(b"\x1f\x8b"):
            break
    return ("gzip", b"".join(parts)) if got or inflater.eof else None


def find_pickles(data: bytes, *, allow: Iterable[str], max_pickle_bytes: int, max_nested_bytes: int) -> list[PickleReport]:
    """Every pickle in one file, looked for in the known wrappers (empty when there is none)."""
    allow = tuple(allow)
    if _looks_like_pickle(data):
        return [_scan_stream(data, "", allow, max_pickle_bytes)]
    inner = _npy_pickle(data)
    if inner is not None:
        return [_scan_stream(inner, "npy", allow, max_pickle_bytes)]
    if data.startswith(b"PK\x03\x04"):
        return _zip_pickles(data, allow, max_pickle_bytes, max_nested_bytes)
    # Inflate a little first: only a stream that starts like a pickle is inflated in full (bounded).
    head = _decompress(data[: 1 << 16], 64)
    if head is not None and (_looks_like_pickle(head[1][:2]) or _P0_START.match(head[1])):
        inflated = _decompress(data, max_nested_bytes)
        if inflated is not None and _looks_like_pickle(inflated[1]):
            wrapper, body = inflated
            report = _scan_stream(body[:max_nested_bytes], wrapper, allow, max_pickle_bytes)
            if len(body) > max_nested_bytes:
                report.truncated, report.complete = True, False
                report.error = f"inflates to more than {max_nested_bytes} bytes"
            return [report]
    return []


def _zip_pickles(data: bytes, allow: tuple[str, ...], max_pickle_bytes: int, max_nested_bytes: int) -> list[PickleReport]:
    reports: list[PickleReport] = []
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        return []
    budget = max_nested_bytes
    with archive:
        for info in archive.infolist()[:10_000]:
            if info.is_dir() or info.file_size == 0:
                continue
            try:
                with archive.open(info) as handle:
                    head = handle.read(16)
                    named = info.filename.endswith((".pkl", ".pickle", "data.pkl", ".npy"))
                    if not (named or _looks_like_pickle(head) or head.startswith(b"\x93NUMPY")):
                        continue
                    want = min(info.file_size, budget, max_pickle_bytes + 1)
                    body = head + handle.read(max(0, want - len(head)))
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError):
                reports.append(PickleReport(location=info.filename, complete=False, error="unreadable member"))
                continue
            budget -= len(body)
            inner = _npy_pickle(body)
            if inner is not None:
                reports.append(_scan_stream(inner, info.filename, allow, max_pickle_bytes))
            elif _looks_like_pickle(body):
                report = _scan_stream(body, info.filename, allow, max_pickle_bytes)
                report.truncated = report.truncated or len(body) < info.file_size
                reports.append(report)
            if budget <= 0:
                reports.append(PickleReport(location=info.filename, complete=False, truncated=True,
                                            error=f"nested archive larger than {max_nested_bytes} bytes"))
                break
    return reports


def pickle_behaviours(path: str, reports: list[PickleReport], *, allowed_path: bool) -> list[Behaviour]:
    """Inventory behaviours of the pickles of one file (one per imported risky global)."""
    out: list[Behaviour] = []
    for report in reports:
        where = f"{path}" + (f" [{report.location}]" if report.location else "")
        summary = ", ".join(report.globals[:20]) or "(no globals)"
        out.append(Behaviour("pickle", "pickles.pickle_found", "info", "high",
                             f"pickle stream in {where} importing {len(report.globals)} globals", 0, excerpt(summary)))
        if allowed_path:
            continue
        for name in report.dangerous:
            out.append(Behaviour(f"pickle-dangerous-global:{name}", "pickles.dangerous_global", "critical", "high",
                                 f"pickle in {where} imports {name}, which acts when the pickle is loaded", 0, excerpt(name)))
        for name in report.risky:
            out.append(Behaviour(f"pickle-risky-global:{name}", "pickles.risky_global", "high", "high",
                                 f"pickle in {where} imports {name}, which picklescan lists as dangerous", 0, excerpt(name)))
        for name in report.unlisted:
            out.append(Behaviour(f"pickle-unlisted-global:{name}", "pickles.unlisted_global", "medium", "high",
                                 f"pickle in {where} imports {name}, which is not on the allow list", 0, excerpt(name)))
        if not report.complete:
            # joblib writes raw array bytes between pickle opcodes: such a stream cannot be walked past
            # the first array, which leaves it unchecked rather than deliberately broken.
            joblib = any(g.startswith("joblib.numpy_pickle.") for g in report.globals)
            if joblib and not report.truncated:
                report.truncated = True
                report.error = "joblib array data interleaved; checked up to the first array"
            severity = "medium" if report.truncated else "high"
            rule = "pickles.too_large" if report.truncated else "pickles.broken_stream"
            name = "pickle-unchecked" if report.truncated else "pickle-broken-stream"
            out.append(Behaviour(name, rule, severity, "high",
                                 f"pickle in {where} cannot be parsed to its end ({report.error})", 0, excerpt(report.error)))
    return out
