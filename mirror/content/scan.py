"""One place that scans a release: archive walk -> structure -> hooks -> rules -> pickles -> diff -> findings.

``scan_release`` screens all files of a release against the inventory of
the last approved release and returns findings plus the new inventory;
``scan_artifact`` does the same for one distribution file (the streaming
case: a file first requested after its release was approved), and
``scan_member`` gives the behaviours of one archive member.  All are pure
functions of their inputs (bytes or paths, the previous inventory, the
config and the compiled rules): no network, no database, nothing global
except the lazily compiled default rule set.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors.findings import Finding, Severity
from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename

from mirror.content import filetypes, hooks, pickles
from mirror.content.archive import Budget, Entry, ScanIncomplete, iter_members
from mirror.content.config import ScanConfig
from mirror.content.diff import PreviousFiles, behaviour_findings
from mirror.content.evidence import excerpt, finding
from mirror.content.inventory import FORMAT, artifact_key, match_previous_artifact, normalise_path, risk_of
from mirror.content.provenance import ProvenanceResult, provenance_findings, provenance_summary, verify_provenance
from mirror.content.report import ArtifactReport, ReleaseReport
from mirror.content.rules import Behaviour, RuleSet, default_rules, file_traits
from mirror.content.structure import check_sdist, check_wheel, record_digest

__all__ = ["Artifact", "scan_artifact", "scan_member", "scan_release"]

_WHEEL_SPECIAL = re.compile(r"^[^/]+\.dist-info/(METADATA|RECORD|entry_points\.txt|WHEEL)$")
_SDIST_SPECIAL = re.compile(r"^[^/]+/(PKG-INFO|setup\.py)$")
_SITE_ROOT = re.compile(r"^(\{data\}/(purelib|platlib)/)?[^/]+$")


@dataclass(frozen=True)
class Artifact:
    """One distribution file of a release.

    ``source`` is its bytes or a path.  ``provenance`` is the PEP 740
    provenance JSON the index published for it (None: none published);
    set ``provenance_known=False`` when the upstream does not expose
    provenance at all, so that its absence is not read as "not attested".
    """

    filename: str
    source: bytes | str | os.PathLike[str]
    sha256: str | None = None
    provenance: bytes | str | Mapping[str, Any] | None = None
    provenance_known: bool = True


def _sha256(source: bytes | str | os.PathLike[str]) -> str:
    if isinstance(source, (bytes, bytearray)):
        return hashlib.sha256(source).hexdigest()
    with open(source, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _release_of(filename: str) -> tuple[str, str] | None:
    try:
        if filename.lower().endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        return None
    return str(name), str(version)


def _is_pure_wheel(filename: str) -> bool:
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, ValueError):
        return False
    return all(t.platform == "any" and t.abi == "none" for t in tags)


def scan_member(
    path: str, data: bytes, *, kind: str, pure: bool, rules: RuleSet, config: ScanConfig, project: str = ""
) -> list[Behaviour]:
    """Every behaviour of one archive member (``kind`` is 'wheel' or 'sdist'; ``pure`` for py3-none-any)."""
    found = rules.scan(path, data, config.rule_scan_bytes, config.binary_scan_bytes)
    if len(data) > config.rule_scan_bytes and file_traits(path, data)[2]:
        found.append(Behaviour(
            "rules-partial", "limits.rule_scan_bytes", "high", "high",
            f"a {len(data)}-byte text file: only its first {config.rule_scan_bytes} bytes were given to the rules",
            config.rule_scan_bytes, excerpt(data, config.rule_scan_bytes, 80)))
    names = {b.behaviour for b in found}
    norm = normalise_path(path, kind)
    base = norm.rsplit("/", 1)[-1]
    if kind == "wheel" and _SITE_ROOT.match(norm):
        if base.endswith(".pth"):
            found += hooks.pth_behaviours(path, data)
        if base in ("sitecustomize.py", "usercustomize.py"):
            found += hooks.startup_module_behaviour(path, data)
    if kind == "wheel" and re.match(r"^(\{data\}/(purelib|platlib)/)?(sitecustomize|usercustomize)/__init__\.py$", norm):
        found += hooks.startup_module_behaviour(path, data)
    if kind == "sdist" and norm == "setup.py":
        found += hooks.setup_py_behaviours(path, data)
    if base.endswith(".py") and "process-call" in names:
        found += hooks.import_time_behaviours(path, data)
    found += filetypes.placement_behaviours(
        path, data, found, pure=pure, is_wheel=kind == "wheel",
        entropy_min_bytes=config.entropy_min_bytes, entropy_threshold=config.entropy_threshold,
    )
    reports = pickles.find_pickles(
        data, allow=pickles.DEFAULT_ALLOW | config.pickle_allow,
        max_pickle_bytes=config.max_pickle_bytes, max_nested_bytes=config.max_nested_bytes,
    )
    if reports:
        allowed = norm in config.pickle_paths_allowed(project) or path in config.pickle_paths_allowed(project)
        found += pickles.pickle_behaviours(path, reports, allowed_path=allowed)
    return found


# Members bigger than this are read head first; a native library or executable is then only hashed.
_HEAD_BYTES = 1 << 20
_NATIVE_NAMES = re.compile(r"(\.(so|pyd|dll|dylib|exe)|\.so\.[0-9.]+|/[^/.]+)$", re.IGNORECASE)


def _head_is_enough(path: str, head: bytes, rules: RuleSet, config: ScanConfig) -> bool:
    """Whether a big member's head gives every behaviour the whole member would (so it need not be held).

    True for a native library or executable (by its bytes, per the rules)
    under such a name: the rules read no more of a binary than
    ``binary_scan_bytes``, no hook reads files named so, a native header is
    no pickle, media or script, and the entropy test skips native code.
    """
    if not _NATIVE_NAMES.search("/" + path) or file_traits(path, head)[2]:
        return False
    found = rules.scan(path, head, config.rule_scan_bytes, config.binary_scan_bytes)
    return any(b.behaviour in ("native-elf", "native-pe", "native-macho") for b in found)


def _own_modules(entries: Sequence[Entry], kind: str) -> frozenset[str]:
    """Top-level modules the distribution ships (its pickles may import its own classes)."""
    names: set[str] = set()
    for entry in entries:
        parts = entry.path.replace("\\", "/").split("/")
        if kind == "sdist":
            parts = parts[1:]
            if parts and parts[0] == "src":
                parts = parts[1:]
        if not parts or not parts[0] or parts[0].endswith((".dist-info", ".data")):
            continue
        if len(parts) == 1:
            if parts[0].endswith(".py"):
                names.add(parts[0][:-3])
        elif entry.kind == "file" and parts[-1].endswith((".py", ".so", ".pyd")):
            names.add(parts[0])
    return frozenset(n for n in names if n.isidentifier())


def _drop_own_pickle_globals(behaviours: list[dict[str, Any]], own: frozenset[str]) -> list[dict[str, Any]]:
    prefix = "pickle-unlisted-global:"
    return [
        b for b in behaviours
        if not (str(b.get("behaviour", "")).startswith(prefix)
                and str(b["behaviour"])[len(prefix):].split(".", 1)[0] in own)
    ]


def _bundled_executable_findings(files: Mapping[str, Mapping[str, Any]], release: str | None) -> list[Finding]:
    """Module-level code that starts an executable the package itself ships (the torchtriton pattern).

    Legitimate packages run their bundled tools on demand, not as a side
    effect of ``import``; this holds on a first release too.
    """
    executables = {
        path.rsplit("/", 1)[-1]: path
        for path, record in files.items()
        if any(b.get("behaviour") in ("native-elf", "native-pe", "native-macho", "shell-script")
               for b in record.get("behaviours", []))
        and not path.rsplit("/", 1)[-1].endswith((".so", ".pyd", ".dll", ".dylib")) and ".so." not in path
    }
    out: list[Finding] = []
    if not executables:
        return out
    for path, record in files.items():
        for b in record.get("behaviours", []):
            if b.get("behaviour") != "import-time-process":
                continue
            named = sorted({executables[name] for d in b.get("details", []) for name in executables
                            if d == name or d.endswith("/" + name)})
            if named:
                out.append(finding(
                    "content.runs-bundled-executable", Severity.HIGH,
                    f"{path} starts the bundled executable {named[0]} at import", file=path,
                    rule="hooks.import_time_process+files.native", quote=str(b.get("excerpt", "")), release=release,
                    executables=named,
                ))
    return out


def _incomplete_finding(exc: ScanIncomplete, filename: str, release: str | None) -> Finding:
    where = exc.path or filename
    return finding(
        "content.scan-incomplete", Severity.HIGH,
        f"content scan of {filename} could not finish ({exc.reason})",
        file=where, rule=f"limit:{exc.reason}", quote=excerpt(exc.detail), release=release,
        artifact=filename, reason=exc.reason,
    )


def _entry_point_findings(
    filename: str, meta_file: str, points: Mapping[str, Mapping[str, str]], previous: Mapping[str, Any] | None,
    project: str, config: ScanConfig, release: str | None, previous_version: str | None,
) -> list[Finding]:
    findings: list[Finding] = []
    before: Mapping[str, Mapping[str, str]] = (previous or {}).get("entry_points", {}) if previous is not None else {}
    for script, target in hooks.shadowing_scripts(project, points, config.shadowed_commands):
        existed = any(script in before.get(g, {}) for g in ("console_scripts", "gui_scripts"))
        if previous is not None and existed:
            continue
        findings.append(finding("content.console-script-shadowing", Severity.HIGH,
                                f"console script {script!r} shadows a common command", file=meta_file,
                                rule="console-script-shadowing", quote=excerpt(f"{script} = {target}"),
                                release=release, new_since=previous_version if previous is not None else None))
    if previous is None:
        return findings
    for group, entries in points.items():
        old = before.get(group, {})
        for name, target in entries.items():
            if name not in old:
                findings.append(finding("content.entry-point-new", Severity.LOW,
                                        f"new entry point {group}:{name}", file=meta_file, rule="entry-point-new",
                                        quote=excerpt(f"{name} = {target}"), release=release, new_since=previous_version))
            elif old[name].strip() != target.strip():
                findings.append(finding("content.entry-point-changed", Severity.LOW,
                                        f"entry point {group}:{name} now points to {target.strip()!r}", file=meta_file,
                                        rule="entry-point-changed", quote=excerpt(f"{old[name]} -> {target}"),
                                        release=release, new_since=previous_version))
    return findings


@dataclass
class _Walk:
    """What walking one archive gave: every entry, each member's record, and what is still to judge."""

    entries: list[Entry] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)
    special: dict[str, bytes] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (path, normalised path, the matched previous path and record, unchanged since then)
    pending: list[tuple[str, str, str | None, Mapping[str, Any] | None, bool]] = field(default_factory=list)
    scanned_bytes: int = 0
    scanned: int = 0
    reused: int = 0


