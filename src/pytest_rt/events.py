"""The wire format: building the protocol's events, and mapping pytest reports to them.

Pure functions and plain data, no I/O: docs/protocol.md describes what these
produce, field by field. The seed's fields keep their types (``startTime`` of
startTestRun a number; item and stop times strings); everything else is added.
"""

from __future__ import annotations

import inspect
import json
import json.encoder
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from pytest_rt.protocol import (
    EVENT_TYPES,
    FAILED_OUTCOMES,
    FW,
    OUTCOMES,
    START_ITEM,
    START_RUN,
    STATUS_OF,
    STOP_ITEM,
    STOP_RUN,
)

Event = dict[str, Any]
_PYTEST_7 = pytest.__version__.startswith("7.")


def stamp(t: float) -> str:
    """A time as the seed's strings: Unix seconds with 6 decimals."""
    return f"{t:.6f}"


def stamp_now() -> str:
    """stamp(time.time()), from integers: formatting a float to 6 decimals costs more."""
    us = time.time_ns() // 1000
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


_XDIST_HEADER = re.compile(r"\[[^\]\n]+\] [^\n]* -- Python [^\n]*\n")


def failure_text(report: pytest.TestReport | pytest.CollectReport) -> str:
    """pytest's failure text, without the line xdist puts first ("[gw0] linux -- Python")."""
    text = report.longreprtext
    header = _XDIST_HEADER.match(text) if hasattr(report, "node") else None
    return text[header.end():] if header else text


def location_from_nodeid(nodeid: str) -> str:
    """What item.location[2] would be, for when only the node id is known (xdist)."""
    parts = nodeid.split("::")
    return ".".join(parts[1:]) if len(parts) > 1 else parts[0]


def description_of(item: Any) -> str | None:
    """A test's ``description``: its function's docstring, cleaned; None without one.

    The one rule for serial runs and for xdist workers (descriptions.py), so the
    two send the same text for the same test. Cleaned as inspect.cleandoc does:
    Python 3.13 strips docstrings' indentation when it compiles them, earlier
    versions keep it, so the raw text differs between Pythons (and on 3.13 a
    serial and an xdist run were seen to send different text).
    """
    doc = getattr(getattr(item, "obj", None), "__doc__", None)
    return inspect.cleandoc(doc).strip() if isinstance(doc, str) else None


class TestUuids:
    """Testgr's per-test uuids for one run: stable per test with a custom id, as upstream
    did; else unique per test per run, in a uuid's shape.

    Without a custom id: 80 random bits for the run, then the test's number (12 hex
    digits). Not uuid4() per test: that reads os.urandom and builds a UUID object,
    several times the cost, for every test of the run.
    """

    def __init__(self, custom_id: str | None) -> None:
        self.custom_id = custom_id
        h = os.urandom(10).hex()
        self._prefix = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-"
        self._made = 0

    def __call__(self, nodeid: str) -> str:
        if self.custom_id:
            import hashlib  # only with a custom id

            digest = hashlib.md5((self.custom_id + nodeid).encode("utf-8"),
                                 usedforsecurity=False)
            return str(int(digest.hexdigest(), 16))[:31]
        self._made += 1
        return f"{self._prefix}{self._made:012x}"


class Limits:
    """How messages are cut and masked before they leave the process.

    (The classes here are plain: a dataclass execs generated code at import, and
    this module is imported at the start of every --rt run.)
    """

    def __init__(self, max_msg: int = 20_000, redact: tuple[re.Pattern[str], ...] = ()) -> None:
        self.max_msg = max_msg
        self.redact = redact

    def clean(self, text: str) -> str:
        for pattern in self.redact:
            text = pattern.sub("***", text)
        if len(text) > self.max_msg:
            # Slicing a str never splits a UTF-8 sequence: it counts code points.
            cut = len(text) - self.max_msg
            text = text[: self.max_msg] + f"\n[... {cut} characters truncated by pytest-rt]"
        return text


