"""No receiver can trick the HTTP/1.1 client: h11 is the reference, raw sockets the wire.

Three layers:

- a differential test: hypothesis builds valid answers, h11 (server side)
  serializes them, a raw-socket server sends them, possibly cut into pieces,
  and the client must read exactly what h11 (client side) reads from the same
  bytes: status, headers, the start of the body, whether the connection closes;
- a fuzz test of raw bytes (garbage, truncations, extra or doubled answers,
  mutated framing): the client either returns answers h11 also reads as
  complete and well framed, with the same status, or raises an OSError, within
  the timeout; never anything else;
- one named regression test per hostile case of issue 7.

An answer counts only when it is complete, well framed, and answers exactly its
request: a byte already waiting where no answer is owed makes the exchange
count for nothing, because from then on answers can no longer be matched to
requests (a stray 200 would acknowledge an event the receiver refused).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import h11
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from hostile import H11_LIMIT, HostileServer, Reply, hostile, wait_until
from pytest_rt import http11
from pytest_rt.http11 import MAX_BODY_KEPT, MAX_HEAD, Connection, ProtocolError, Response
from pytest_rt.transport import HttpTarget, Transport, TransportError

HEAD = b"POST /loader HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
# The cap on what one answer's body may make the client read (the rewrite adds it).
MAX_BODY: int = getattr(http11, "MAX_BODY", 1 << 20)
SLACK = 2.0  # seconds past a timeout we tolerate: thread hand-offs on 2 loaded cores
# A client that stops reading still finds the kernel's socket buffers full (several MiB on
# loopback): what the server managed to send is bounded by the cap plus those.
SOCKET_BUFFERS = 16 << 20
# No shrinking: each failing example may cost a timeout, and shrinking runs hundreds of them.
# Hypothesis still prints the failing example as it was generated.
FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False,
                suppress_health_check=list(HealthCheck))
DIFF = settings(FUZZ, max_examples=50)


# -- the reference: h11's client side, fed the same bytes ------------------------------------

@dataclass(frozen=True)
class Parsed:
    status: int
    headers: dict[str, str]
    body: bytes  # the start the client keeps
    will_close: bool


@dataclass(frozen=True)
class Reference:
    answers: list[Parsed]  # the complete, well-framed answers, in order
    error: bool  # h11 found the bytes malformed after those answers
    trailing: int  # bytes left over after the answers owed (when all were complete)


def reference(raw: bytes, owed: int, closed: bool) -> Reference:
    """What h11, as the client of `owed` pipelined POSTs, reads from `raw`."""
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=H11_LIMIT)
    answers: list[Parsed] = []
    fed = False
    eof = False
    for _ in range(owed):
        conn.send(h11.Request(method="POST", target="/loader",
                              headers=[("Host", "t"), ("Content-Length", "0")]))
        conn.send(h11.EndOfMessage())
        if not fed:
            conn.receive_data(raw)
            fed = True
        status, headers, body = 0, {}, bytearray()
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                return Reference(answers, True, 0)
            if event is h11.NEED_DATA:
                if closed and not eof:
                    conn.receive_data(b"")
                    eof = True
                    continue
                return Reference(answers, False, 0)
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                status, headers = event.status_code, joined(event.headers)
            elif isinstance(event, h11.Data):
                if len(body) < MAX_BODY_KEPT:
                    body += event.data[:MAX_BODY_KEPT - len(body)]
            elif isinstance(event, h11.EndOfMessage):
                break
            else:  # ConnectionClosed, PAUSED: no complete answer
                return Reference(answers, False, 0)
        closing = h11.MUST_CLOSE in (conn.their_state, conn.our_state) or \
            h11.CLOSED in (conn.their_state, conn.our_state)
        answers.append(Parsed(status, headers, bytes(body), closing))
        if closing:
            break
        conn.start_next_cycle()
    return Reference(answers, False, len(conn.trailing_data[0]))


def joined(headers: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers:
        key, text = name.decode("latin-1"), value.decode("latin-1")
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


def seen(response: Response) -> Parsed:
    return Parsed(response.status, response.headers, response.body, response.will_close)


# -- running the client, bounded -------------------------------------------------------------

@dataclass
class Outcome:
    result: list[Response] | None
    error: BaseException | None
    elapsed: float
    hung: bool
    broken: bool


def exchange(server: HostileServer, bodies: list[bytes], timeout: float,
             limit: float | None = None) -> Outcome:
    """post_many on a fresh connection, in a thread so that a hang fails instead of blocking.

    If the client is still busy after `limit` seconds the server is stopped (which ends
    the exchange) and the outcome says `hung`.
    """
    box: dict[str, Any] = {}

    def call() -> None:
        started = time.monotonic()
        try:
            conn = Connection.open("127.0.0.1", server.port, timeout)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc
            return
        box["conn"] = conn
        try:
            box["result"] = conn.post_many(HEAD, bodies, timeout)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc
        finally:
            box["elapsed"] = time.monotonic() - started
            conn.close()

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(limit if limit is not None else timeout + SLACK + 1.0)
    hung = thread.is_alive()
    if hung:
        server.stop()  # closes its sockets: the client's next recv ends
        thread.join(30)
    conn = box.get("conn")
    return Outcome(box.get("result"), box.get("error"), box.get("elapsed", float("inf")),
                   hung, bool(conn and conn.broken))


def answer_first(raw: bytes, **reply: Any) -> Callable[[Any], Reply]:
    """A script: the whole of `raw` goes out after the first request, nothing after others."""
    def script(request: Any) -> Reply:
        return Reply(raw, **reply) if request.index == 0 else Reply(b"")
    return script


def post_raw(raw: bytes, *, bodies: int = 1, timeout: float = 2.0, close: bool = False,
             **reply: Any) -> Outcome:
    with hostile(answer_first(raw, close=close, **reply)) as server:
        return exchange(server, [b"{}"] * bodies, timeout)


# -- 1. differential: valid answers, framed by h11 -------------------------------------------

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# What h11 allows in a field value: no NUL, no whitespace but inner spaces and tabs.
VCHAR = bytes(b for b in range(1, 256) if b not in b" \t\n\x0b\x0c\r")
FRAMING = {"content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer"}

names = st.text(TCHAR, min_size=1, max_size=12).filter(lambda n: n.lower() not in FRAMING)
words = st.binary(min_size=1, max_size=8).map(
    lambda b: bytes(VCHAR[x % len(VCHAR)] for x in b))
values = st.lists(st.tuples(words, st.sampled_from([b" ", b"\t", b"  "])), max_size=4).map(
    lambda parts: b"".join(w + s for w, s in parts).strip(b" \t"))
reasons = st.binary(max_size=20).map(
    lambda b: bytes((VCHAR + b" \t")[x % (len(VCHAR) + 2)] for x in b))
statuses = st.one_of(st.sampled_from([200, 201, 202, 204, 304, 400, 404, 408, 413, 422, 429,
                                      500, 502, 503]), st.integers(200, 599))


@st.composite
def valid_answer(draw: st.DrawFn, last: bool) -> tuple[bytes, bool]:
    """One answer serialized by h11's server side; (bytes, whether the server then closes)."""
    status = draw(statuses)
    framing = draw(st.sampled_from(["length", "chunked", "close"] if last
                                   else ["length", "chunked"]))
    if status in (204, 304):
        framing = "none"
    headers = draw(st.lists(st.tuples(names, values), max_size=6))
    closing = framing == "close" or (last and draw(st.booleans()))
    body = b"" if framing == "none" else draw(st.binary(max_size=3000))
    server = h11.Connection(h11.SERVER)
    http10 = framing == "close"  # h11 frames by the end of the connection for 1.0 clients
    server.receive_data(b"POST / HTTP/1.0\r\nContent-Length: 0\r\n\r\n" if http10 else
                        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
    server.next_event()
    server.next_event()
    out = bytearray()
    for interim in draw(st.lists(st.sampled_from([100, 102, 103]), max_size=2)):
        out += server.send(h11.InformationalResponse(status_code=interim, headers=[])) or b""
    sent_headers = [(n.encode(), v) for n, v in headers]
    if framing == "length":
        sent_headers.append((b"Content-Length", str(len(body)).encode()))
    if closing and not http10:
        sent_headers.append((b"Connection", b"close"))
    out += server.send(h11.Response(status_code=status, headers=sent_headers,
                                    reason=draw(reasons))) or b""
    if framing == "chunked":
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=5)))
        for a, b in zip([0, *cuts], [*cuts, len(body)], strict=False):
            if a == b:
                continue
            piece = server.send(h11.Data(data=body[a:b])) or b""
            ext = draw(st.sampled_from([b"", b";a=b", b";x", b';n="q v"']))
            out += piece.replace(b"\r\n", ext + b"\r\n", 1)
        trailers = draw(st.lists(st.tuples(names, values), max_size=2))
        out += server.send(h11.EndOfMessage(headers=[(n.encode(), v) for n, v in trailers]))
    else:
        if body:
            out += server.send(h11.Data(data=body)) or b""
        out += server.send(h11.EndOfMessage()) or b""
    return bytes(out), closing