def scan_artifact(
    artifact: Artifact,
    previous_inventory: Mapping[str, Any] | None,
    config: ScanConfig | None = None,
    *,
    rules: RuleSet | None = None,
    budget: Budget | None = None,
) -> ArtifactReport:
    """Screen one distribution file against the previous release's inventory (content and structure).

    Release-level checks (provenance, the first pickle of a project) need
    the whole release and live in ``scan_release``; calling that with a
    single artifact gives them for one file too.
    """
    config = config or ScanConfig()
    rules = rules or default_rules()
    budget = budget or Budget(config)
    project, version = _release_of(artifact.filename) or ("", "")
    release = version or None
    kind, _ = artifact_key(artifact.filename)
    pure = kind == "wheel" and _is_pure_wheel(artifact.filename)
    previous_artifact = match_previous_artifact(artifact.filename, previous_inventory)
    previous = PreviousFiles(previous_artifact)
    previous_version = str(previous_inventory.get("version")) if previous_inventory else None
    same_rules = bool(previous_inventory) and previous_inventory.get("ruleset") == rules.version
    try:
        sha = artifact.sha256 or _sha256(artifact.source)
    except OSError:
        sha = ""

    findings: list[Finding] = []
    walk = _Walk()
    complete = True
    try:
        _walk(artifact, kind, pure, previous, same_rules, project, rules, config, budget, walk)
    except ScanIncomplete as exc:
        complete = False
        findings.append(_incomplete_finding(exc, artifact.filename, release))
    except OSError as exc:
        complete = False
        findings.append(_incomplete_finding(ScanIncomplete("unreadable", str(exc)), artifact.filename, release))

    judged, context = _judge(walk, kind, previous, same_rules, release, previous_version)
    findings += judged
    already = {(f.evidence["file"], tuple(f.evidence["executables"]))
               for f in _bundled_executable_findings(previous.by_path, release)}
    findings += [f for f in _bundled_executable_findings(walk.files, release)
                 if (f.evidence["file"], tuple(f.evidence["executables"])) not in already]

    points: dict[str, dict[str, str]] = {}
    if complete:
        structure, points = _structure(artifact, kind, walk, previous_artifact, project, config, release,
                                       previous_version)
        findings = structure + findings

    inventory = _artifact_inventory(artifact.filename, kind, sha, pure, complete, walk.files, points)
    return ArtifactReport(
        filename=artifact.filename, findings=tuple(findings), inventory=inventory, context=tuple(context),
        scanned_bytes=walk.scanned_bytes, files_scanned=walk.scanned, files_reused=walk.reused, complete=complete,
    )


