"""HTTP as raw bytes on 127.0.0.1, for what ``requests`` will not do: half a request, a body never sent."""

from __future__ import annotations

import socket
import time


def head(method: str, path: str, port: int, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer_before_body(port: int, request_head: bytes, timeout: float = 10.0) -> tuple[int, bytes, bool]:
    """Send only the head of a request and read what comes back without sending its body.

    Returns the status, the whole answer and whether the server then closed the connection.
    A server that waits for the body first makes this time out (``socket.timeout``).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request_head)
        answer = b""
        closed = False
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            answer += chunk
            if _complete(answer):
                sock.settimeout(2.0)
                try:
                    closed = sock.recv(1) == b""
                except socket.timeout:
                    closed = False
                break
    return status_of(answer), answer, closed


def status_of(answer: bytes) -> int:
    parts = answer.split(b"\r\n", 1)[0].split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def _complete(answer: bytes) -> bool:
    head_end = answer.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    for line in answer[:head_end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(answer) - head_end - 4 >= int(value.strip())
    return False


def wait_closed(sock: socket.socket, limit: float) -> tuple[float, bytes]:
    """Seconds until the server closed ``sock`` (at most ``limit``), and what it sent before."""
    start = time.monotonic()
    sock.settimeout(limit)
    received = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return time.monotonic() - start, received
