"""Building findings whose evidence is safe to show and to store.

Everything quoted from an artifact is attacker-controlled: an excerpt is
reduced to printable ASCII (everything else as an escape), cut short, and
stored as plain text, so a review page that escapes HTML as usual can show
it and a log line cannot be forged with control characters.
"""

from __future__ import annotations

from typing import Any

from detectors.findings import Finding, Severity

__all__ = ["excerpt", "finding", "EXCERPT_CHARS"]

EXCERPT_CHARS = 160


def excerpt(data: bytes | str, start: int = 0, length: int = EXCERPT_CHARS) -> str:
    """A short, printable-ASCII-only quote of ``data`` around ``start``."""
    if isinstance(data, str):
        data = data.encode("utf-8", "backslashreplace")
    chunk = data[max(0, start) : max(0, start) + length]
    out: list[str] = []
    for byte in chunk:
        if byte in (0x5C,):  # backslash: escape so escapes stay unambiguous
            out.append("\\\\")
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        elif byte == 0x0A:
            out.append("\\n")
        elif byte == 0x09:
            out.append("\\t")
        else:
            out.append(f"\\x{byte:02x}")
    text = "".join(out)
    if len(text) > 2 * length:
        text = text[: 2 * length]
    if len(data) > max(0, start) + length:
        text += "..."
    return text


def finding(
    detector: str,
    severity: Severity,
    title: str,
    *,
    file: str | None,
    rule: str,
    quote: str = "",
    release: str | None = None,
    new_since: str | None = None,
    **extra: Any,
) -> Finding:
    """A finding whose evidence always names the file, the rule and an excerpt."""
    evidence: dict[str, Any] = {"file": file, "rule": rule, "excerpt": quote}
    if new_since is not None:
        evidence["new_since"] = new_since
        title = f"{title} (new since {new_since})"
    evidence.update(extra)
    return Finding(detector=detector, severity=severity, title=title, evidence=evidence, release=release)