def _walk(
    artifact: Artifact, kind: str, pure: bool, previous: PreviousFiles, same_rules: bool, project: str,
    rules: RuleSet, config: ScanConfig, budget: Budget, walk: _Walk,
) -> None:
    """Read every member once: record it, and scan it unless it is unchanged under the same rules."""
    member_kind = "wheel" if kind == "wheel" else "sdist"
    head_bytes = max(_HEAD_BYTES, config.binary_scan_bytes)
    for member in iter_members(artifact.source, artifact.filename, budget, head_bytes=head_bytes):
        walk.entries.append(member.entry)
        if member.data is None:
            continue
        path, data = member.entry.path, member.data
        special = (kind == "wheel" and _WHEEL_SPECIAL.match(path)) or (kind == "sdist" and _SDIST_SPECIAL.match(path))
        if member.rest is None:
            digest = hashlib.sha256(data).digest()
        elif not special and _head_is_enough(path, data, rules, config):
            hasher = hashlib.sha256(data)
            for chunk in member.rest:
                hasher.update(chunk)
            digest = hasher.digest()
        else:
            data = data + b"".join(member.rest)
            digest = hashlib.sha256(data).digest()
        size = member.entry.size
        walk.digests[path] = record_digest(data, digest)
        if special:
            walk.special[path] = data
        file_sha = digest.hex()
        norm = normalise_path(path, member_kind)
        previous_path, previous_record = previous.match(norm, file_sha)
        unchanged = previous_record is not None and previous_record.get("sha256") == file_sha
        if unchanged and same_rules:
            behaviours = list(previous_record.get("behaviours", []))  # type: ignore[union-attr]
            walk.reused += 1
        else:
            found = scan_member(path, data, kind=member_kind, pure=pure, rules=rules, config=config, project=project)
            behaviours = [b.to_dict() for b in found]
            walk.scanned += 1
            walk.scanned_bytes += size
        walk.files[norm] = {"sha256": file_sha, "size": size, "behaviours": behaviours, "risk": risk_of(behaviours)}
        walk.pending.append((path, norm, previous_path, previous_record, unchanged))


