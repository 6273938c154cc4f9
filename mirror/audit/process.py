"""The scheduled re-audit of a server, run in a child process of its own.

A re-audit fetches and parses every cached project's page and JSON again and
rebuilds the pages whose decisions changed: the work the page process keeps
out of the server (``mirror.serving.page_process``), for every project at
once; on a server thread it would leave the server's heap as big as
building those pages there did.  The child gets the server's settings (a pickle on its
input: the server is the trusted side), runs one audit under the lease the
server's scheduler holds, and exits; the kernel kills it if the server dies.
The scheduler's thread waits for it, so one audit per interval still holds.

Run as ``python -m mirror.audit.process PARENT_PID HOLDER``: the child's side.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys

from mirror.audit.runner import Auditor
from mirror.config import Settings
from mirror.container import Services
from mirror.frames import die_with_parent

log = logging.getLogger(__name__)


def run_audit_process(settings: Settings, holder: str) -> int:
    """Run one scheduled audit in a child process and wait for it; its exit status (0: it ran)."""
    proc = subprocess.Popen([sys.executable, "-m", __name__, str(os.getpid()), holder], stdin=subprocess.PIPE,
                            close_fds=True)
    assert proc.stdin is not None
    with proc.stdin:
        proc.stdin.write(pickle.dumps(settings, protocol=pickle.HIGHEST_PROTOCOL))
    status = proc.wait()
    if status != 0:
        log.warning("audit: the audit process ended with status %s", status)
    return status


def main() -> int:
    die_with_parent(int(sys.argv[1]))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings: Settings = pickle.load(sys.stdin.buffer)
    services = Services(settings)
    try:
        Auditor(services).run(trigger="scheduled", holder=sys.argv[2])
    finally:
        services.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
