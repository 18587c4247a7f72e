"""The minimal HTTP/1.1 client against real sockets answering every framing a receiver uses."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from pytest_rt.http11 import MAX_BODY_KEPT, Connection, ProtocolError

HEAD = b"POST /loader HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"


class CannedServer:
    """Accepts one connection; answers each request with the next canned bytes."""

    def __init__(self, answers: list[bytes], close_after: bool = False) -> None:
        self.answers = answers
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            buffer = b""
            for answer in self.answers:
                while b"\r\n\r\n" not in buffer:
                    buffer += conn.recv(65536)
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + rest[:length])
                buffer = rest[length:]
                conn.sendall(answer)
            if self.close_after:
                conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.thread.join(5)
        self.listener.close()


@pytest.fixture
def canned() -> Iterator[type[CannedServer]]:
    servers: list[CannedServer] = []

    class Tracked(CannedServer):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            servers.append(self)

    yield Tracked
    for server in servers:
        server.close()


def connect(server: CannedServer) -> Connection:
    return Connection.open("127.0.0.1", server.port, 5)


def test_it_reads_content_length_answers_and_reuses_the_connection(canned):
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pytest-RT-Batch: 1\r\n\r\nok"
    server = canned([ok, ok])
    conn = connect(server)
    first = conn.post(HEAD, b'{"a":1}', 5)
    second = conn.post(HEAD, b'{"b":2}', 5)
    conn.close()
    assert (first.status, first.body, first.will_close) == (200, b"ok", False)
    assert first.headers["x-pytest-rt-batch"] == "1"
    assert second.status == 200
    assert server.requests[0].endswith(b'Content-Length: 7\r\n\r\n{"a":1}')
    assert server.requests[1].endswith(b'{"b":2}')


def test_it_reads_a_chunked_answer_and_keeps_only_its_start(canned):
    big = b"x" * 2 * MAX_BODY_KEPT
    chunked = (b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n%x\r\n" % len(big) + big + b"\r\n0\r\nTrailer: y\r\n\r\n")
    after = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    server = canned([chunked, after])
    conn = connect(server)
    answer = conn.post(HEAD, b"{}", 5)
    next_answer = conn.post(HEAD, b"{}", 5)  # the chunked body was consumed entirely
    conn.close()
    assert answer.status == 400
    assert answer.body == (b"hello" + big)[:MAX_BODY_KEPT]
    assert next_answer.status == 200


def test_an_answer_without_framing_ends_with_the_connection(canned):
    server = canned([b"HTTP/1.0 503 Busy\r\nRetry-After: 3\r\n\r\ntry later"], close_after=True)
    conn = connect(server)
    answer = conn.post(HEAD, b"{}", 5)
    conn.close()
    assert (answer.status, answer.body, answer.will_close) == (503, b"try later", True)
    assert answer.headers["retry-after"] == "3"


def test_interim_100_answers_are_skipped(canned):
    interim = b"HTTP/1.1 100 Continue\r\n\r\n"
    server = canned([interim + b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"])
    conn = connect(server)
    answer = conn.post(HEAD, b"{}", 5)
    conn.close()
    assert answer.status == 201


def test_connection_close_header_is_reported(canned):
    server = canned([b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"])
    conn = connect(server)
    answer = conn.post(HEAD, b"{}", 5)
    conn.close()
    assert answer.will_close


def test_garbage_is_a_protocol_error(canned):
    server = canned([b"SSH-2.0-OpenSSH_9.2\r\n\r\n"])
    conn = connect(server)
    with pytest.raises(ProtocolError, match="not an HTTP"):
        conn.post(HEAD, b"{}", 5)
    conn.close()


def test_a_peer_closing_without_an_answer_is_a_reset(canned):
    server = canned([b""], close_after=True)
    conn = connect(server)
    with pytest.raises(ConnectionResetError):
        conn.post(HEAD, b"{}", 5)
    conn.close()


def test_pipelined_requests_get_their_answers_in_order(canned):
    answers = [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d" % i for i in range(3)]
    server = canned(answers)
    conn = connect(server)
    got = conn.post_many(HEAD, [b'{"n":0}', b'{"n":1}', b'{"n":2}'], 5)
    conn.close()
    assert [a.body for a in got] == [b"0", b"1", b"2"]
    assert [r[-7:] for r in server.requests] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    assert not conn.broken


def test_a_head_read_again_parses_as_itself_and_a_changed_one_anew(canned):
    """The connection reuses the last head's parse when the same bytes come again: a
    head that differs in any byte (status, length, a header) is parsed for itself."""
    same = b"HTTP/1.1 200 OK\r\nX-Pytest-RT-Batch: 1\r\nContent-Length: 1\r\n\r\n"
    answers = [same + b"a", same + b"b",
               b"HTTP/1.1 503 Busy\r\nRetry-After: 2\r\nContent-Length: 2\r\n\r\nno",
               same + b"c",
               b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nd"]
    server = canned(answers)
    conn = connect(server)
    got = conn.post_many(HEAD, [b"{}"] * 5, 5)
    conn.close()
    assert [(a.status, a.body, a.will_close) for a in got] == [
        (200, b"a", False), (200, b"b", False), (503, b"no", False), (200, b"c", False),
        (200, b"d", True)]
    assert [a.headers.get("retry-after") for a in got] == [None, None, "2", None, None]
    assert [a.headers.get("x-pytest-rt-batch") for a in got] == ["1", "1", None, "1", None]


def test_a_pipelined_exchange_that_breaks_part_way_returns_the_answers_it_got(canned):
    server = canned([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"], close_after=True)
    conn = connect(server)
    got = conn.post_many(HEAD, [b"{}", b"{}", b"{}"], 5)
    conn.close()
    assert [a.status for a in got] == [200]
    assert conn.broken


def test_pipelining_stops_at_an_answer_that_closes_the_connection(canned):
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    server = canned([closing], close_after=True)
    conn = connect(server)
    got = conn.post_many(HEAD, [b"{}", b"{}"], 5)
    conn.close()
    assert len(got) == 1 and got[0].will_close


@pytest.mark.parametrize("size", [b"-1", b"0x5", b"1_0", b""])
def test_a_malformed_chunk_size_is_a_protocol_error(canned, size):
    server = canned([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size
                     + b"\r\nhello\r\n0\r\n\r\n"], close_after=True)
    conn = connect(server)
    with pytest.raises(ProtocolError, match="chunk size"):
        conn.post(HEAD, b"{}", 5)
    conn.close()
