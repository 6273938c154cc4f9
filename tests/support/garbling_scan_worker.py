"""A scan worker gone wrong: it answers every job with a frame that is not JSON (run as ``python -m``)."""

from __future__ import annotations

import pickle
import sys

from mirror.frames import HEAD

if __name__ == "__main__":
    incoming, outgoing = sys.stdin.buffer, sys.stdout.buffer
    while len(head := incoming.read(HEAD.size)) == HEAD.size:
        job_id, size = HEAD.unpack(head)
        if "scan" in pickle.loads(incoming.read(size)):
            outgoing.write(HEAD.pack(job_id, 5) + b"\x80\x04not")
            outgoing.flush()
