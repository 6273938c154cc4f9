"""``indexguard sbom`` at real size: seconds, peak RSS and the load average, against project count.

A synthetic mirror database is filled directly with SQLAlchemy (no upstream,
no screening: the SBOM only reads what is stored): every project has about
``--releases`` releases of about ``--files`` files each, a share of the files
(``--cached``) has its bytes in the blob store, some projects carry an open
finding, some releases a known vulnerability.  The real command then runs
in a process of its own (``python -m mirror.cli sbom --output FILE``), so
its peak RSS is its own and includes start-up.  The smaller size is the
baseline measured in the same run: peak RSS should be about the same at
both sizes (the SBOM is streamed in batches), while time grows linearly.

    python -m benchmarks.sbom                       # 100 (baseline) and 1000 projects
    python -m benchmarks.sbom --sizes 100 1000 --validate
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert

from mirror.db import migrate
from mirror.db.models import FindingRow, PinnedFile, Project, Release, Vulnerability
from mirror.db.session import make_engine, make_session_factory
from mirror.serving.store import BlobStore

ROOT = Path(__file__).resolve().parent.parent
FLOOR_SECONDS = 60.0  # for 1,000 projects (issue 15)
MIB = 1 << 20


def fill(work: Path, projects: int, releases: int, files: int, cached_share: float, seed: int = 15) -> dict:
    """Create the database and the cached blobs; return what was made."""
    rng = random.Random(seed)
    database_url = f"sqlite:///{work / 'indexguard.db'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    store = BlobStore(work / "data" / "files")
    now = datetime.now(timezone.utc)
    made = {"projects": projects, "releases": 0, "files": 0, "cached": 0}
    for start in range(0, projects, 100):
        project_rows, release_rows, file_rows, finding_rows, vuln_rows = [], [], [], [], []
        for i in range(start, min(start + 100, projects)):
            name = f"bench-project-{i:05d}"
            state = "quarantined" if i % 20 == 0 else "allowed"
            project_rows.append(dict(name=name, source="public", state=state, reason="", decided_by="policy",
                                     decided_at=now, first_seen=now))
            if state == "quarantined":
                finding_rows.append(dict(project=name, version=None, detector="typosquat", severity="high",
                                         title=f"'{name}' looks like 'bench-project'", target="bench-project",
                                         evidence={}, found_at=now))
            for r in range(max(1, releases + rng.randint(-2, 2))):
                version = f"{r // 10}.{r % 10}.{rng.randint(0, 9)}"
                made["releases"] += 1
                release_rows.append(dict(project=name, version=version, state="allowed", reason="",
                                         decided_by="policy", decided_at=now))
                if r == 0 and i % 10 == 0:
                    vuln_rows.append(dict(project=name, version=version, vuln_id=f"PYSEC-2026-{i}", aliases=[],
                                          summary="remote code execution", fix_versions=["9.0"], severity="high",
                                          source="offline", first_seen=now, last_seen=now))
                for f in range(max(1, files + rng.randint(-1, 1))):
                    filename = f"bench_project_{i:05d}-{version}-{f}-py3-none-any.whl"
                    sha256 = hashlib.sha256(filename.encode()).hexdigest()
                    file_rows.append(dict(project=name, filename=filename, version=version, sha256=sha256,
                                          size=1000 + f, upstream_url=f"https://files.example/{filename}",
                                          first_seen=now - timedelta(days=r)))
                    made["files"] += 1
                    if rng.random() < cached_share:
                        path = store.path(sha256)
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_bytes(b"x")  # the SBOM only asks whether the blob is there
                        made["cached"] += 1
        with sessions.begin() as session:
            session.execute(insert(Project), project_rows)
            session.execute(insert(Release), release_rows)
            session.execute(insert(PinnedFile), file_rows)
            if finding_rows:
                session.execute(insert(FindingRow), finding_rows)
            if vuln_rows:
                session.execute(insert(Vulnerability), vuln_rows)
    engine.dispose()
    config = work / "indexguard.toml"
    config.write_text(f'[storage]\npath = "{work / "data"}"\n\n[database]\nurl = {json.dumps(database_url)}\n'
                      f'\n[audit]\nvulnerability_service = "none"\n')
    return {**made, "config": str(config)}


def run_sbom(config: str, out: Path, include_pinned: bool) -> dict:
    """The real command in its own process: wall seconds and that process's peak RSS."""
    command = [sys.executable, "-m", "mirror.cli", "sbom", "--config", config, "--output", str(out)]
    if include_pinned:
        command.append("--include-pinned")
    load_before = os.getloadavg()
    log = out.with_suffix(".stderr")
    started = time.perf_counter()
    with open(log, "w") as stderr:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)  # reaps it, with that one process's peak RSS
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    messages = log.read_text()
    if proc.returncode != 0:
        raise RuntimeError(f"sbom failed ({proc.returncode}): {messages}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "load_before": load_before,
            "load_after": os.getloadavg(), "bytes": out.stat().st_size, "progress_lines": len(messages.splitlines())}