@st.composite
def valid_pipelines(draw: st.DrawFn) -> tuple[list[bytes], bool]:
    n = draw(st.integers(1, 3))
    answers = [draw(valid_answer(last=i == n - 1)) for i in range(n)]
    return [a for a, _ in answers], answers[-1][1]


@DIFF
@given(pipeline=valid_pipelines(), data=st.data())
def test_the_client_reads_every_valid_answer_exactly_as_h11_does(pipeline, data):
    answers, closes = pipeline
    raw = b"".join(answers)
    expected = reference(raw, len(answers), closes)
    assert len(expected.answers) == len(answers) and expected.trailing == 0  # a sound generator
    replies = []
    for i, answer in enumerate(answers):
        split = tuple(data.draw(st.lists(st.integers(1, max(1, len(answer) - 1)), max_size=3)))
        replies.append(Reply(answer, split=split, pause=data.draw(st.sampled_from([0, 0.002])),
                             close=closes and i == len(answers) - 1))
    with hostile(lambda request: replies[request.index]) as server:
        outcome = exchange(server, [b'{"n":%d}' % i for i in range(len(answers))], 3.0)
    assert outcome.error is None, repr(outcome.error)
    assert outcome.result is not None
    assert [seen(r) for r in outcome.result] == expected.answers
    assert not outcome.broken