class TestResult:
    """The reports of one test, gathered until its final attempt is over."""

    __slots__ = ("nodeid", "worker", "reports", "rerun_msgs", "rerun_pending")

    def __init__(self, nodeid: str, worker: str | None = None) -> None:
        self.nodeid = nodeid
        self.worker = worker
        self.reports: list[pytest.TestReport] = []
        self.rerun_msgs: list[str] = []
        self.rerun_pending = False

    def add(self, report: pytest.TestReport) -> None:
        if str(report.outcome) == "rerun":  # pytest-rerunfailures' own outcome
            self.rerun_pending = True
            self.rerun_msgs.append(failure_text(report))
        else:
            self.reports.append(report)

    def next_attempt(self) -> None:
        """pytest-rerunfailures will run the test again: forget this attempt."""
        self.reports.clear()
        self.rerun_pending = False

    def verdict(self) -> tuple[str, str | None, str]:
        """(outcome, phase that decided it, msg) from the reports gathered."""
        if _plain_pass(self.reports):
            return "passed", "call", ""
        by_when = {r.when: r for r in self.reports}
        setup, call, teardown = (by_when.get(w) for w in ("setup", "call", "teardown"))
        crashed = [r for r in self.reports if r.when not in ("setup", "call", "teardown")]
        if crashed:  # xdist's report for a worker that died mid-test (docs/protocol.md)
            return "interrupted", None, failure_text(crashed[-1])
        if setup is not None and setup.failed:
            return "error", "setup", failure_text(setup)
        if setup is not None and setup.skipped:
            return _skip(setup), "setup", _skip_msg(setup)
        if call is None:
            return "interrupted", None, ""
        torn = teardown is not None and teardown.failed
        if call.failed:
            msg = failure_text(call)
            if torn:
                assert teardown is not None
                msg += "\n\n[teardown]\n" + failure_text(teardown)
            return "failed", "call", msg
        if torn:
            assert teardown is not None
            return "error", "teardown", failure_text(teardown)
        if call.skipped:
            return _skip(call), "call", _skip_msg(call)
        if hasattr(call, "wasxfail"):
            return "xpassed", "call", ""  # a pass, so no message, as for any pass
        return "passed", "call", ""

    @property
    def duration(self) -> float:
        """Seconds, to the microsecond (not round(): it formats the float to do so)."""
        return int(sum([r.duration for r in self.reports]) * 1e6 + 0.5) / 1e6


def _plain_pass(reports: list[pytest.TestReport]) -> bool:
    """Setup, call and teardown all passed, no xfail: most tests, checked cheaply first."""
    if len(reports) != 3:
        return False
    setup, call, teardown = reports
    return (setup.outcome == call.outcome == teardown.outcome == "passed"
            and call.when == "call" and not hasattr(call, "wasxfail"))


def _skip(report: pytest.TestReport) -> str:
    return "xfailed" if hasattr(report, "wasxfail") else "skipped"