def _judge(
    walk: _Walk, kind: str, previous: PreviousFiles, same_rules: bool, release: str | None,
    previous_version: str | None,
) -> tuple[list[Finding], list[dict[str, Any]]]:
    """Findings for what is new or riskier than before; what was already there becomes context."""
    findings: list[Finding] = []
    context: list[dict[str, Any]] = []
    own = _own_modules(walk.entries, "wheel" if kind == "wheel" else "sdist")
    for path, norm, previous_path, previous_record, unchanged in walk.pending:
        record = walk.files[norm]
        behaviours = _drop_own_pickle_globals(record["behaviours"], own)
        if len(behaviours) != len(record["behaviours"]):
            record["behaviours"], record["risk"] = behaviours, risk_of(behaviours)
        if unchanged:
            context.extend({"file": path, **b, "why": f"file unchanged since {previous_version}"}
                           for b in behaviours if b.get("severity") != "info")
            if same_rules:
                continue
            # The rules changed since: judge what the old record lacks on its own (high confidence only).
            known = {x.get("behaviour") for x in (previous_record or {}).get("behaviours", [])}
            got, ctx = behaviour_findings(path, [b for b in behaviours if b.get("behaviour") not in known],
                                          PreviousFiles(None), None, None,
                                          release=release, previous_version=previous_version)
        else:
            got, ctx = behaviour_findings(path, behaviours, previous, previous_record, previous_path,
                                          release=release, previous_version=previous_version)
        findings += got
        context += ctx
    return findings, context


