"""One read-only buffer holding named arrays and string tables: the corpus's storage format.

A corpus held as Python objects (a string, a set, a tuple per key) costs
some 46 MiB for 15,000 names, most of it object headers; held as a few flat
arrays in one buffer it costs a sixth of that, loads without parsing, and a
buffer that is a memory-mapped file is shared by every worker process that
maps it.

Layout: ``MAGIC``, a little-endian 32-bit header length, a JSON header
(format, byte order, the caller's fingerprint of the inputs, a SHA-256 of
the payload, and where each section lies), then the sections, each aligned
to 8 bytes.  ``unpack`` checks all of it and raises ``ValueError`` for a
buffer it cannot trust, so that a truncated, corrupt or stale file is
rebuilt rather than read.

``StringTable`` is an open-addressing hash table over strings (CRC-32, which
is the same in every process, unlike ``hash``): a look-up hashes the key,
probes a few slots and compares the stored key's bytes, so a hash collision
never answers for another key.  Each key has a run of 32-bit values
(``values``): ids, or a count.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from array import array
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from zlib import crc32

__all__ = ["FILTER_SHIFT", "FORMAT", "StringTable", "pack", "unpack"]

MAGIC = b"IGPACK\x00\x01"
FORMAT = 1
_ALIGN = 8


def pack(sections: dict[str, bytes | bytearray | array], fingerprint: str, scalars: Mapping[str, Any]) -> bytearray:
    """Sections (bytes or arrays) and JSON-able scalars in one buffer for ``unpack``.

    ``sections`` is emptied as the buffer is written: each section is let go
    once copied, so a corpus being built is never held twice (holding them
    all until the end made the first ``indexguard check`` 20 MiB bigger).
    """
    layout: dict[str, list[Any]] = {}
    digest = hashlib.sha256()
    at = 0
    for name, data in sections.items():
        with memoryview(data) as view, view.cast("B") as raw:
            code = data.typecode if isinstance(data, array) else "B"
            layout[name] = [at, len(raw), code]
            digest.update(raw)
            digest.update(b"\x00" * (-len(raw) % _ALIGN))
            at += len(raw) + (-len(raw) % _ALIGN)
    header = json.dumps(
        {
            "format": FORMAT,
            "byteorder": sys.byteorder,
            "fingerprint": fingerprint,
            "sha256": digest.hexdigest(),
            "sections": layout,
            "scalars": dict(scalars),
        },
        sort_keys=True,
    ).encode()
    header += b" " * (-(len(MAGIC) + 4 + len(header)) % _ALIGN)
    out = bytearray(MAGIC + struct.pack("<I", len(header)) + header)
    for name in layout:
        data = sections.pop(name)
        with memoryview(data) as view, view.cast("B") as raw:
            out += raw
            out += b"\x00" * (-len(raw) % _ALIGN)
    return out


def unpack(buffer: Any, fingerprint: str | None = None) -> tuple[dict[str, memoryview], dict[str, Any]]:
    """The sections (typed memoryviews into ``buffer``) and scalars of a ``pack`` buffer.

    ``fingerprint``, when given, must equal the one the buffer was packed
    with.  Raises ``ValueError`` for anything else than an intact buffer of
    this format written on a machine of this byte order.
    """
    view = memoryview(buffer)
    start = len(MAGIC) + 4
    if len(view) < start or bytes(view[: len(MAGIC)]) != MAGIC:
        raise ValueError("not a packed index (bad magic)")
    (size,) = struct.unpack("<I", view[len(MAGIC) : start])
    try:
        header = json.loads(bytes(view[start : start + size]))
    except ValueError:
        raise ValueError("packed index: unreadable header") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError("packed index: another format version")
    if header.get("byteorder") != sys.byteorder:
        raise ValueError("packed index: written with another byte order")
    if fingerprint is not None and header.get("fingerprint") != fingerprint:
        raise ValueError("packed index: built from other inputs")
    payload = view[start + size :]
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise ValueError("packed index: payload does not match its checksum (truncated or corrupt)")
    sections = {}
    for name, (offset, length, code) in header["sections"].items():
        if offset + length > len(payload):
            raise ValueError(f"packed index: section {name} lies beyond the end")
        sections[name] = payload[offset : offset + length].cast(code)
    return sections, header["scalars"]


# The filter has 2**22 slots (4 MiB): some 6% of them set by 250,000 keys.
FILTER_SHIFT = 10


def _slots_for(count: int) -> int:
    size = 8
    while size < 2 * count:  # at most half full: short probe runs
        size *= 2
    return size


class StringTable:
    """Strings mapped to runs of 32-bit values, stored in five arrays (see the module docstring)."""

    __slots__ = ("hashes", "_slot_keys", "_key_offsets", "_keys", "_value_offsets", "values", "mask", "filter")

    def __init__(self, sections: Mapping[str, memoryview], prefix: str) -> None:
        self.hashes = sections[prefix + ".hashes"]
        self._slot_keys = sections[prefix + ".slots"]
        self._key_offsets = sections[prefix + ".key_offsets"]
        self._keys = sections[prefix + ".keys"]
        self._value_offsets = sections[prefix + ".value_offsets"]
        self.values = sections[prefix + ".values"]
        self.mask = len(self.hashes) - 1
        self.filter = sections.get(prefix + ".filter")

    @staticmethod
    def build(
        entries: Mapping[str, int | Iterable[int]],
        prefix: str,
        *,
        filtered: bool = False,
        consume: bool = False,
    ) -> dict[str, array | bytearray]:
        """The sections of a table holding ``entries`` (key -> values, or key -> one value), for ``pack``.

        ``filtered`` adds ``filter``: a byte per ``FILTER_SLOTS`` (set where
        some key's CRC-32 >> ``FILTER_SHIFT`` falls), so that a caller with
        many keys, most absent, can drop nearly all of them with C-level
        ``map`` calls before probing the table (``NameIndex.candidates_by_reach``).
        ``consume`` empties ``entries`` (a dict) once its keys and values are
        copied, before the slot arrays are made: the corpus's quarter of a
        million keys are then never held beside all of their table.
        """
        keys = sorted(entries)
        key_offsets = array("I", [0])
        value_offsets = array("I", [0])
        codes = array("I")
        blob = bytearray()
        values = array("I")
        for key in keys:
            raw = key.encode()
            blob += raw
            key_offsets.append(len(blob))
            held = entries[key]
            if isinstance(held, int):
                values.append(held)
            else:
                values.extend(held)
            value_offsets.append(len(values))
            codes.append(crc32(raw))
        if consume:
            entries.clear()  # type: ignore[attr-defined]
        del keys
        size = _slots_for(len(codes))
        mask = size - 1
        hashes = array("I", bytes(4 * size))
        slots = array("I", bytes(4 * size))
        seen = bytearray(1 << (32 - FILTER_SHIFT)) if filtered else None
        for number, code in enumerate(codes):
            if seen is not None:
                seen[code >> FILTER_SHIFT] = 1
            code |= 1
            at = code & mask
            while hashes[at]:
                at = (at + 1) & mask
            hashes[at] = code
            slots[at] = number
        sections = {
            prefix + ".hashes": hashes,
            prefix + ".slots": slots,
            prefix + ".key_offsets": key_offsets,
            prefix + ".keys": blob,
            prefix + ".value_offsets": value_offsets,
            prefix + ".values": values,
        }
        if seen is not None:
            sections[prefix + ".filter"] = seen
        return sections

    def find(self, key: str) -> int:
        """The number of ``key`` in the table, or -1."""
        raw = key.encode()
        code = crc32(raw) | 1
        mask, hashes = self.mask, self.hashes
        at = code & mask
        stored = hashes[at]
        while stored:
            if stored == code:
                number = self._slot_keys[at]
                offsets = self._key_offsets
                if self._keys[offsets[number] : offsets[number + 1]] == raw:
                    return number
            at = (at + 1) & mask
            stored = hashes[at]
        return -1

    def run(self, number: int) -> memoryview:
        """The values of key ``number``."""
        offsets = self._value_offsets
        return self.values[offsets[number] : offsets[number + 1]]

    def first(self, key: str, default: int = -1) -> int:
        """The first value of ``key``, or ``default`` when absent."""
        number = self.find(key)
        return default if number < 0 else self.values[self._value_offsets[number]]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.find(key) >= 0

    def __len__(self) -> int:
        return len(self._key_offsets) - 1

    def __iter__(self) -> Iterator[str]:
        offsets, blob = self._key_offsets, self._keys
        for number in range(len(self)):
            yield bytes(blob[offsets[number] : offsets[number + 1]]).decode()
