"""TLS on both receivers: the official OTLP exporters send over TLS with a trusted certificate and are
refused a plaintext handshake; auth rides on top."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

from .conftest import query, send_spans, wait_for

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@pytest.fixture
def cert(tmp_path):
    key, crt = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(crt),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return str(crt), str(key)


def _count(c) -> int:
    return query(c, "SELECT count() FROM lightspan.otel_traces FINAL")[0][0]


def test_grpc_and_http_over_tls_with_auth(start_collector, cert, monkeypatch):
    # requests prefers these over the exporter's session-level `verify` (certificate_file)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    crt, key = cert
    c = start_collector(tls_cert=crt, tls_key=key, auth_token="tok")
    with open(crt, "rb") as f:
        from grpc import ssl_channel_credentials

        creds = ssl_channel_credentials(f.read())
    send_spans(
        GrpcExporter(
            endpoint=f"localhost:{c.grpc_port}", credentials=creds, headers={"authorization": "Bearer tok"}
        ),
        3,
    )
    send_spans(
        HttpExporter(
            endpoint=f"https://localhost:{c.http_port}/v1/traces",
            certificate_file=crt,
            headers={"authorization": "Bearer tok"},
        ),
        4,
    )
    assert wait_for(lambda: _count(c) == 7)


def test_plaintext_client_is_refused_by_a_tls_receiver(start_collector, cert):
    import urllib.error
    import urllib.request

    crt, key = cert
    c = start_collector(tls_cert=crt, tls_key=key)
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        urllib.request.urlopen(f"http://127.0.0.1:{c.http_port}/healthz", timeout=5).read()
    send_spans(GrpcExporter(endpoint=f"localhost:{c.grpc_port}", insecure=True, timeout=2), 2)
    assert _count(c) == 0