def _structure(
    artifact: Artifact, kind: str, walk: _Walk, previous_artifact: Mapping[str, Any] | None, project: str,
    config: ScanConfig, release: str | None, previous_version: str | None,
) -> tuple[list[Finding], dict[str, dict[str, str]]]:
    """What the archive claims about itself (RECORD, METADATA, paths), and its entry points."""
    points: dict[str, dict[str, str]] = {}
    if kind != "wheel":
        structure, _ = check_sdist(artifact.filename, walk.entries, walk.special, release=release)
        return structure, points
    structure, info = check_wheel(artifact.filename, walk.entries, walk.digests, walk.special, release=release)
    meta_dir = info.meta_dir if info else None
    if meta_dir and f"{meta_dir}/entry_points.txt" in walk.special:
        points = hooks.entry_points(walk.special[f"{meta_dir}/entry_points.txt"])
        structure = structure + _entry_point_findings(
            artifact.filename, f"{meta_dir}/entry_points.txt", points, previous_artifact, project,
            config, release, previous_version,
        )
    return structure, points


def _has_pickles(artifacts: Sequence[Mapping[str, Any]]) -> list[str]:
    """Normalised paths of every file holding a pickle."""
    found = {
        path
        for artifact in artifacts
        for path, record in artifact.get("files", {}).items()
        if any(b.get("behaviour") == "pickle" for b in record.get("behaviours", []))
    }
    return sorted(found)


