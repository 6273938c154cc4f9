"""The part of a Python source that runs at import, cut out without parsing the rest.

The import-time check needs the module-level statements of a file, but
``ast.parse`` of a whole file costs 2-3 MB/s, and on real wheels most bytes
are the bodies of top-level functions and classes (numpy's test modules
alone take a second).  ``module_level_source`` returns the same source with
the body of every function and class defined at column 0 replaced by
``pass`` and blank lines, so that the parser only builds what the check
looks at, and every line keeps its number (offsets and excerpts are taken
from the original bytes).

The cut is made by a lexer of strings, comments, brackets and line
continuations, which is all that decides where a logical line starts.  It
answers ``None`` (parse the whole file) whenever it is not certain to agree
with Python's own tokenizer: carriage returns, form feeds or NUL bytes, a
source encoding other than an ASCII-compatible one, a quote it cannot pair,
unbalanced brackets, or an f-string whose replacement fields use what
Python 3.12 (PEP 701) tokenizes differently from older versions (nested
quotes of the same kind, nested f-strings, comments or backslashes in a
field).  Falling back costs time, never detection.
"""

from __future__ import annotations

import re

__all__ = ["module_level_source"]

# A string literal (its prefix is read separately: raw or not, it ends the same way) or a comment.
# One flat alternation without groups: twice as fast in ``re`` as the same with named groups.
_LEXEME = re.compile(
    rb"""\"\"\"[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*\"\"\"|'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*'''"""
    rb"""|"[^"\\\n]*(?:\\.[^"\\\n]*)*"|'[^'\\\n]*(?:\\.[^'\\\n]*)*'|\#[^\n]*""",
    re.S,
)
# PEP 263: a coding declaration on one of the first two lines.
_COOKIE = re.compile(rb"^[ \t]*#.*?coding[:=][ \t]*([-\w.]+)", re.M)
# Encodings in which every byte of a non-ASCII character is >= 0x80 (no ASCII look-alikes).
_ASCII_SAFE = frozenset({"utf-8", "utf8", "utf_8", "ascii", "us-ascii", "latin-1", "latin1", "iso-8859-1", "iso8859-1"})
_LINE_START = re.compile(rb"^[^ \t\n]", re.M)
_DEF_OR_CLASS = re.compile(rb"(?:async[ \t]+)?def[ \t]|class[ \t]")
_FIELD_SPECIAL = re.compile(rb"""[{}\[\]()'"#\\:]""")
_LITERAL_SPECIAL = re.compile(rb"[{}\\]")
_UNCERTAIN = (b"\r", b"\f", b"\x00")


def module_level_source(data: bytes) -> bytes | None:
    """``data`` with the bodies of column-0 ``def``/``class`` blanked (line numbers kept), or None if unsure."""
    if any(byte in data for byte in _UNCERTAIN) or not _ascii_compatible(data):
        return None
    masked = _mask(data)
    if masked is None or b'"' in masked or b"'" in masked:
        return None
    starts = _logical_line_starts(masked)
    if not starts:
        return None
    out: list[bytes] = []
    kept = 0
    for here, following in zip(starts, starts[1:] + [len(data)], strict=True):
        if not _DEF_OR_CLASS.match(masked, here):
            continue
        header_end = _end_of_logical_line(masked, here, following)
        if header_end is None:
            continue
        body = masked[header_end + 1 : following]
        if not body.strip():
            continue
        out.append(data[kept : header_end + 1])
        lines = data.count(b"\n", header_end + 1, following)
        out.append(b" pass" + b"\n" * lines if lines else b" pass")
        kept = following
    out.append(data[kept:])
    return b"".join(out)


def _ascii_compatible(data: bytes) -> bool:
    head = b"\n".join(data.split(b"\n", 2)[:2])
    match = _COOKIE.search(head)
    if match is None:
        return not data.startswith((b"\xff\xfe", b"\xfe\xff"))
    return match.group(1).decode("ascii", "replace").lower().replace("_", "-") in _ASCII_SAFE


class _Unsure(Exception):
    """The lexer cannot promise to agree with Python's tokenizer on this source."""


def _mask(data: bytes) -> bytes | None:
    """``data`` with every string as 0x01 bytes (newlines too) and every comment as spaces; None if unsure."""

    def blank(match: re.Match[bytes]) -> bytes:
        start, end = match.span()
        if data[start] == 0x23:  # "#": a comment
            return b" " * (end - start)
        if b"f" in _prefix_before(data, start).lower() and not _fstring_agrees(match.group()):
            raise _Unsure
        return b"\x01" * (end - start)

    try:
        return _LEXEME.sub(blank, data)
    except _Unsure:
        return None


