"""Start-up and install-time execution: .pth, sitecustomize, setup.py, import time, console scripts."""

from __future__ import annotations

from detectors.facts import Severity
from mirror.content import Artifact
from mirror.content.hooks import entry_points, import_time_behaviours, pth_behaviours, setup_py_behaviours

from tests.content.helpers import HARMLESS, detectors, raw_wheel, scan, sdist, wheel


def _ep_wheel(name: str, version: str, text: bytes) -> Artifact:
    filename, data = raw_wheel(name, version, files={f"{name}/__init__.py": b"A = 1\n", f"{name}-{version}.dist-info/entry_points.txt": text})
    return Artifact(filename, data, provenance_known=False)

PTH_LAUNCHER = b"import os, base64; exec(base64.b64decode('cHJpbnQoImhhcm1sZXNzIik='))\n"


def test_pth_lines_are_judged_like_site_does():
    found = pth_behaviours("x.pth", b"/some/path\nimport\tfoo\nimportfoo\n#import bar\nimport os; os.system('echo hi')\n")
    assert [(b.behaviour, b.severity) for b in found] == [("pth-exec", "high"), ("pth-exec", "critical")]


def test_pth_lines_written_by_tools_are_low():
    [found] = pth_behaviours("_virtualenv.pth", b"import _virtualenv\n")
    assert found.behaviour == "pth-exec-known" and found.severity == "low"


def test_pth_launcher_at_wheel_root_is_critical(tmp_path):
    report = scan(wheel(tmp_path, "demo", "1.0", files={"demo_init.pth": PTH_LAUNCHER}))
    [found] = [f for f in report.findings if f.detector == "content.pth-exec"]
    assert found.severity == Severity.CRITICAL
    assert found.evidence["file"] == "demo_init.pth"
    assert "exec(base64.b64decode" in found.evidence["excerpt"]


def test_pth_deeper_in_the_package_is_not_a_startup_hook(tmp_path):
    report = scan(wheel(tmp_path, "demo", "1.0", files={"demo/data/paths.pth": b"import foo\n"}))
    assert "content.pth-exec" not in detectors(report)


def test_sitecustomize_at_site_root(tmp_path):
    report = scan(wheel(tmp_path, "demo", "1.0", files={"sitecustomize.py": HARMLESS}))
    [found] = [f for f in report.findings if f.detector == "content.startup-module"]
    assert found.severity == Severity.HIGH and found.evidence["file"] == "sitecustomize.py"


SETUP_HOOK = b'''
import base64
from setuptools import setup
from setuptools.command.install import install

class Install(install):
    def run(self):
        exec(base64.b64decode("cHJpbnQoImhhcm1sZXNzIik="))
        install.run(self)

setup(name="demo", version="1.0", cmdclass={"install": Install})
'''


def test_setup_py_install_hook_with_decoded_exec(tmp_path):
    report = scan(sdist(tmp_path, "demo", "1.0", files={"setup.py": SETUP_HOOK}))
    found = {f.detector: f for f in report.findings}
    assert found["content.exec-decoded"].severity >= Severity.HIGH
    assert found["content.exec-decoded"].evidence["file"] == "demo-1.0/setup.py"
    assert "content.setup-command-override" in found


def test_setup_py_network_and_processes():
    data = b"import subprocess, urllib.request\nurllib.request.urlopen('http://x')\nsubprocess.check_call(['ls'])\n"
    kinds = {b.behaviour: b.severity for b in setup_py_behaviours("setup.py", data)}
    assert kinds == {"setup-network": "high", "setup-process": "medium"}


def test_setup_py_build_py_override_without_processes_is_medium():
    data = b"from setuptools.command.build_py import build_py\nclass B(build_py):\n  pass\nsetup(cmdclass={'build_py': B})\n"
    [b] = setup_py_behaviours("setup.py", data)
    assert (b.behaviour, b.severity, b.confidence) == ("setup-command-override", "medium", "low")


def test_import_time_execution_ignores_functions_and_main_guard():
    data = b"import os, threading\ndef f():\n  os.system('x')\nif __name__ == '__main__':\n  os.system('y')\n"
    assert import_time_behaviours("m.py", data) == []
    data += b"try:\n  os.system('echo at import')\nexcept Exception:\n  pass\nthreading.Thread(target=f).start()\n"
    kinds = {b.behaviour for b in import_time_behaviours("m.py", data)}
    assert kinds == {"import-time-process", "import-time-thread"}


def test_console_script_shadowing_common_command(tmp_path):
    report = scan(_ep_wheel("demo", "1.0", b"[console_scripts]\npip = demo:main\ndemo = demo:main\n"))
    [found] = [f for f in report.findings if f.detector == "content.console-script-shadowing"]
    assert found.severity == Severity.HIGH and "pip = demo:main" in found.evidence["excerpt"]


def test_own_command_is_not_shadowing(tmp_path):
    report = scan(_ep_wheel("pip", "1.0", b"[console_scripts]\npip = pip:main\npip3 = pip:main\n"))
    assert "content.console-script-shadowing" not in detectors(report)


def test_new_and_changed_entry_points_against_previous(tmp_path):
    old = scan(_ep_wheel("demo", "1.0", b"[console_scripts]\ndemo = demo:main\n"))
    new = scan(_ep_wheel("demo", "1.1", b"[console_scripts]\ndemo = demo.evil:main\ndemo-x = demo:x\n"),
               previous=old.inventory)
    found = {f.detector: f for f in new.findings}
    assert found["content.entry-point-changed"].evidence["new_since"] == "1.0"
    assert found["content.entry-point-new"].severity == Severity.LOW


def test_entry_points_parse_tolerates_garbage():
    assert entry_points(b"not an ini file [") == {}
    assert entry_points(b"[console_scripts]\na = b:c\n") == {"console_scripts": {"a": "b:c"}}