def scan_release(
    artifacts: Sequence[Artifact],
    previous_inventory: Mapping[str, Any] | None,
    config: ScanConfig | None = None,
    *,
    rules: RuleSet | None = None,
    clock: Callable[[], float] = time.monotonic,
    pause: Callable[[], None] | None = None,
) -> ReleaseReport:
    """Screen every file of one release; the returned inventory is the next release's baseline.

    ``previous_inventory`` is the ``inventory`` of the last approved
    release's report (None for a project's first release: then only
    high-confidence rules give findings).  ``pause`` is called between
    members (see ``Budget``): a background scan waits there for a client's.
    """
    config = config or ScanConfig()
    rules = rules or default_rules()
    budget = Budget(config, clock=clock, pause=pause)
    reports = [scan_artifact(a, previous_inventory, config, rules=rules, budget=budget) for a in artifacts]
    parsed = next((r for r in (_release_of(a.filename) for a in artifacts) if r), ("", ""))
    project, version = parsed
    release = version or None
    previous_version = str(previous_inventory.get("version")) if previous_inventory else None
    findings: list[Finding] = [f for r in reports for f in r.findings]

    inventories = [r.inventory for r in reports]
    allowed = config.pickle_paths_allowed(project)
    pickle_files = [p for p in _has_pickles(inventories) if p not in allowed]
    had_pickles = bool(previous_inventory and previous_inventory.get("has_pickles"))
    if pickle_files and not had_pickles:
        findings.append(finding(
            "content.first-pickle", Severity.MEDIUM,
            f"first pickle in this project: {len(pickle_files)} file(s)" + (f", {pickle_files[0]}" if pickle_files else ""),
            file=pickle_files[0], rule="first-pickle", quote=excerpt(", ".join(pickle_files[:10])), release=release,
            new_since=previous_version, files=pickle_files[:50],
        ))

    results: list[ProvenanceResult] = []
    for artifact, report in zip(artifacts, reports, strict=True):
        if artifact.provenance_known:
            digest = artifact.sha256 or report.inventory.get("sha256") or ""
            results.append(verify_provenance(artifact.filename, digest, artifact.provenance))
    previous_provenance = (previous_inventory or {}).get("provenance")
    findings += provenance_findings(results, previous_provenance, release=release, previous_version=previous_version)
    summary = provenance_summary(results, previous_provenance) if results else dict(previous_provenance or _no_provenance())

    inventory = _release_inventory(project, version, rules.version, inventories,
                                   has_pickles=bool(pickle_files) or had_pickles, provenance=summary)
    return ReleaseReport(
        findings=tuple(findings), inventory=inventory, ruleset_version=rules.version,
        scanned_bytes=sum(r.scanned_bytes for r in reports), seconds=budget.seconds,
        artifacts=tuple(reports), context=tuple(c for r in reports for c in r.context),
    )


def stopped_release(
    artifact: Artifact, previous_inventory: Mapping[str, Any] | None, reason: str, detail: str, *,
    ruleset_version: str, seconds: float,
) -> ReleaseReport:
    """The report of a scan stopped from outside (its worker killed at the hard limit, or dead).

    One ``content.scan-incomplete`` finding and nothing inventoried: like a
    scan that hit a limit, it holds the release for a person.
    """
    project, version = _release_of(artifact.filename) or ("", "")
    kind, _ = artifact_key(artifact.filename)
    found = _incomplete_finding(ScanIncomplete(reason, detail), artifact.filename, version or None)
    pure = kind == "wheel" and _is_pure_wheel(artifact.filename)
    files = _artifact_inventory(artifact.filename, kind, artifact.sha256 or "", pure, False, {}, {})
    previous = previous_inventory or {}
    inventory = _release_inventory(project, version, ruleset_version, [files],
                                   has_pickles=bool(previous.get("has_pickles")),
                                   provenance=dict(previous.get("provenance") or _no_provenance()))
    report = ArtifactReport(filename=artifact.filename, findings=(found,), inventory=files, complete=False)
    return ReleaseReport(findings=(found,), inventory=inventory, ruleset_version=ruleset_version,
                         scanned_bytes=0, seconds=seconds, artifacts=(report,))


def _no_provenance() -> dict[str, Any]:
    return {"attested": False, "attested_ever": False, "publishers": [], "files": []}


def _artifact_inventory(filename: str, kind: str, sha256: str, pure: bool, complete: bool,
                        files: dict[str, dict[str, Any]], entry_points: dict[str, dict[str, str]]) -> dict[str, Any]:
    return {"filename": filename, "kind": kind, "sha256": sha256, "pure": pure, "complete": complete,
            "files": files, "entry_points": entry_points}


def _release_inventory(project: str, version: str, ruleset: str, artifacts: list[dict[str, Any]], *,
                       has_pickles: bool, provenance: dict[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT, "project": project, "version": version, "ruleset": ruleset,
            "complete": all(a["complete"] for a in artifacts), "has_pickles": has_pickles,
            "artifacts": artifacts, "provenance": provenance}
