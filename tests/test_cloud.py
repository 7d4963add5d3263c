"""Cloud handoff: the decision in C, the SDK's HTTPS transport, every failure falling back locally.

The clouds here are small OpenAI-compatible servers on loopback made by the test: one that answers,
one that refuses the key, one that never answers, one that sends garbage, and one on https with a
self-signed certificate.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

import cactus
import pytest
from cactus import cloud

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
CLOUD_ANSWER = "The capital of France is Paris."
KEY = "sk-test-0123456789abcdef"


def _completion(content: str) -> dict:
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": "cloud",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class _Handler(http.server.BaseHTTPRequestHandler):
    mode = "ok"
    seen: ClassVar[list] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).seen.append((self.path, self.headers.get("Authorization"), json.loads(body)))
        if self.mode == "hang":
            threading.Event().wait(5)
            return
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            self.send_response(401)
            self.end_headers()
            return
        payload = b"<html>not json" if self.mode == "garbage" else json.dumps(_completion(CLOUD_ANSWER)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _serve(mode: str, tls: ssl.SSLContext | None = None):
    handler = type(f"H_{mode}", (_Handler,), {"mode": mode, "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if tls:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheme = "https" if tls else "http"
    return server, handler, f"{scheme}://127.0.0.1:{server.server_address[1]}/v1"


@pytest.fixture
def cloud_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for var in ("CACTUS_CLOUD_API_KEY", "CACTUS_CLOUD_URL", "CACTUS_CLOUD_MODEL", "CACTUS_CLOUD_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CACTUS_CLOUD_TIMEOUT", "2")

    def configure(url: str, key: str = KEY, ca: str | None = None) -> None:
        monkeypatch.setenv("CACTUS_CLOUD_URL", url)
        monkeypatch.setenv("CACTUS_CLOUD_API_KEY", key)
        monkeypatch.setenv("CACTUS_CLOUD_MODEL", "cloud-model")
        if ca:
            monkeypatch.setenv("CACTUS_CLOUD_CA_BUNDLE", ca)

    return configure


@pytest.fixture(scope="module")
def model(convert_fixture):
    with cactus.Cactus(str(convert_fixture("qwen3", "q8_0"))) as m:
        yield m


def _complete(model: cactus.Cactus, threshold: float, **opts) -> tuple:
    pieces: list = []
    model.reset()
    r = model.complete(MESSAGES, max_tokens=16, temperature=0, cloud_handoff_threshold=threshold,
                       callback=lambda t, i: pieces.append((t, i)), **opts)
    assert r["success"], r["error"]
    return r, pieces


def test_threshold_zero_never_hands_off(model, cloud_env) -> None:
    server, handler, url = _serve("ok")
    cloud_env(url)
    r, _ = _complete(model, 0.0)
    assert r["cloud_handoff"] is False and "cloud_error" not in r
    assert handler.seen == []
    server.shutdown()


def test_threshold_one_always_hands_off(model, cloud_env) -> None:
    server, handler, url = _serve("ok")
    cloud_env(url)
    r, pieces = _complete(model, 1.0)
    assert r["cloud_handoff"] is True and r["response"] == CLOUD_ANSWER
    assert 0.0 <= r["confidence"] < 1.0  # still the local figure
    # local decoding stopped at the first token's verdict
    assert r["decode_tokens"] == 1
    path, auth, body = handler.seen[0]
    assert path == "/v1/chat/completions" and auth == f"Bearer {KEY}"
    assert body["messages"] == MESSAGES and body["model"] == "cloud-model"
    # the callback saw the local piece(s), then the cloud's answer as one piece
    assert pieces[-1] == (CLOUD_ANSWER, 0xFFFFFFFF)
    server.shutdown()


@pytest.mark.parametrize("mode, needle", [("down", "unreachable"), ("badkey", "401"), ("hang", "did not answer"),
                                          ("garbage", "not JSON")])
def test_cloud_failures_fall_back_locally(model, cloud_env, mode: str, needle: str) -> None:
    if mode == "down":
        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
        cloud_env(url)
        server = None
    else:
        server, _, url = _serve("hang" if mode == "hang" else "garbage" if mode == "garbage" else "ok")
        cloud_env(url, key="sk-wrong-key-xxxx" if mode == "badkey" else KEY)
    local, _ = _complete(model, 0.0)
    r, pieces = _complete(model, 1.0)
    assert r["cloud_handoff"] is False
    assert needle in r["cloud_error"]
    assert KEY not in json.dumps(r) and "sk-wrong" not in json.dumps(r)
    assert r["response"] == local["response"]  # the local answer, completed
    assert "".join(p for p, _ in pieces) == r["response"]
    if server:
        server.shutdown()


def test_no_key_configured(model, cloud_env) -> None:
    r, _ = _complete(model, 1.0)
    assert r["cloud_handoff"] is False and "no cloud API key" in r["cloud_error"]


def _self_signed(tmp: Path) -> tuple:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_certificate_is_checked(model, cloud_env, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server, handler, url = _serve("ok", tls)
    cloud_env(url)
    r, _ = _complete(model, 1.0)
    assert r["cloud_handoff"] is False and "certificate" in r["cloud_error"]
    assert handler.seen == []  # nothing was sent over the untrusted connection
    cloud_env(url, ca=str(cert))
    r, _ = _complete(model, 1.0)
    assert r["cloud_handoff"] is True and r["response"] == CLOUD_ANSWER
    server.shutdown()


def test_auth_cli_writes_0600_and_masks(tmp_path: Path) -> None:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path))
    env.pop("CACTUS_CLOUD_API_KEY", None)

    def run(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "cactus", "auth", *args], env=env, capture_output=True,
                             text=True, check=True)
        return out.stdout + out.stderr

    said = run("login", "--key", KEY, "--url", "https://example.invalid/v1", "--model", "m")
    path = tmp_path / "cactus" / "cloud.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["api_key"] == KEY
    status = run("status")
    assert KEY not in said and KEY not in status and cloud.mask(KEY) in status
    assert "https://example.invalid/v1" in status
    run("logout")
    assert not path.exists()


def test_cactus_serve_as_the_cloud(model, cloud_env, convert_fixture) -> None:
    """Any OpenAI-compatible endpoint is a valid cloud, including our own server: the handed-off
    answer is exactly what `cactus serve` answers for the same conversation."""
    from .test_server import Server

    cloud_model = convert_fixture("llama", "q8_0")  # a different model than the local one
    server = Server([str(cloud_model), "--api-key", KEY, "--name", "cloud-llama"])
    try:
        cloud_env(server.url + "/v1")
        os.environ["CACTUS_CLOUD_MODEL"] = "cloud-llama"  # restored by cloud_env's monkeypatch
        direct = server.client(KEY).chat.completions.create(model="cloud-llama", messages=MESSAGES, max_tokens=16,
                                                         temperature=0, top_p=0.95)
        r, _ = _complete(model, 1.0)
        assert r["cloud_handoff"] is True and "cloud_error" not in r
        assert r["response"] == direct.choices[0].message.content
        cloud_env(server.url + "/v1", key="sk-not-the-key")
        r, _ = _complete(model, 1.0)
        assert r["cloud_handoff"] is False and "401" in r["cloud_error"]
    finally:
        server.stop()
