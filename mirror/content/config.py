"""Every limit and knob of content screening, in one frozen value.

A scan must be bounded: releases come from strangers, and a zip bomb or a
million tiny members must cost a finding, not the mirror.  Keeping every
limit here (with defaults sized for a 2-core machine and wheels up to a few
hundred MB) lets the service load them from its configuration file and lets
tests shrink them to trigger each limit cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["ScanConfig", "DEFAULT_SHADOWED_COMMANDS"]

MiB = 1024 * 1024

# Commands a console script must not silently replace on a user's PATH.
DEFAULT_SHADOWED_COMMANDS: frozenset[str] = frozenset(
    {
        "pip", "pip3", "python", "python3", "py", "ls", "cd", "cp", "mv", "rm", "cat", "sudo", "su",
        "git", "ssh", "scp", "curl", "wget", "sh", "bash", "zsh", "env", "which", "chmod", "chown",
        "uv", "poetry", "pdm", "conda", "docker", "kubectl", "aws", "gcloud", "az", "npm", "node",
        "make", "gcc", "cc", "ld", "tar", "unzip", "openssl", "gpg", "passwd", "login", "ps", "kill",
        "systemctl", "crontab", "apt", "apt-get", "yum", "dnf", "brew", "top", "grep", "find", "id",
    }
)


@dataclass(frozen=True)
class ScanConfig:
    """Limits and allow lists for one scan.

    Limits (a scan that hits one yields a ``content.scan-incomplete`` finding):

    - ``max_archive_bytes``: size of the artifact file itself.
    - ``max_total_bytes``: decompressed bytes read from all members together.
    - ``max_member_bytes``: decompressed size of one member (declared and read).
    - ``max_members``: entries in the archive.
    - ``max_seconds``: wall-clock budget for the whole release.
    - ``max_ratio``: declared compression ratio of one member beyond which it
      is treated as a bomb without being read.
    - ``max_nested_bytes``: bytes read from an archive nested in a member
      (PyTorch zips, compressed pickles).

    Content knobs:

    - ``rule_scan_bytes``: a text member is given to the YARA rules whole
      up to this size; a larger one gets its first N bytes scanned and a
      ``rules-partial`` behaviour (high: its release is held for a person).
    - ``binary_scan_bytes``: a member that is not text (a NUL or mostly
      unprintable bytes in its head: native libraries, archives, images)
      gives the rules only its first N bytes.  The packaged rules look at a
      binary's header only (magic numbers, an anchored shebang); every
      other rule requires text, so nothing is lost.  Raise it with any rule
      that looks deeper into binaries.
    - ``max_pickle_bytes``: pickles larger than this are walked up to it and
      then reported as not fully checked.
    - ``entropy_min_bytes`` / ``entropy_threshold``: a blob at least this big
      whose sampled entropy (bits per byte) is above the threshold and that is
      no known compressed or native format is "a large high-entropy blob".
    - ``pickle_allow``: extra ``module.name`` globals (or ``module.*``) that
      pickles may import, on top of the built-in safe list.
    - ``allowed_pickle_paths``: per-project admin allow list of archive
      paths whose pickles are known test data (still inventoried, never a
      finding).  Maps canonical project name -> paths.
    - ``shadowed_commands``: console-script names that shadow common tools.
    """

    max_archive_bytes: int = 1024 * MiB
    max_total_bytes: int = 2048 * MiB
    max_member_bytes: int = 512 * MiB
    max_members: int = 50_000
    max_seconds: float = 120.0
    max_ratio: float = 1000.0
    max_nested_bytes: int = 256 * MiB
    rule_scan_bytes: int = 64 * MiB
    binary_scan_bytes: int = 64 * 1024
    max_pickle_bytes: int = 64 * MiB
    entropy_min_bytes: int = 1 * MiB
    entropy_threshold: float = 7.97
    pickle_allow: frozenset[str] = frozenset()
    allowed_pickle_paths: Mapping[str, frozenset[str]] = field(default_factory=dict)
    shadowed_commands: frozenset[str] = DEFAULT_SHADOWED_COMMANDS

    def __post_init__(self) -> None:
        for name in (
            "max_archive_bytes", "max_total_bytes", "max_member_bytes", "max_members",
            "max_nested_bytes", "rule_scan_bytes", "binary_scan_bytes", "max_pickle_bytes", "entropy_min_bytes",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.max_seconds <= 0 or self.max_ratio <= 1:
            raise ValueError("max_seconds must be > 0 and max_ratio > 1")

    def pickle_paths_allowed(self, project: str) -> frozenset[str]:
        """The admin-allowed pickle paths of one (canonical) project."""
        return frozenset(self.allowed_pickle_paths.get(project, frozenset()))
