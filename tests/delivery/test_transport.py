"""HTTPS verified by default, a CA bundle, --rt-insecure; HTTP(S)_PROXY and NO_PROXY."""

from __future__ import annotations

import base64
import json
import select
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading
import time

import pytest

from .helpers import assert_whole_stream, journals, module_with, nodeids_of, replay

PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy",
                   "NO_PROXY", "all_proxy", "ALL_PROXY")


@pytest.fixture
def no_proxy_env(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_http_proxy_is_used_for_a_remote_host(rt, receiver, no_proxy_env):
    no_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{receiver.port}")
    rt.url = "http://receiver.example:8080/loader"  # only the proxy knows where that is
    rt.pytester.makepyfile(test_mod=module_with(2))
    rt.run("--rt-flush-timeout", "5").assert_outcomes(passed=2)
    assert {h["Host"] for h in receiver.headers} == {"receiver.example:8080"}
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 2))


def test_no_proxy_is_honoured(rt, receiver, no_proxy_env, dead_url):
    no_proxy_env.setenv("HTTP_PROXY", dead_url.rsplit("/", 1)[0])
    no_proxy_env.setenv("NO_PROXY", "127.0.0.1")
    rt.pytester.makepyfile(test_mod=module_with(2))
    rt.run("--rt-flush-timeout", "5").assert_outcomes(passed=2)
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 2))


