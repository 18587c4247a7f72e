"""Parse and validate ``POST /loader`` bodies into normalized records.

Pure functions, no I/O: the body's bytes go in, a list of immutable records comes
out, or :class:`IngestError` says what is wrong (status code and a message
naming the event's index and the field). Unknown keys are ignored, as
docs/protocol.md asks of receivers. Both families are read: the pytest one
(``fw: "2"``: ``startTestItem``/``stopTestItem``) and the seed's unittest one
(no ``fw`` or ``fw: "1"``: ``startTest``/``stopTest``, dotted names, ``msg`` as
a list of strings, ``tests`` as an object of name -> dotted name).
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, NamedTuple

from .jsonsafe import MAX_DEPTH, depth_of

MAX_ID_LEN = 200
# PostgreSQL's B-tree rows are limited to ~2.7 kB: longer node ids are looked
# up by a digest instead (see :func:`nodeid_key`).
MAX_KEY_BYTES = 1000
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
# Bounds that keep every sum and difference finite (JSON has no Infinity).
MAX_TIME = 1e11  # Unix seconds: year 5138
MAX_DURATION = 1e9
# Every free-form field is bounded, so nothing stored can make a read slow or fail.
# Text is cut with a visible marker (as the plugin cuts ``msg``): the start of a
# message or name says what it is. Structured values (``custom_data``, the test
# list) are refused whole instead: half an object would mislead.
MAX_CUSTOM_DATA_BYTES = 64 * 1024
MAX_MSG_CHARS = 100_000  # msg, rerun_msgs, collection errors, descriptions
MAX_NAME_CHARS = 10_000  # node ids, locations, files
MAX_SHORT_CHARS = 1_000  # env, custom_id, uuid, worker, outcome, when, a marker
MAX_LIST_ITEMS = 1_000  # markers, rerun_msgs, collect_errors
MAX_SHARDS = 100_000  # startTestRun's shards
# A job's identity (issue 9): names a person reads in a list, so a few hundred characters;
# the project is indexed, and PostgreSQL refuses index rows over ~2.7 kB.
MAX_IDENTITY_CHARS = 200  # project, rootdir, ci provider, branch, commit, pull request, build
MAX_URL_CHARS = 2_000  # ci.build_url (longer is not a usable link: dropped, not cut)
CI_FIELDS = ("provider", "repository", "branch", "commit", "pull_request", "build", "build_url")
# What pytest captured for one test (stopTestItem ``sections``), all sections together:
# the plugin caps each section at --rt-max-msg; this bounds a test whatever the client.
MAX_SECTIONS_CHARS = 256 * 1024
# Tests per startTestRun: SQLite writes ~45,000 declared tests a second on the
# 2-core machine, and one request holds the single writer: 50,000 keep the wait
# of every other client's POST near 1 s (``--max-tests-per-run`` moves it).
MAX_TESTS_PER_RUN = 50_000
STATUSES = ("passed", "failed", "error", "skipped")
# Statuses some clients send in their own words, mapped to (status, outcome).
STATUS_ALIASES = {
    "xfailed": ("skipped", "xfailed"),
    "xpassed": ("passed", "xpassed"),
    "interrupted": ("error", "interrupted"),
}


class IngestError(Exception):
    """A body the receiver rejects: ``status`` is the HTTP code to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Meta(NamedTuple):
    """What every event carries."""

    job_id: str
    run_id: str  # "" for clients that send none (the seed's)
    event_id: str | None
    custom_id: str | None


class TestDecl(NamedTuple):
    nodeid: str
    key: str
    location: str | None
    uuid: str | None
    description: str | None
    file: str | None
    markers: tuple[str, ...]


class Ci(NamedTuple):
    """Where a run comes from (startTestRun ``ci``); every field may be unknown."""

    provider: str | None = None
    repository: str | None = None
    branch: str | None = None
    commit: str | None = None
    pull_request: str | None = None
    build: str | None = None
    build_url: str | None = None  # only http(s) URLs are kept


class RunStart(NamedTuple):
    meta: Meta
    env: str | None
    start_time: float | None
    custom_data: str | None  # JSON text of an object
    collect_errors: str | None  # JSON text of [{"nodeid", "msg"}]
    xdist: bool | None
    workers: int | None
    tests: tuple[TestDecl, ...]
    project: str | None = None
    rootdir: str | None = None
    ci: Ci = Ci()
    # The job's line of runs: what "the previous job" of a job means (see :func:`lineage`).
    lineage: str | None = None
    shards: int | None = None  # how many runs (CI shards) the job has, when declared