# -- 2. fuzz: raw bytes ----------------------------------------------------------------------

def simple(status: int = 200, body: bytes = b"ok", *headers: bytes) -> bytes:
    head = b"HTTP/1.1 %d X\r\n" % status + b"".join(h + b"\r\n" for h in headers)
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;e=1\r\nok\r\n0\r\nT: 1\r\n\r\n"
SEEDS = [simple(), simple(204, b""), simple(503, b"busy"), CHUNKED,
         b"HTTP/1.0 200 OK\r\n\r\nclose-delimited",
         b"HTTP/1.1 100 Continue\r\n\r\n" + simple(201)]
MUTATIONS = [
    (b"\r\n", b"\n"), (b"Content-Length: 2", b"Content-Length: 3"),
    (b"Content-Length: 2", b"Content-Length: 2\r\nContent-Length: 5"),
    (b"Content-Length: 2", b"Content-Length: \xb2"), (b"HTTP/1.1 200", b"HTTP/1.1 2\xb20"),
    (b"Content-Length: 2", b"Content-Length: +2"), (b"Content-Length: 2", b"Content-Length: 2, 2"),
    (b"Content-Length: 2", b"Content-Length: 2, 3"), (b"Content-Length: 2", b"Content-Length: -1"),
    (b"Content-Length: 2", b"Content-Length: 99999999999"),
    (b"Content-Length: 2", b"Transfer-Encoding: gzip\r\nContent-Length: 2"),
    (b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked, gzip"),
    (b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip, chunked"),
    (b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked\r\nContent-Length: 1"),
    (b"Transfer-Encoding: chunked", b"Transfer-Encoding: identity"),
    (b"HTTP/1.1 200", b"HTTP/1.1 20000"), (b"HTTP/1.1 200", b"HTTP/1.1 099"),
    (b"HTTP/1.1 200", b"HTTP/1.1 2000"), (b"HTTP/1.1 200", b"HTTP/2.0 200"),
    (b"HTTP/1.1 200", b"HTTP/1.1 101"), (b"HTTP/1.1 204", b"HTTP/1.1 304"),
    (b"HTTP/1.1", b"http/1.1"), (b" X\r\n", b"\r\n"), (b"2;e=1", b"2 ;e"), (b"2;e=1", b"-2"),
    (b"\r\n\r\n", b"\r\nX: a\r\n b\r\n\r\n"), (b"\r\n\r\n", b"\r\nConnection: close, x\r\n\r\n"),
    (b"ok", b"ok!"), (b"\r\n0\r\n", b"\r\n0\n"), (b"X\r\n", b"X\r\n\x00: y\r\n"),
]


@st.composite
def hostile_bytes(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["garbage", "truncated", "extra", "doubled", "mutated"]))
    seed = draw(st.sampled_from(SEEDS))
    if kind == "garbage":
        return draw(st.one_of(st.binary(max_size=120),
                              st.binary(max_size=60).map(lambda b: b"HTTP/1.1 " + b)))
    if kind == "truncated":
        return seed[:draw(st.integers(0, len(seed)))]
    if kind == "extra":
        return seed + draw(st.one_of(st.binary(min_size=1, max_size=40), st.sampled_from(SEEDS)))
    if kind == "doubled":
        return seed + seed
    raw = seed
    for old, new in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3)):
        raw = raw.replace(old, new)
    return raw


