"""Pickles found by their bytes: globals against the allow list, broken streams, first pickle, admin allow."""

from __future__ import annotations

import collections
import gzip
import io
import os
import pickle
import zipfile

from detectors.facts import Severity
from mirror.content import Artifact, ScanConfig, scan_release
from mirror.content.pickles import DEFAULT_ALLOW, find_pickles

from tests.content.helpers import detectors, raw_wheel


class _Reduce:
    """Pickles to a call of os.system; the tests only ever read its opcodes, never load it."""

    def __reduce__(self):
        return (os.system, ("echo harmless",))


EVIL = pickle.dumps(_Reduce(), protocol=2)
DATA = pickle.dumps({"weights": [1.0, 2.0], "order": collections.OrderedDict(a=1)}, protocol=4)


def _find(data: bytes, allow=DEFAULT_ALLOW):
    return find_pickles(data, allow=allow, max_pickle_bytes=1 << 20, max_nested_bytes=1 << 20)


def _torch_zip(payload: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("model/data.pkl", payload)
        archive.writestr("model/version", "3\n")
    return out.getvalue()


def test_raw_pickle_globals_and_allow_list():
    [report] = _find(DATA)
    assert report.globals == ["collections.OrderedDict"] and not report.unlisted and report.complete
    [report] = _find(EVIL)
    assert report.dangerous == [f"{os.system.__module__}.system"]


def test_found_by_bytes_not_extension_in_wrappers():
    assert _find(_torch_zip(EVIL))[0].location == "model/data.pkl"
    assert _find(gzip.compress(EVIL))[0].location == "gzip"
    assert _find(pickle.dumps(_Reduce(), protocol=0))[0].dangerous
    assert _find(b"just text.") == [] and _find(b"PK\x03\x04 not a zip") == []


def test_broken_stream_is_reported_even_without_globals():
    [report] = _find(b"\x80\x04\x95garbage that is no pickle")
    assert not report.complete
    [report] = _find(EVIL[:-3])
    assert not report.complete and report.dangerous


def test_extra_allow_list():
    custom = pickle.dumps(ValueError("x"), protocol=4)
    assert _find(custom)[0].unlisted == ["builtins.ValueError"]
    assert _find(custom, DEFAULT_ALLOW | {"builtins.ValueError"})[0].unlisted == []


def _wheel_with(files):
    name, data = raw_wheel(files={"demo/__init__.py": b"A = 1\n", **files})
    return Artifact(name, data, provenance_known=False)


def test_reduce_calling_os_system_is_critical():
    report = scan_release([_wheel_with({"demo/model.bin": EVIL})], None)
    [found] = [f for f in report.findings if f.detector == "content.pickle-dangerous-global"]
    assert found.severity == Severity.CRITICAL and found.evidence["file"] == "demo/model.bin"
    assert "content.first-pickle" in detectors(report)


def test_broken_pickle_stream_is_high():
    report = scan_release([_wheel_with({"demo/model.pt": _torch_zip(DATA[:-4])})], None)
    [found] = [f for f in report.findings if f.detector == "content.pickle-broken-stream"]
    assert found.severity == Severity.HIGH


def test_first_pickle_ever_only_once():
    first = scan_release([_wheel_with({"demo/w.pkl": DATA})], None)
    assert "content.first-pickle" in detectors(first)
    second = scan_release([_wheel_with({"demo/w.pkl": DATA, "demo/v.pkl": DATA + b""})], first.inventory)
    assert "content.first-pickle" not in detectors(second)


def test_previous_without_pickles_then_first_pickle_is_new_since():
    before = scan_release([_wheel_with({})], None)
    after = scan_release([_wheel_with({"demo/w.pkl": DATA})], before.inventory)
    [found] = [f for f in after.findings if f.detector == "content.first-pickle"]
    assert found.evidence["new_since"] == "1.0" and found.evidence["file"] == "demo/w.pkl"


def test_admin_allowed_test_data_is_inventoried_not_a_finding():
    config = ScanConfig(allowed_pickle_paths={"demo": frozenset({"demo/tests/evil.pkl"})})
    report = scan_release([_wheel_with({"demo/tests/evil.pkl": EVIL})], None, config)
    assert not {"content.pickle-dangerous-global", "content.first-pickle"} & detectors(report)
    [artifact] = report.inventory["artifacts"]
    assert any(b["behaviour"] == "pickle" for b in artifact["files"]["demo/tests/evil.pkl"]["behaviours"])


def test_project_may_pickle_its_own_classes():
    own = b"\x80\x02cdemo.models\nModel\nq\x00)\x81q\x01."
    report = scan_release([_wheel_with({"demo/models.py": b"class Model: pass\n", "demo/m.pkl": own})], None)
    assert "content.pickle-unlisted-global" not in detectors(report)


def test_compressed_pickles_are_inflated_within_bounds():
    """A tiny .pkl.gz costs what it inflates to, not the nested limit (GzipFile.read(n) reserves n bytes)."""
    import bz2
    import lzma
    import tracemalloc
    import zlib

    for packed in (gzip.compress(EVIL), gzip.compress(DATA) + b"\0" * 4 + gzip.compress(EVIL), bz2.compress(EVIL),
                   lzma.compress(EVIL), zlib.compress(EVIL)):
        tracemalloc.start()
        try:
            reports = find_pickles(packed, allow=DEFAULT_ALLOW, max_pickle_bytes=1 << 28, max_nested_bytes=1 << 28)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 16 << 20
        assert reports and reports[0].dangerous, packed[:4]
    # Cut inside its member, or followed by junk: pickle.load would run what inflates before the reader
    # complains, so that is checked.
    for damaged in (gzip.compress(EVIL)[:-12], gzip.compress(EVIL) + b"junk"):
        [report] = _find(damaged)
        assert report.location == "gzip" and report.dangerous


def test_a_stream_larger_than_the_nested_limit_is_not_fully_checked():
    big = pickle.dumps(list(range(100_000)), protocol=4) + EVIL
    [report] = find_pickles(gzip.compress(big), allow=DEFAULT_ALLOW, max_pickle_bytes=1 << 28, max_nested_bytes=1 << 16)
    assert report.location == "gzip" and report.truncated and not report.complete