class ItemStart(NamedTuple):
    meta: Meta
    nodeid: str
    key: str
    start_time: float | None
    uuid: str | None
    worker: str | None


class ItemStop(NamedTuple):
    meta: Meta
    nodeid: str
    key: str
    status: str
    outcome: str
    msg: str
    stop_time: float | None
    uuid: str | None
    when: str | None
    duration: float | None
    worker: str | None
    reruns: int
    rerun_msgs: str  # JSON text of a list of strings
    sections: str | None = None  # JSON text of [{"name", "text"}]


class RunStop(NamedTuple):
    meta: Meta
    stop_time: float | None
    exitstatus: int | None
    interrupted: bool | None
    collect_errors: str | None


class Heartbeat(NamedTuple):
    """The run is alive (sent only to receivers that announce X-Pytest-RT-Heartbeat)."""

    meta: Meta


Event = RunStart | ItemStart | ItemStop | RunStop | Heartbeat


def clean_text(value: str) -> str:
    """``value`` storable everywhere: PostgreSQL refuses NUL, UTF-8 refuses lone surrogates."""
    if value.isascii():  # the common case, and no surrogate can hide in it
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def cut_text(value: str, limit: int, newline: bool = True) -> str:
    """``value`` cut to ``limit`` characters with the plugin's visible marker."""
    if len(value) <= limit:
        return value
    cut = len(value) - limit
    sep = "\n" if newline else " "
    return f"{value[:limit]}{sep}[... {cut} characters truncated by pytest-rt]"


def cut_name(value: str) -> str:
    """A node id cut like :func:`cut_text`, keeping a digest of the whole so that two
    long ids that differ only after the cut stay two tests."""
    if len(value) <= MAX_NAME_CHARS:
        return value
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]
    cut = len(value) - MAX_NAME_CHARS
    return f"{value[:MAX_NAME_CHARS]} [... {cut} characters truncated by pytest-rt, {digest}]"


def nodeid_key(nodeid: str) -> str:
    """The indexed form of a node id: itself, or a digest when it is too long to index."""
    if len(nodeid) * 4 <= MAX_KEY_BYTES or len(nodeid.encode("utf-8")) <= MAX_KEY_BYTES:
        return nodeid
    return "sha256:" + hashlib.sha256(nodeid.encode("utf-8")).hexdigest()


def parse_body(body: bytes, max_tests: int = MAX_TESTS_PER_RUN) -> list[Event]:
    """The events of one POST body: one event object or an array of them.

    ``max_tests``: the most tests a startTestRun may list (413 beyond).
    """
    if not body.strip():
        raise IngestError(400, "the body is empty: send one JSON event object or an array")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise IngestError(400, f"the body is not JSON: {exc}") from None
    if isinstance(data, dict):
        return [parse_event(data, None, max_tests)]
    if isinstance(data, list):
        return [parse_event(item, index, max_tests) for index, item in enumerate(data)]
    raise IngestError(422, "the body must be a JSON object (one event) or an array of events")


def parse_event(data: Any, index: int | None, max_tests: int = MAX_TESTS_PER_RUN) -> Event:
    """One event; ``index`` is its place in a batch (for the error message)."""
    fields = _Fields(data, index)
    kind = fields.required_str("type")
    job_id = fields.ident("job_id", required=True) or ""
    if not job_id.isprintable():
        # It is part of the job page's URL, where a newline cannot be routed.
        raise fields.error("job_id", "must be printable: no control characters or line breaks")
    meta = Meta(
        job_id=job_id,
        run_id=fields.ident("run_id") or "",
        event_id=fields.ident("event_id"),
        custom_id=fields.opt_str("custom_id", MAX_SHORT_CHARS),
    )
    fields.opt_int("seq", 0, 2**62)
    if kind == "startTestRun":
        return _run_start(fields, meta, max_tests)
    if kind == "stopTestRun":
        return RunStop(
            meta=meta,
            stop_time=fields.opt_time("stopTime"),
            exitstatus=fields.opt_int("exitstatus", INT_MIN, INT_MAX),
            interrupted=fields.opt_bool("interrupted"),
            collect_errors=fields.collect_errors(),
        )
    if kind in ("startTestItem", "startTest"):
        nodeid = fields.name("test")
        return ItemStart(
            meta=meta,
            nodeid=nodeid,
            key=nodeid_key(nodeid),
            start_time=fields.opt_time("startTime"),
            uuid=fields.opt_str("uuid", MAX_SHORT_CHARS),
            worker=fields.opt_str("worker", MAX_SHORT_CHARS),
        )
    if kind in ("stopTestItem", "stopTest"):
        return _item_stop(fields, meta)
    if kind == "heartbeat":
        return Heartbeat(meta)
    raise fields.error(
        "type",
        f"unknown event type {kind!r}: expected startTestRun, startTestItem, "
        "stopTestItem, stopTestRun, heartbeat (or startTest, stopTest)",
    )