def _skip_msg(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        reason = str(report.wasxfail)
        # pytest < 8 stored pytest.xfail("why") as "reason: why"; 8 stores the reason alone.
        return reason.removeprefix("reason: ") if _PYTEST_7 else reason
    longrepr = report.longrepr
    text = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else (
        failure_text(report))
    # pytest stores the reason as "Skipped: <reason>"; the reason alone is the msg, as
    # for xfail (and as pytest's own summary prints it).
    return text.removeprefix("Skipped: ")


class Job:
    """Builds one run's events, in order, with the fields every event shares."""

    def __init__(self, job_id: str, custom_id: str | None, run_id: str | None = None) -> None:
        self.job_id = job_id
        self.custom_id = custom_id
        # Once per run, from the OS's randomness as uuid4 would (without importing uuid).
        self.run_id = os.urandom(16).hex() if run_id is None else run_id
        self.seq = 0
        # The fields every event shares, encoded once: per event only its own are.
        head = encode({"job_id": self.job_id, "custom_id": self.custom_id})[1:-1]
        self._head = head
        self._starts = {kind: f'{{"fw":"{FW}","type":"{kind}",{head}' for kind in EVENT_TYPES}
        # event_id: 96 random bits of this run, then the event's seq (8 hex digits): 32
        # hex digits unique per event without asking the OS or the PRNG for each one.
        self._ids = os.urandom(12).hex()
        self._tail = f',"run_id":{encode(self.run_id)},"seq":'

    def line(self, type_: str, fields: dict[str, Any]) -> str:
        """The next event as one line of JSON: fw, type, job_id, custom_id, the
        event's own fields, event_id, run_id, seq (docs/protocol.md)."""
        own = encode(fields)[1:-1]
        return self.raw(type_, "," + own if own else "")

    def raw(self, type_: str, own: str) -> str:
        """line() with the event's own fields already encoded, each after a comma."""
        self.seq = seq = self.seq + 1
        start = self._starts.get(type_) or f'{{"fw":"{FW}","type":{encode(type_)},{self._head}'
        return f'{start}{own},"event_id":"{self._ids}{seq:08x}"{self._tail}{seq}}}'

    def event(self, type_: str, **fields: Any) -> Event:
        """The next event as a dict (what a receiver decodes from line())."""
        decoded: Event = json.loads(self.line(type_, fields))
        return decoded


def _make_encoder() -> Callable[[Any], str]:
    """One C encoder for the run, called directly.

    json.dumps, and even a kept JSONEncoder's encode(), build a new C encoder and
    a circular-reference dict for every event, on the test thread. Events are
    trees we built (no cycles), so neither is needed.
    """
    make = json.encoder.c_make_encoder  # type: ignore[attr-defined]
    if make is None:  # a Python without the _json accelerator
        return json.JSONEncoder(separators=(",", ":"), default=str).encode
    encoder = make(None, str, json.encoder.encode_basestring_ascii,
                   None, ":", ",", False, False, True)
    return lambda value: "".join(encoder(value, 0))


encode = _make_encoder()
_string: Callable[[str], str] = json.encoder.encode_basestring_ascii  # one str (C)


def json_text(value: str | None) -> str:
    """A str or None as JSON."""
    return "null" if value is None else _string(value)


def test_ref(nodeid: str, uuid_: str) -> str:
    """A test's `test` and `uuid` fields, encoded once for its start and stop events."""
    return _ref(_string(nodeid), uuid_)


def _ref(quoted_nodeid: str, uuid_: str) -> str:
    return f',"test":{quoted_nodeid},"uuid":"{uuid_}"'  # uuids: hex digits and dashes


def start_test_run(job: Job, tests: list[str], *, env: str | None,
                   custom_data: dict[str, Any] | None, start: float,
                   collect_errors: list[dict[str, str]], extra: dict[str, Any]) -> str:
    """startTestRun; `tests` are test_entry()'s, already encoded."""
    rest = encode({
        "env": env, "custom_data": custom_data, "startTime": round(start, 6),
        "collect_errors": list(collect_errors), **extra})[1:-1]
    return job.raw(START_RUN, f',"tests":[{",".join(tests)}],{rest}')


def test_entry(nodeid: str, uuid_: str, *, location: str | None = None,
               description: str | None = None, markers: list[str] | None = None
               ) -> tuple[str, str]:
    """One test of startTestRun's list, encoded (location, nodeid, uuid, description,
    file, markers), and its test_ref() from the same encoding of the node id."""
    if location is None:
        location = location_from_nodeid(nodeid)
    quoted = _string(nodeid)
    tags = ",".join(map(_string, markers)) if markers else ""
    file = nodeid.partition("::")[0]
    entry = (f'{{"location":{_string(location)},"nodeid":{quoted},"uuid":"{uuid_}",'
             f'"description":{json_text(description)},'
             f'"file":{_string(file)},"markers":[{tags}]}}')
    return entry, _ref(quoted, uuid_)


def start_test_item(job: Job, ref: str, worker: str | None, now: float | None = None) -> str:
    """startTestItem of the test `ref` (test_ref()) names."""
    when = stamp_now() if now is None else stamp(now)
    return job.raw(START_ITEM, f'{ref},"startTime":"{when}","worker":{json_text(worker)}')


CAPTURE = ("failed", "all", "none")  # --rt-capture: whose captured output is sent


def captured(result: TestResult, limits: Limits) -> list[dict[str, str]]:
    """What pytest captured of a test (stdout, stderr, log, per phase), as pytest titles it.

    Each report carries the sections of its phase and the phases before it: the
    last title wins. Cut and masked like msg.
    """
    sections: dict[str, str] = {}
    for report in result.reports:
        for title, text in report.sections:
            sections[title] = text
    return [{"name": title, "text": limits.clean(text)} for title, text in sections.items()]


# stop_test_item's answer: the stopTestItem event, pytest's precise outcome, and the msg
# as sent (cut and masked). A plain tuple: a NamedTuple costs a Python call per test.
Stop = tuple[str, str, str]


def stop_test_item(job: Job, result: TestResult, ref: str, limits: Limits,
                   interrupted_msg: str = "", now: float | None = None,
                   capture: str = "failed") -> Stop:
    """The stopTestItem event of a finished test (`ref`: test_ref()), its precise
    outcome and message."""
    when_ = stamp_now() if now is None else stamp(now)
    reports = result.reports
    if capture != "all" and not result.rerun_msgs and len(reports) == 3:
        setup, call, teardown = reports
        if (setup.outcome == call.outcome == teardown.outcome == "passed"
                and call.when == "call" and not hasattr(call, "wasxfail")):
            # Most tests: _plain_pass() and the general path below, without building and
            # encoding a dict, and the duration written from integer microseconds
            # (the same number as the float the general path writes, for less).
            us = int((setup.duration + call.duration + teardown.duration) * 1e6 + 0.5)
            line = job.raw(STOP_ITEM, (
                f'{ref},"status":"passed","msg":"","stopTime":"{when_}","outcome":"passed",'
                f'"when":"call","duration":{us // 1_000_000}.{us % 1_000_000:06d},'
                f'"worker":{json_text(result.worker)},"reruns":0,"rerun_msgs":[],"sections":[]'))
            return line, "passed", ""
    outcome, when, msg = result.verdict()
    if outcome == "interrupted" and not msg:  # a crashed worker's report has its own text
        msg = interrupted_msg or "interrupted before the test finished"
    wanted = capture == "all" or (capture == "failed" and outcome in FAILED_OUTCOMES)
    msg = limits.clean(msg) if msg else msg
    rest = encode({
        "status": STATUS_OF[outcome],
        "msg": msg,
        "stopTime": when_,
        "outcome": outcome,
        "when": when,
        "duration": result.duration,
        "worker": result.worker,
        "reruns": len(result.rerun_msgs),
        "rerun_msgs": [limits.clean(m) for m in result.rerun_msgs],
        "sections": captured(result, limits) if wanted else [],
    })[1:-1]
    return job.raw(STOP_ITEM, f"{ref},{rest}"), outcome, msg


def stop_test_run(job: Job, *, exitstatus: int, counts: Counter[str], total: int, started: int,
                  start: float | None, send_report: bool, interrupted: bool,
                  collect_errors: list[dict[str, str]], now: float | None = None) -> str:
    now = time.time() if now is None else now
    full = {name: counts.get(name, 0) for name in OUTCOMES}
    full["not_started"] = max(total - started, 0)
    return job.line(STOP_RUN, {
        "stopTime": stamp(now),
        "send_report": "1" if send_report else "0",
        "exitstatus": exitstatus,
        "interrupted": interrupted,
        "counts": full,
        "total": total,
        "duration": round(now - start, 6) if start is not None else None,
        "collect_errors": list(collect_errors),
    })