def check_invariant(raw: bytes, outcome: Outcome, owed: int, closed: bool,
                    timeout: float) -> None:
    """What the client may do with any bytes at all."""
    assert not outcome.hung, "the client hung past its timeout"
    assert outcome.elapsed <= timeout + SLACK, outcome.elapsed
    if outcome.error is not None:
        assert isinstance(outcome.error, OSError), repr(outcome.error)
        return
    got = outcome.result
    assert got, "post_many returned no answer instead of raising"
    expected = reference(raw, owed, closed)
    assert len(got) <= len(expected.answers), (got, expected)
    for answer, reference_answer in zip(got, expected.answers, strict=False):
        assert answer.status == reference_answer.status
        assert answer.will_close == reference_answer.will_close
        assert 200 <= answer.status <= 599
    if len(got) < owed and not got[-1].will_close:
        assert outcome.broken, "a short pipeline must not leave the connection reusable"
    if len(got) == owed and not got[-1].will_close:
        # Everything was already there: a byte where no answer is owed is a stray answer.
        assert expected.trailing == 0, "bytes beyond the answers owed, yet answers returned"


@FUZZ
@given(raw=hostile_bytes(), owed=st.integers(1, 2), closed=st.booleans(), data=st.data())
def test_any_bytes_give_answers_h11_agrees_with_or_an_oserror_in_time(raw, owed, closed, data):
    expected = reference(raw, owed, closed)
    complete = not expected.error and len(expected.answers) == owed
    if not complete:
        closed = True  # else the example waits out the timeout for nothing
    # Cuts only where an answer is still owed: extra bytes must arrive with the last owed one.
    owed_end = len(raw) - expected.trailing if complete else len(raw)
    split = tuple(data.draw(st.lists(st.integers(1, max(1, owed_end - 1)), max_size=3)))
    timeout = 1.5
    with hostile(answer_first(raw, close=closed, split=split, pause=0.002)) as server:
        outcome = exchange(server, [b"{}"] * owed, timeout)
    check_invariant(raw, outcome, owed, closed, timeout)


SHORT = [simple(), simple(204, b"") + b"x", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
         simple() + simple()]


@pytest.mark.parametrize("raw", SHORT, ids=["ok", "204+byte", "bare-lf", "doubled"])
def test_every_cut_of_a_short_answer_reads_as_the_whole_of_it(raw):
    """Split at each byte boundary: how bytes arrive never changes what they mean."""
    expected = reference(raw, 1, False)
    owed_end = len(raw) - expected.trailing
    for cut in range(1, owed_end):
        with hostile(answer_first(raw, split=(cut,), pause=0.002)) as server:
            outcome = exchange(server, [b"{}"], 2.0)
        check_invariant(raw, outcome, 1, False, 2.0)
        if expected.trailing == 0 and not expected.error:
            assert outcome.error is None, (cut, repr(outcome.error))


# -- 3. named regressions: issue 7, items 1-3 ------------------------------------------------

OK = simple(200, b"ok")


def raises_protocol_error(outcome: Outcome) -> None:
    assert not outcome.hung, "hung instead of refusing the answer"
    assert isinstance(outcome.error, ProtocolError), repr(outcome.error or outcome.result)


def test_a_second_different_content_length_is_a_protocol_error():
    raises_protocol_error(post_raw(simple(200, b"ok", b"Content-Length: 5")))