def _run_start(fields: _Fields, meta: Meta, max_tests: int) -> RunStart:
    env = fields.opt_str("env", MAX_SHORT_CHARS)
    project = fields.opt_str("project", MAX_IDENTITY_CHARS)
    rootdir = fields.opt_str("rootdir", MAX_IDENTITY_CHARS)
    ci = fields.ci()
    return RunStart(
        meta=meta,
        env=env,
        start_time=fields.opt_time("startTime"),
        custom_data=fields.custom_data(),
        collect_errors=fields.collect_errors(),
        xdist=fields.opt_bool("xdist"),
        workers=fields.opt_int("workers", 0, 1_000_000),
        tests=fields.tests(max_tests),
        project=project,
        rootdir=rootdir,
        ci=ci,
        lineage=lineage(project, ci.branch, env, rootdir),
        shards=fields.opt_int("shards", 0, MAX_SHARDS) or None,  # 0: not declared
    )


def lineage(
    project: str | None, branch: str | None, env: str | None, rootdir: str | None
) -> str | None:
    """The key of a job's line of runs, whose previous finished job "what changed" compares
    with: the same project and branch; a run that names no project (an older plugin, the
    seed's clients), the same env and rootdir. A digest, so one short index serves it."""
    if project is not None:
        parts = ["project", project, branch]
    elif env is not None or rootdir is not None:
        parts = ["env", env, rootdir]
    else:
        return None
    return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()[:32]


