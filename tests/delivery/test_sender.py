"""The sender against a real receiver, without pytest in between."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

from pytest_rt.sender import Sender
from pytest_rt.spool import MemorySpool
from pytest_rt.transport import HttpTarget, Transport


def sender_for(url: str, n: int, *, batch: bool | None = None) -> Sender:
    spool = MemorySpool()
    for i in range(1, n + 1):
        spool.append(json.dumps({"event_id": f"{i:032x}", "seq": i}).encode())
    sender = Sender(spool, Transport(HttpTarget(url=url, timeout=2)), batch=batch,
                    display_url=url)
    sender.produced = n
    return sender


def deliver(sender: Sender, timeout: float = 10) -> None:
    """Run the loop as replay does: everything is there, deliver it within timeout."""
    sender.close(timeout)
    try:
        sender.run()
    finally:
        sender.transport.close()


def seqs(receiver: Any) -> list[int]:
    return [e["seq"] for e in receiver.unique()]


def test_a_too_large_batch_is_halved_until_the_receiver_takes_it(receiver):
    receiver.behaviour.reject = lambda body: 413 if len(body) > 7 else None
    sender = sender_for(receiver.url, 50, batch=True)
    deliver(sender)
    assert seqs(receiver) == list(range(1, 51))
    assert max(len(body) for body in receiver.bodies) <= 7
    assert sender.stats.delivered == 50
    assert sender.stats.rejected == 0


def test_every_other_4xx_rejects_only_the_event_that_caused_it(receiver):
    receiver.behaviour.reject = lambda body: 422 if body["seq"] == 2 else None
    sender = sender_for(receiver.url, 3)
    deliver(sender)
    assert seqs(receiver) == [1, 3]
    assert sender.acked == 3
    assert sender.stats.rejected == 1
    assert sender.stats.problems == [
        f'{receiver.url} rejected an event (422): {{"error": "scripted failure"}}']


def test_401_stops_delivery_with_nothing_acknowledged(receiver):
    receiver.behaviour.fail_first = 10
    receiver.behaviour.fail_status = 401
    sender = sender_for(receiver.url, 3)
    deliver(sender)
    assert sender.stopped
    assert sender.acked == 0
    assert receiver.requests == 1


def test_5xx_is_retried_with_the_same_events(receiver):
    receiver.behaviour.fail_first = 2
    receiver.behaviour.fail_status = 500
    sender = sender_for(receiver.url, 2)
    deliver(sender)
    assert seqs(receiver) == [1, 2]
    assert sender.stats.retried == 2
    assert receiver.requests == 4


def test_a_dead_receiver_costs_one_try_at_the_end(dead_url):
    sender = sender_for(dead_url, 100)
    deliver(sender, timeout=30)
    assert sender.acked == 0
    assert sender.stats.posts == 1
    assert sender.stats.problems == [f"cannot reach {dead_url}: connection refused"]


def test_events_produced_while_the_sender_runs_arrive_in_order(receiver):
    """The producer side: events come while the sender is running in its thread."""
    spool = MemorySpool()
    sender = Sender(spool, Transport(HttpTarget(url=receiver.url)), batch=None,
                    display_url=receiver.url)
    thread = threading.Thread(target=sender.run)
    thread.start()
    try:
        for i in range(1, 201):
            spool.append(json.dumps({"event_id": f"{i:032x}", "seq": i}).encode())
            sender.notify(i)
    finally:
        sender.close(10)
        thread.join(15)
        sender.transport.close()
    assert not thread.is_alive()
    assert seqs(receiver) == list(range(1, 201))


@contextlib.contextmanager
def answering(status: int, body: bytes = b"", **headers: str) -> Iterator[str]:
    """A server that gives every POST the same answer; yields its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/loader"
    finally:
        server.shutdown()
        server.server_close()


def test_the_servers_answer_is_quoted_to_200_whole_characters():
    """A rejection is reported with the start of the answer, never half a character."""
    with answering(400, ("é" * 150 + "ü" * 150).encode()) as url:
        transport = Transport(HttpTarget(url=url))
        try:
            text = transport.post(b"{}").text
        finally:
            transport.close()
    assert text == "é" * 150 + "ü" * 50


def test_a_redirect_is_not_followed_and_says_where_it_points():
    with answering(308, Location="https://elsewhere.example/loader") as url:
        sender = sender_for(url, 3, batch=False)
        deliver(sender)
    assert sender.stopped
    assert sender.acked == 0
    assert sender.stats.problems == [
        f"{url} answered 308 to https://elsewhere.example/loader (the wrong URL?): "
        "delivery stopped, events kept for replay"]
