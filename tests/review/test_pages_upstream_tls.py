""""Upstream says" over real TLS with a private CA: the review client trusts the configured CA bundle.

The page's client used to build its own session, which verified against the
default trust store: behind a TLS-intercepting proxy or a private upstream
every project page said "upstream unreachable: SSLError" although screening
(which uses the configured ``ca_bundle``) reached upstream fine.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mirror.review.upstream_info import UpstreamInfoCache
from mirror.upstream.client import UpstreamClient
from mirror.upstream.netguard import NetGuard, guarded_session, url_host_entry

DOCUMENT = {"info": {"summary": "seen over TLS", "author": "Ann Author", "home_page": "https://example.invalid/",
                     "project_urls": {"Source": "https://example.invalid/src"}}}


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1 signed by it."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "IndexGuard test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(1).not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_path, cert_path, key_path


class _Json(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        body = json.dumps(DOCUMENT).encode() if self.path == "/pypi/tls-project/json" else b"{}"
        self.send_response(200 if self.path == "/pypi/tls-project/json" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def tls_upstream(tmp_path):
    ca_path, cert_path, key_path = _certificates(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Json)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/simple/", ca_path
    server.shutdown()
    server.server_close()


def _services(url: str, verify: str | bool) -> SimpleNamespace:
    """What ``Services`` gives the review pages: the upstream client whose session verifies with ``verify``."""
    guard = NetGuard({url_host_entry(url)}, allow_private=True)
    session = guarded_session(guard)
    session.verify = verify
    client = UpstreamClient(url, timeout=5, max_page_bytes=1 << 20, guard=guard, session=session)
    return SimpleNamespace(upstream=client, clock=lambda: dt.datetime.now(dt.timezone.utc))


def test_upstream_info_trusts_the_configured_ca_bundle(tls_upstream) -> None:
    url, ca_path = tls_upstream
    info = UpstreamInfoCache.for_services(_services(url, str(ca_path))).get("tls-project")
    assert info.error is None, info.error
    assert info.fields["summary"] == "seen over TLS" and info.project_urls == {"Source": "https://example.invalid/src"}
    assert info.origin == "live" and info.seen_at is not None


def test_without_the_ca_the_same_upstream_is_refused(tls_upstream) -> None:
    """The control: a session on the default trust store (what the page used to build) cannot verify it."""
    url, _ = tls_upstream
    info = UpstreamInfoCache.for_services(_services(url, True)).get("tls-project")
    assert info.error is not None and "SSL" in info.error