def _item_stop(fields: _Fields, meta: Meta) -> ItemStop:
    nodeid = fields.name("test")
    raw_status = fields.required_str("status")
    if raw_status in STATUSES:
        status, default_outcome = raw_status, raw_status
    elif raw_status in STATUS_ALIASES:
        status, default_outcome = STATUS_ALIASES[raw_status]
    else:
        raise fields.error("status", f"unknown status {raw_status!r}: expected one of {STATUSES}")
    rerun_msgs = fields.str_list("rerun_msgs", MAX_MSG_CHARS)
    return ItemStop(
        meta=meta,
        nodeid=nodeid,
        key=nodeid_key(nodeid),
        status=status,
        outcome=fields.opt_str("outcome", MAX_SHORT_CHARS) or default_outcome,
        msg=fields.msg(),
        stop_time=fields.opt_time("stopTime"),
        uuid=fields.opt_str("uuid", MAX_SHORT_CHARS),
        when=fields.opt_str("when", MAX_SHORT_CHARS),
        duration=fields.opt_number("duration"),
        worker=fields.opt_str("worker", MAX_SHORT_CHARS),
        reruns=fields.opt_int("reruns", 0, INT_MAX) or 0,
        rerun_msgs=json.dumps(list(rerun_msgs)),
        sections=fields.sections(),
    )


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class _Fields:
    """Typed access to one event's fields; every failure names the field and index."""

    __slots__ = ("data", "where")

    def __init__(self, data: Any, index: int | None) -> None:
        self.where = "the event" if index is None else f"event {index} of the batch"
        if not isinstance(data, dict):
            raise IngestError(422, f"{self.where}: must be a JSON object, got {_type_name(data)}")
        self.data: dict[str, Any] = data

    def error(self, key: str, message: str) -> IngestError:
        return IngestError(422, f"{self.where}: field {key!r}: {message}")

    def _wrong(self, key: str, expected: str, value: Any) -> IngestError:
        return self.error(key, f"must be {expected}, got {_type_name(value)}")

    def required_str(self, key: str) -> str:
        value = self.data.get(key)
        if value is None:
            raise self.error(key, "is missing")
        if not isinstance(value, str):
            raise self._wrong(key, "a string", value)
        return clean_text(value)

    def name(self, key: str) -> str:
        """A required node id, cut (keeping it distinct) when longer than MAX_NAME_CHARS."""
        return cut_name(self.required_str(key))

    def opt_str(self, key: str, limit: int) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._wrong(key, "a string or null", value)
        return cut_text(clean_text(value), limit, newline=limit >= MAX_MSG_CHARS)

    def ident(self, key: str, required: bool = False) -> str | None:
        value = self.required_str(key) if required else self.opt_str(key, MAX_SHORT_CHARS)
        if value is not None and len(value) > MAX_ID_LEN:
            raise self.error(key, f"is longer than {MAX_ID_LEN} characters")
        if required and not value:
            raise self.error(key, "is empty")
        return value

    def opt_number(self, key: str, bound: float = MAX_DURATION) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._wrong(key, "a number", value)
        return self._finite(key, value, bound)

    def _finite(self, key: str, value: Any, bound: float) -> float:
        try:
            number = float(value)
        except (ValueError, OverflowError):
            raise self.error(key, f"is not a number: {str(value)[:40]!r}") from None
        if not math.isfinite(number):
            raise self.error(key, "must be a finite number")
        if not -bound <= number <= bound:
            raise self.error(key, f"must be between {-bound:g} and {bound:g}")
        return number

    def opt_time(self, key: str) -> float | None:
        """Unix seconds: the seed sends numbers and numeric strings."""
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self._wrong(key, "a number or a numeric string", value)
        return self._finite(key, value, MAX_TIME)

    def opt_int(self, key: str, low: int, high: int) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(key, "an integer", value)
        if not low <= value <= high:
            raise self.error(key, f"must be between {low} and {high}")
        return value

    def opt_bool(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None or isinstance(value, bool):
            return value
        raise self._wrong(key, "a boolean", value)

    def str_list(self, key: str, limit: int) -> tuple[str, ...]:
        """Strings each cut to ``limit``; past MAX_LIST_ITEMS one marker says how many more."""
        value = self.data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._wrong(key, "an array of strings", value)
        kept = [cut_text(clean_text(item), limit) for item in value[:MAX_LIST_ITEMS]]
        if len(value) > MAX_LIST_ITEMS:
            kept.append(f"[... {len(value) - MAX_LIST_ITEMS} more truncated by pytest-rt]")
        return tuple(kept)

    def msg(self) -> str:
        """The seed's ``msg``: a string, or (unittest family) a list of strings."""
        value = self.data.get("msg")
        if isinstance(value, list):
            if not all(isinstance(item, str) for item in value):
                raise self._wrong("msg", "a string or an array of strings", value)
            return cut_text("\n".join(clean_text(item) for item in value), MAX_MSG_CHARS)
        return self.opt_str("msg", MAX_MSG_CHARS) or ""

    def ci(self) -> Ci:
        """startTestRun's ``ci``: strings (a number is taken as its text), each cut to its
        limit; a build URL that is not http(s) is dropped, as the dashboard links it."""
        value = self.data.get("ci")
        if value is None:
            return Ci()
        if not isinstance(value, dict):
            raise self._wrong("ci", "an object or null", value)
        found: dict[str, str | None] = {}
        for name in CI_FIELDS:
            item = value.get(name)
            if isinstance(item, int) and not isinstance(item, bool):
                item = str(item)  # a pull request or build number sent as a number
            if item is not None and not isinstance(item, str):
                raise self.error("ci", f"{name} must be a string or null, got {_type_name(item)}")
            if item is None or not item.strip():
                found[name] = None
            elif name == "build_url":
                url = clean_text(item).strip()
                scheme = url.split(":", 1)[0].lower()
                ok = scheme in ("http", "https") and len(url) <= MAX_URL_CHARS
                found[name] = url if ok and url.isprintable() else None
            else:
                limit = MAX_SHORT_CHARS if name == "repository" else MAX_IDENTITY_CHARS
                found[name] = cut_text(clean_text(item), limit, newline=False)
        return Ci(**found)

    def sections(self) -> str | None:
        """stopTestItem's ``sections`` as JSON text, at most MAX_SECTIONS_CHARS of text in
        all: the section that passes the budget is cut with the marker, later ones dropped
        with a note saying how many."""
        value = self.data.get("sections")
        if value is None:
            return None
        if not isinstance(value, list):
            raise self._wrong("sections", 'an array of {"name", "text"}', value)
        kept: list[dict[str, str]] = []
        budget = MAX_SECTIONS_CHARS
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.error("sections", f"entry {i} must be an object, got {_type_name(item)}")
            name, text = item.get("name"), item.get("text")
            if not isinstance(name, (str, type(None))) or not isinstance(text, (str, type(None))):
                raise self.error("sections", f"entry {i}: name and text must be strings")
            if budget <= 0 or len(kept) >= MAX_LIST_ITEMS:
                more = len(value) - i
                kept.append({"name": "pytest-rt", "text": f"[... {more} more sections "
                             f"truncated by pytest-rt]"})
                break
            text = cut_text(clean_text(text or ""), budget)
            budget -= len(text)
            kept.append({"name": cut_text(clean_text(name or ""), MAX_SHORT_CHARS, False),
                         "text": text})
        return _dumps(kept) if kept else None

    def custom_data(self) -> str | None:
        value = self.data.get("custom_data")
        if isinstance(value, str):  # nose2rt sends the object as JSON text
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                raise self.error("custom_data", "must be an object or null") from None
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._wrong("custom_data", "an object or null", value)
        # Refused, not cut: custom_data is the user's own structure (a Git ref, a
        # build URL); a silently pruned copy would mislead the tools that read it.
        depth = depth_of(value, MAX_DEPTH)
        if depth > MAX_DEPTH:
            raise self.error(
                "custom_data", f"is nested more than {MAX_DEPTH} levels deep ({depth} or more)"
            )
        text = _dumps(value)
        if len(text) > MAX_CUSTOM_DATA_BYTES:
            raise self.error(
                "custom_data",
                f"is {len(text)} bytes as JSON, more than the limit of {MAX_CUSTOM_DATA_BYTES}",
            )
        return text

    def collect_errors(self) -> str | None:
        value = self.data.get("collect_errors")
        if value is None:
            return None
        if not isinstance(value, list):
            raise self._wrong("collect_errors", "an array", value)
        errors = []
        for item in value:
            if not isinstance(item, dict):
                raise self._wrong("collect_errors", 'an array of {"nodeid", "msg"}', item)
            nodeid, msg = item.get("nodeid"), item.get("msg")
            if not isinstance(nodeid, (str, type(None))) or not isinstance(msg, (str, type(None))):
                raise self.error("collect_errors", "nodeid and msg must be strings")
            errors.append({
                "nodeid": cut_text(nodeid or "", MAX_NAME_CHARS, newline=False),
                "msg": cut_text(msg or "", MAX_MSG_CHARS),
            })
        if len(errors) > MAX_LIST_ITEMS:
            more = len(errors) - MAX_LIST_ITEMS
            errors = errors[:MAX_LIST_ITEMS]
            errors.append({"nodeid": "", "msg": f"[... {more} more truncated by pytest-rt]"})
        return _dumps(errors)

    def tests(self, max_tests: int) -> tuple[TestDecl, ...]:
        value = self.data.get("tests")
        if value is None:
            return ()
        if isinstance(value, dict):  # the unittest family: {"test_m": "pkg.mod.Cls.test_m"}
            items: list[Any] = [
                {"nodeid": dotted, "location": name} for name, dotted in value.items()
            ]
        elif isinstance(value, list):
            items = value
        else:
            raise self._wrong("tests", "an array of tests", value)
        if len(items) > max_tests:
            # 413: too large to write at once (it would hold the one writer), not malformed.
            raise IngestError(
                413,
                f"{self.where}: field 'tests': lists {len(items)} tests, more than the limit "
                f"of {max_tests} per startTestRun (--max-tests-per-run); the tests' own "
                "events are still taken, without the list",
            )
        return tuple(self._test(item, i) for i, item in enumerate(items))

    def _test(self, item: Any, i: int) -> TestDecl:
        if isinstance(item, str):
            item = {"nodeid": item}
        if not isinstance(item, dict):
            raise self.error("tests", f"entry {i} must be an object, got {_type_name(item)}")
        entry = _Fields(item, None)
        entry.where = f"{self.where}: tests[{i}]"
        nodeid = entry.name("nodeid")
        return TestDecl(
            nodeid=nodeid,
            key=nodeid_key(nodeid),
            location=entry.opt_str("location", MAX_NAME_CHARS),
            uuid=entry.opt_str("uuid", MAX_SHORT_CHARS),
            description=entry.opt_str("description", MAX_MSG_CHARS),
            file=(
                entry.opt_str("file", MAX_NAME_CHARS)
                or (nodeid.split("::", 1)[0] if "::" in nodeid else None)
            ),
            markers=entry.str_list("markers", MAX_SHORT_CHARS),
        )


def _dumps(value: Any) -> str:
    try:
        # ensure_ascii escapes NUL and lone surrogates: the text stores anywhere.
        return json.dumps(value, ensure_ascii=True)
    except (ValueError, RecursionError):
        raise IngestError(422, "custom_data or collect_errors cannot be stored") from None