def _fstring_agrees(literal: bytes) -> bool:
    """Whether every Python (3.11 and PEP 701) ends this f-string where the plain-string rule does.

    ``literal`` holds its quotes.  The fields are followed as Python 3.12
    reads them (brackets, nested plain strings, format specs with their
    own fields); anything beyond that subset answers False.
    """
    quote = 3 if literal[:3] in (b'"""', b"'''") else 1
    body = literal[quote:-quote]
    if b"{" not in body and b"}" not in body:
        return True
    # Each entry: "f" (a field's expression, with its bracket depth) or "s" (a format spec).
    stack: list[list[object]] = []
    pos = 0
    while pos < len(body):
        if not stack or stack[-1][0] == "s":
            match = _LITERAL_SPECIAL.search(body, pos)
            if match is None:
                break
            pos = match.start()
            char = body[pos : pos + 1]
            if char == b"\\":
                if body[pos + 1 : pos + 2] in (b"{", b"}", b"N", b""):
                    return False
                pos += 2
            elif char == b"{":
                if not stack and body[pos + 1 : pos + 2] == b"{":
                    pos += 2
                else:
                    stack.append(["f", 0])
                    pos += 1
            else:  # "}"
                if not stack:
                    if body[pos + 1 : pos + 2] != b"}":
                        return False
                    pos += 2
                else:
                    stack.pop()  # the end of the field this format spec belongs to
                    pos += 1
            continue
        match = _FIELD_SPECIAL.search(body, pos)
        if match is None:
            return False  # a field that never closes
        pos = match.start()
        char = body[pos : pos + 1]
        field = stack[-1]
        if char in b"#\\":
            return False
        if char in b"'\"":
            if body[pos : pos + 3] == char * 3 or b"f" in _prefix_before(body, pos).lower():
                return False
            end = body.find(char, pos + 1)
            if end < 0 or b"\\" in body[pos:end] or b"\n" in body[pos:end]:
                return False
            pos = end + 1
        elif char in b"([{":
            field[1] = int(field[1]) + 1  # type: ignore[call-overload]
            pos += 1
        elif char in b")]":
            field[1] = int(field[1]) - 1  # type: ignore[call-overload]
            if int(field[1]) < 0:  # type: ignore[call-overload]
                return False
            pos += 1
        elif char == b"}":
            if field[1]:
                field[1] = int(field[1]) - 1  # type: ignore[call-overload]
            else:
                stack.pop()
            pos += 1
        else:  # ":" at the field's own level starts its format spec
            if not field[1]:
                field[0] = "s"
            pos += 1
    return not stack


def _prefix_before(body: bytes, pos: int) -> bytes:
    """The letters just before a quote (a string prefix such as ``rb`` or ``f``)."""
    start = pos
    while start > 0 and pos - start < 3 and body[start - 1 : start].isalpha():
        start -= 1
    return body[start:pos]


def _logical_line_starts(masked: bytes) -> list[int] | None:
    """Offsets of the logical lines that start at column 0 (None if the brackets do not balance)."""
    starts: list[int] = []
    depth = 0
    last = 0
    for match in _LINE_START.finditer(masked):
        here = match.start()
        depth += _bracket_balance(masked, last, here)
        last = here
        if depth < 0:
            return None
        if depth == 0 and not (here >= 2 and masked[here - 2] == 0x5C):  # not after a backslash continuation
            starts.append(here)
    if depth + _bracket_balance(masked, last, len(masked)) != 0:
        return None
    return starts


def _bracket_balance(masked: bytes, start: int, end: int) -> int:
    opened = masked.count(b"(", start, end) + masked.count(b"[", start, end) + masked.count(b"{", start, end)
    closed = masked.count(b")", start, end) + masked.count(b"]", start, end) + masked.count(b"}", start, end)
    return opened - closed


def _end_of_logical_line(masked: bytes, start: int, limit: int) -> int | None:
    """Offset of the newline that ends the logical line starting at ``start`` (None: none before ``limit``)."""
    pos = start
    while True:
        newline = masked.find(b"\n", pos, limit)
        if newline < 0:
            return None
        if _bracket_balance(masked, start, newline) == 0 and masked[newline - 1] != 0x5C:
            return newline
        pos = newline + 1