# -- HTTPS -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (made with the openssl command)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a certificate")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def https_receiver(receiver, certificate, no_proxy_env):
    """The recording receiver, speaking TLS with the self-signed certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server = receiver._server
    server.socket = context.wrap_socket(server.socket, server_side=True)
    receiver.https_url = receiver.url.replace("http://", "https://")
    return receiver


def test_https_is_verified_by_default_and_says_why_it_failed(rt, https_receiver):
    rt.url = https_receiver.https_url
    rt.pytester.makepyfile(test_mod=module_with(1))
    started = time.monotonic()
    result = rt.run("--rt-flush-timeout", "30")
    assert time.monotonic() - started < 15  # an untrusted certificate is not waited out
    result.assert_outcomes(passed=1)
    assert https_receiver.events == []
    result.stdout.fnmatch_lines(["*TLS certificate not trusted (self*signed certificate)*",
                                 "*events spooled; send them with: pytest-rt replay*"])
    assert journals(rt.pytester.path / ".spool")


def test_a_ca_bundle_makes_the_certificate_trusted(rt, https_receiver, certificate):
    rt.url = https_receiver.https_url
    rt.pytester.makepyfile(test_mod=module_with(2))
    # One argument: a separate path would take part in choosing the inner rootdir.
    rt.run(f"--rt-ca-bundle={certificate[0]}").assert_outcomes(passed=2)
    assert_whole_stream(https_receiver.unique(), nodeids_of("test_mod", 2))


def test_insecure_sends_without_verifying_and_warns(rt, https_receiver):
    rt.url = https_receiver.https_url
    rt.pytester.makepyfile(test_mod=module_with(2))
    result = rt.run("--rt-insecure")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*--rt-insecure: HTTPS certificates*NOT verified*"])
    assert_whole_stream(https_receiver.unique(), nodeids_of("test_mod", 2))


def test_credentials_in_the_url_are_sent_as_basic_auth_and_never_printed(rt, receiver):
    rt.url = receiver.url.replace("http://", "http://rt-user:pa%40ss@")
    rt.pytester.makepyfile(test_mod=module_with(1))
    result = rt.run()
    result.assert_outcomes(passed=1)
    expected = "Basic " + base64.b64encode(b"rt-user:pa@ss").decode()
    assert {h["Authorization"] for h in receiver.headers} == {expected}
    assert "pa%40ss" not in result.stdout.str()
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 1))


def test_proxy_credentials_are_sent_to_the_proxy(rt, receiver, no_proxy_env):
    no_proxy_env.setenv("HTTP_PROXY", f"http://px:s3cret@127.0.0.1:{receiver.port}")
    rt.url = "http://receiver.example:8080/loader"
    rt.pytester.makepyfile(test_mod=module_with(1))
    result = rt.run("--rt-flush-timeout", "5")
    result.assert_outcomes(passed=1)
    expected = "Basic " + base64.b64encode(b"px:s3cret").decode()
    assert {h["Proxy-Authorization"] for h in receiver.headers} == {expected}
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 1))


def test_a_proxy_that_wants_credentials_keeps_the_events(rt, receiver, no_proxy_env):
    receiver.behaviour.fail_first = 1000
    receiver.behaviour.fail_status = 407
    no_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{receiver.port}")
    rt.url = "http://receiver.example:8080/loader"
    rt.pytester.makepyfile(test_mod=module_with(1))
    result = rt.run("--rt-flush-timeout", "5")
    result.assert_outcomes(passed=1)
    assert receiver.requests == 1
    result.stdout.fnmatch_lines(["*(407): delivery stopped, events kept for replay",
                                 "*4 events spooled*"])


@pytest.fixture
def connect_proxy():
    """A minimal HTTPS (CONNECT) proxy on a free port; `.heads` holds each CONNECT request."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = self.request.recv(4096)
                if not chunk:
                    return
                head += chunk
            server.heads.append(head.decode("latin-1"))
            host, port = head.split()[1].decode().rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=10) as upstream:
                self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                pipe(self.request, upstream)

    def pipe(a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        while True:
            ready, _, _ = select.select(list(peers), [], [], 10)
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                peers[sock].sendall(data)
            if not ready:
                return

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.heads = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_https_goes_through_a_connect_proxy_with_its_credentials(
        rt, https_receiver, certificate, connect_proxy, no_proxy_env):
    no_proxy_env.setenv("HTTPS_PROXY", f"http://px:s3cret@127.0.0.1:{connect_proxy.server_address[1]}")
    rt.url = https_receiver.https_url
    rt.pytester.makepyfile(test_mod=module_with(2))
    rt.run(f"--rt-ca-bundle={certificate[0]}").assert_outcomes(passed=2)
    assert_whole_stream(https_receiver.unique(), nodeids_of("test_mod", 2))
    assert connect_proxy.heads
    head = connect_proxy.heads[0]
    assert head.startswith(f"CONNECT 127.0.0.1:{https_receiver.port} ")
    assert "Proxy-Authorization: Basic " + base64.b64encode(b"px:s3cret").decode() in head
    assert all("Proxy-Authorization" not in h for h in https_receiver.headers)


# -- replay reaches what the run reached ---------------------------------------------------

def _spool_it(rt, receiver, *args):
    """A run whose receiver refuses everything (503): every event left in the journal."""
    receiver.behaviour.fail_first = 10_000
    rt.pytester.makepyfile(test_mod=module_with(2))
    rt.run("--rt-flush-timeout", "0.5", *args).assert_outcomes(passed=2)
    receiver.behaviour.fail_first = 0
    [journal] = journals(rt.pytester.path / ".spool")
    return journal


def test_replay_reaches_an_https_receiver_with_the_runs_ca_bundle(rt, https_receiver,
                                                                   certificate):
    rt.url = https_receiver.https_url
    journal = _spool_it(rt, https_receiver, f"--rt-ca-bundle={certificate[0]}")
    done = replay(str(journal))  # no --ca-bundle: the journal knows it
    assert done.returncode == 0, done.stdout + done.stderr
    assert_whole_stream(https_receiver.unique(), nodeids_of("test_mod", 2))


def test_replay_to_another_url_does_not_take_the_runs_insecure_flag(rt, https_receiver):
    rt.url = https_receiver.https_url
    journal = _spool_it(rt, https_receiver, "--rt-insecure")
    elsewhere = https_receiver.https_url.replace("127.0.0.1", "localhost")
    done = replay(str(journal), "--url", elsewhere, "--timeout", "5")
    assert done.returncode == 1
    assert "TLS certificate not trusted" in done.stdout
    assert https_receiver.events == []
    done = replay(str(journal), "--url", elsewhere, "--insecure")  # said on purpose: sent
    assert done.returncode == 0, done.stdout + done.stderr
    assert_whole_stream(https_receiver.unique(), nodeids_of("test_mod", 2))


def test_the_journal_records_header_names_and_timeout_but_no_secret(rt, receiver):
    receiver.token = "tok-3141"
    journal = _spool_it(rt, receiver, "--rt-header", "X-Api-Key: key-2718",
                        "--rt-token", "tok-3141", "--rt-timeout", "2.5")
    text = journal.read_text()
    assert "key-2718" not in text and "tok-3141" not in text
    header = json.loads(text.splitlines()[0])
    assert header["connection"]["header_names"] == ["X-Api-Key"]
    assert header["connection"]["timeout"] == 2.5

    missing = replay(str(journal), "--timeout", "3")  # no token: 401, and a hint
    assert missing.returncode == 1
    assert "pass it again with --header 'X-Api-Key: ...'" in missing.stdout
    done = replay(str(journal), "--header", "X-Api-Key: key-2718", "--token", "tok-3141")
    assert done.returncode == 0, done.stdout + done.stderr
    assert {h["X-Api-Key"] for h in receiver.headers} == {"key-2718"}


def test_a_malformed_replay_header_is_refused_without_showing_it(rt, receiver):
    journal = _spool_it(rt, receiver)
    done = replay(str(journal), "--header", "no colon secret-value")
    assert done.returncode == 2
    assert "--header" in done.stderr and "secret-value" not in done.stderr