def test_equal_content_lengths_in_one_or_several_fields_are_read():
    for raw in (simple(200, b"hello", b"Content-Length: 5"),
                b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello"):
        outcome = post_raw(raw)
        assert outcome.error is None, repr(outcome.error)
        assert outcome.result is not None and outcome.result[0].body == b"hello"


def test_a_non_ascii_digit_content_length_is_a_protocol_error_not_a_value_error():
    # b"\xb2" is "\u00b2" in latin-1: str.isdigit() says yes, int() raises ValueError.
    raises_protocol_error(post_raw(b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\nok"))


@pytest.mark.parametrize("line", [b"HTTP/1.1 20000 OK", b"HTTP/1.1 2000", b"HTTP/1.1 099 Low",
                                  b"HTTP/1.1 600 High", b"HTTP/1.1 +20 OK", b"HTTP/1.2 200 OK",
                                  b"HTTP/2.0 200 OK", b"HTTP/1.1 2\xb2\xb3 OK"])
def test_a_status_line_other_than_http_1x_and_three_digits_100_to_599_is_refused(line):
    raises_protocol_error(post_raw(line + b"\r\nContent-Length: 2\r\n\r\nok"))


def test_a_101_to_a_post_is_no_interim_answer_to_skip():
    outcome = post_raw(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n" + OK)
    assert isinstance(outcome.error, OSError), repr(outcome.result)


@pytest.mark.parametrize("value", [b"close, x", b"x, close", b"Keep-Alive, CLOSE", b"x ,close"])
def test_connection_is_read_as_a_token_list(value):
    outcome = post_raw(b"HTTP/1.1 200 OK\r\nConnection: " + value +
                       b"\r\nContent-Length: 0\r\n\r\n", close=True)
    assert outcome.result is not None, repr(outcome.error)
    assert outcome.result[0].will_close


@pytest.mark.parametrize("coding", [b"gzip", b"chunked, gzip", b"gzip, chunked", b"identity"])
def test_a_transfer_encoding_other_than_chunked_is_a_protocol_error(coding):
    # Framed so that a client ignoring the coding would read a plausible 200.
    body = b"2\r\nok\r\n0\r\n\r\n" if b"chunked" in coding else b"ok"
    raw = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: " + coding +
           b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    raises_protocol_error(post_raw(raw))


def test_chunked_wins_over_content_length_as_in_h11():
    # h11 reads such an answer as chunked (it does not reject it); so must the client.
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n" \
          b"2\r\nok\r\n0\r\n\r\n"
    assert reference(raw, 1, False).answers[0].body == b"ok"
    outcome = post_raw(raw)
    assert outcome.result is not None, repr(outcome.error)
    assert outcome.result[0].body == b"ok"


def test_an_answer_with_bare_lf_line_endings_is_read_not_timed_out():
    outcome = post_raw(b"HTTP/1.1 200 OK\nContent-Length: 2\nX-Pytest-RT-Batch: 1\n\nok",
                       timeout=10.0)
    assert outcome.error is None, repr(outcome.error)
    assert outcome.result is not None
    assert (outcome.result[0].status, outcome.result[0].body) == (200, b"ok")
    assert outcome.result[0].headers["x-pytest-rt-batch"] == "1"
    assert outcome.elapsed < 5.0  # read, not the 10 s timeout waited out


@pytest.mark.parametrize(("name", "raw"), [
    ("204 with a body", simple(204, b"") + b"{}"),
    ("304 with a body", simple(304, b"") + b"{}"),
    ("body longer than its Content-Length", simple(200, b"ok") + b"!"),
    ("duplicate answer", OK + OK),
    ("unsolicited answers", OK + OK * 3),
])
def test_bytes_beyond_the_answer_owed_make_the_exchange_count_for_nothing(name, raw):
    # 204/304: h11 reads no body, so the "body" is a stray byte where no answer is owed.
    outcome = post_raw(raw)
    raises_protocol_error(outcome)


def test_answers_beyond_a_pipeline_are_never_taken_for_its_answers():
    # Two requests in flight, four answers at once: the second "answer" may be a stray
    # meant for nothing, while the receiver's real answer to request 2 would be a 503.
    outcome = post_raw(OK + OK * 3, bodies=2)
    raises_protocol_error(outcome)


STRAY = simple(200, b"stray")


def stray_then_busy(request: Any) -> Reply:
    """The first request: its answer, then a stray one a moment later; then 503s."""
    if request.index == 0:
        return Reply(OK + STRAY, split=(len(OK),), pause=0.1)
    return Reply(simple(503, b"busy"))


def test_a_stray_answer_waiting_before_a_send_is_never_read_as_the_next_answer():
    """The stray comes a moment after the first answer, before the next request is sent."""
    with hostile(stray_then_busy) as server:
        conn = Connection.open("127.0.0.1", server.port, 2.0)
        try:
            first = conn.post(HEAD, b'{"n":1}', 2.0)
            assert wait_until(lambda: server.sent[0] >= len(OK + STRAY))
            time.sleep(0.05)  # the stray is in the client's socket by now
            try:
                second: Response | None = conn.post(HEAD, b'{"n":2}', 2.0)
            except OSError:
                second = None  # refusing to use the connection is right too
        finally:
            conn.close()
    assert first.status == 200
    assert second is None or second.body != b"stray"


def test_the_transport_sends_on_a_new_connection_when_stray_bytes_wait_on_the_old():
    with hostile(stray_then_busy) as server:
        transport = Transport(HttpTarget(url=server.url, timeout=2.0))
        try:
            assert transport.post(b'{"n":1}').status == 200
            assert wait_until(lambda: server.sent[0] >= len(OK + STRAY))
            time.sleep(0.05)
            try:
                answer = transport.post(b'{"n":2}')
            except TransportError as exc:
                pytest.fail(f"the stray bytes cost the request: {exc}")
        finally:
            transport.close()
        requests = list(server.requests)
    assert (answer.status, answer.text) == (503, "busy")
    assert [r.connection for r in requests] == [0, 1]


def endless(head: bytes, filler: bytes, **reply: Any) -> Callable[[Any], Reply]:
    return answer_first(head, endless=filler, **reply)


def assert_bounded(server: HostileServer, outcome: Outcome, timeout: float) -> None:
    """Refused in time, having read no more than the caps allow."""
    raises_protocol_error(outcome)
    assert outcome.elapsed <= timeout + SLACK
    assert max(server.sent.values()) <= MAX_HEAD + MAX_BODY + SOCKET_BUFFERS


def test_a_10_gb_content_length_is_refused_at_once_without_reading_the_body():
    with hostile(answer_first(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n")) as s:
        outcome = exchange(s, [b"{}"], 10.0)
    raises_protocol_error(outcome)  # nothing more comes: a client that waits times out
    assert outcome.elapsed < 5.0  # at once, not the 10 s timeout waited out


def test_a_content_length_just_above_the_body_cap_is_refused_at_once():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1)
    with hostile(answer_first(head)) as server:
        outcome = exchange(server, [b"{}"], 10.0)
    raises_protocol_error(outcome)
    assert outcome.elapsed < 5.0  # at once, not the 10 s timeout waited out


@pytest.mark.parametrize(("name", "head", "filler"), [
    ("10 GB Content-Length", b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n",
     b"x" * 65536),
    ("huge chunk", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffff\r\n",
     b"x" * 65536),
    ("endless chunks", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
     b"%x\r\n" % 65530 + b"y" * 65530 + b"\r\n"),
    ("endless chunk extension", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;",
     b"a" * 65536),
    ("endless trailers", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
     b"X-T: y\r\n" * 8192),
    ("endless head", b"HTTP/1.1 200 OK\r\n", b"X-H: y\r\n" * 8192),
    ("endless body without framing", b"HTTP/1.1 200 OK\r\n\r\n", b"z" * 65536),
])
def test_an_endless_or_huge_answer_is_refused_within_the_caps_and_the_timeout(name, head, filler):
    timeout = 2.0
    with hostile(endless(head, filler)) as server:
        outcome = exchange(server, [b"{}"], timeout)
        sent = dict(server.sent)
    assert not outcome.hung, f"{name}: still reading after {timeout + SLACK + 1} s"
    assert isinstance(outcome.error, ProtocolError), repr(outcome.error or outcome.result)
    assert outcome.elapsed <= timeout + SLACK
    assert max(sent.values()) <= MAX_HEAD + MAX_BODY + SOCKET_BUFFERS, sent


def test_a_chunk_size_line_of_1_mib_is_refused():
    line = b"1;" + b"e" * (1 << 20)
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + line + b"\r\nx\r\n0\r\n\r\n"
    raises_protocol_error(post_raw(raw, close=True))


def test_a_drip_fed_answer_is_cut_at_the_timeout_not_per_byte():
    raw = simple(200, b"x" * 100)  # about 140 bytes at 10 a second: 14 s
    timeout = 1.0
    with hostile(answer_first(raw, drip=0.1)) as server:
        outcome = exchange(server, [b"{}"], timeout, limit=timeout + SLACK + 1.0)
    assert not outcome.hung, "a byte every 0.1 s kept the client well past its timeout"
    assert isinstance(outcome.error, TimeoutError), repr(outcome.error or outcome.result)
    assert outcome.elapsed <= timeout + 3.0  # the bug: 14 s, a byte at a time
