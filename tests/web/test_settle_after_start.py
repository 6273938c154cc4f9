"""A server process freezes what start-up built out of the collector's walks once its corpus is loaded; other apps do not.

Each case runs in a process of its own: a freeze is for the life of the process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mirror.memory import GC_THRESHOLD

SCRIPT = textwrap.dedent("""
    import gc, json, sys, time
    from pathlib import Path
    from starlette.testclient import TestClient
    from mirror.app import create_app
    from tests.support.running import mirror_settings

    tmp = Path(sys.argv[1])
    settings = mirror_settings(upstream_url="http://127.0.0.1:9/simple/", database_url=f"sqlite:///{tmp}/db.sqlite",
                               storage=tmp / "data")
    app = create_app(settings, server_process=sys.argv[2] == "server")
    with TestClient(app):
        deadline = time.monotonic() + 60
        while app.state.services.detectors._corpus is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the freeze follows the load on the same thread
        print(json.dumps({"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()[0]}))
""")


@pytest.mark.parametrize("kind", ["server", "library"])
def test_only_a_server_process_settles_after_start(tmp_path: Path, kind: str) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), kind], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    if kind == "server":
        assert seen["frozen"] > 10_000 and seen["threshold"] == GC_THRESHOLD
    else:
        assert seen == {"frozen": 0, "threshold": 700}