def count(out: Path, validate: bool) -> dict:
    """What the document lists, and (with --validate) whether it passes the CycloneDX 1.5 schema."""
    text = out.read_text()
    bom = json.loads(text)
    releases = bom["components"]
    result = {"listed_releases": len(releases),
              "listed_files": sum(len(c.get("components", [])) for c in releases),
              "vulnerabilities": len(bom["vulnerabilities"]), "valid": None}
    if validate:
        from cyclonedx.schema import SchemaVersion  # test extra: only with --validate
        from cyclonedx.validation.json import JsonStrictValidator

        result["valid"] = JsonStrictValidator(SchemaVersion.V1_5).validate_str(text) is None
    return result


def measure(size: int, args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="sbom-bench-"))
    try:
        made = fill(work, size, args.releases, args.files, args.cached)
        out = work / "sbom.json"
        ran = run_sbom(made["config"], out, args.include_pinned)
        return {**made, **ran, **count(out, args.validate)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000], help="project counts; first = baseline")
    parser.add_argument("--releases", type=int, default=10, help="releases per project (about)")
    parser.add_argument("--files", type=int, default=3, help="files per release (about)")
    parser.add_argument("--cached", type=float, default=0.2, help="share of files whose bytes are in the store")
    parser.add_argument("--include-pinned", action="store_true", help="time `sbom --include-pinned` instead")
    parser.add_argument("--validate", action="store_true", help="check the output against the CycloneDX schema")
    args = parser.parse_args(argv)
    results = [measure(size, args) for size in args.sizes]
    base = results[0]
    print(f"{'projects':>8} {'releases':>8} {'files':>7} {'cached':>7} {'listed':>7} {'seconds':>8} "
          f"{'peak RSS MB':>11} {'x base':>6} {'MB out':>7} {'load 1m before/after':>21} {'valid':>5}")
    for r in results:
        print(f"{r['projects']:>8} {r['releases']:>8} {r['files']:>7} {r['cached']:>7} {r['listed_files']:>7} "
              f"{r['seconds']:>8.1f} {r['peak_rss_mb']:>11.1f} {r['peak_rss_mb'] / base['peak_rss_mb']:>6.2f} "
              f"{r['bytes'] / MIB:>7.1f} {r['load_before'][0]:>10.2f}/{r['load_after'][0]:<10.2f} "
              f"{'-' if r['valid'] is None else ('yes' if r['valid'] else 'NO'):>5}")
    largest = results[-1]
    projected = largest["seconds"] * 1000 / largest["projects"]
    ok = projected <= FLOOR_SECONDS and largest["valid"] is not False
    print(f"time for 1000 projects: {projected:.1f} s ({'within' if projected <= FLOOR_SECONDS else 'OVER'} the "
          f"{FLOOR_SECONDS:.0f} s floor); peak RSS {largest['peak_rss_mb']:.1f} MB at {largest['projects']} "
          f"projects vs {base['peak_rss_mb']:.1f} MB at {base['projects']}; load average now "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
