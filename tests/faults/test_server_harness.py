"""The harness that starts real servers must talk to the server it started, never to a neighbour."""

from __future__ import annotations

import http.server
import threading

import requests

from tests.faults import serving
from tests.faults.serving import ServerProcess, write_config


class _Impostor(http.server.BaseHTTPRequestHandler):
    """Another test's server: ready, and knows nothing of this test's projects."""

    def do_GET(self) -> None:
        body = b"impostor"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_a_port_taken_before_the_server_binds_it_is_retried_on_another(tmp_path, monkeypatch) -> None:
    impostor = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Impostor)
    threading.Thread(target=impostor.serve_forever, daemon=True).start()
    taken = impostor.server_address[1]
    ports = iter([taken])
    real_free_port = serving.free_port
    monkeypatch.setattr(serving, "free_port", lambda: next(ports, None) or real_free_port())
    config = write_config(tmp_path / "mirror.toml", {
        "server": {"host": "127.0.0.1"},
        "database": {"url": f"sqlite:///{tmp_path / 'mirror.db'}"},
        "storage": {"path": str(tmp_path / "storage")},
        "upstream": {"url": "http://127.0.0.1:9/simple/"},
    })
    server = ServerProcess(config, tmp_path / "server.log")
    try:
        assert server.port == taken  # the race, made certain
        server.start()
        assert server.port != taken
        assert requests.get(server.url + "readyz", timeout=10).text != "impostor"
        assert "address already in use" in server.output()
    finally:
        server.stop()
        impostor.shutdown()
