"""Parse and validate ``POST /loader`` bodies into normalized records.

Pure functions, no I/O: the body's bytes go in, a list of immutable records comes
out, or :class:`IngestError` says what is wrong (status code and a message
naming the event's index and the field). The events are defined once, as the
pydantic models below: they validate, and they are POST /loader's body in
/openapi.json. Unknown keys are ignored, as
docs/protocol.md asks of receivers. Both families are read: the pytest one
(``fw: "2"``: ``startTestItem``/``stopTestItem``) and the seed's unittest one
(no ``fw`` or ``fw: "1"``: ``startTest``/``stopTest``, dotted names, ``msg`` as
a list of strings, ``tests`` as an object of name -> dotted name).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import CoreSchema, core_schema

from .. import protocol
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
CI_FIELDS = protocol.CI_FIELDS
# What pytest captured for one test (stopTestItem ``sections``), all sections together:
# the plugin caps each section at --rt-max-msg; this bounds a test whatever the client.
MAX_SECTIONS_CHARS = 256 * 1024
# Tests per startTestRun: SQLite writes ~45,000 declared tests a second on the
# 2-core machine, and one request holds the single writer: 50,000 keep the wait
# of every other client's POST near 1 s (``--max-tests-per-run`` moves it).
MAX_TESTS_PER_RUN = 50_000
STATUSES = protocol.STATUSES
# Statuses some clients send in pytest's words (an outcome), mapped to (status, outcome).
STATUS_ALIASES = {
    outcome: (protocol.STATUS_OF[outcome], outcome)
    for outcome in protocol.OUTCOMES
    if outcome not in STATUSES
}


UNKNOWN_TYPE = (
    f"unknown event type {{kind!r}}: expected {', '.join(protocol.EVENT_TYPES)} "
    f"(or {', '.join(protocol.UNITTEST_EVENT_TYPES)})"
)


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
    # startTestRun's ``ci``: every field of protocol.CI_FIELDS, None where unknown (only
    # http(s) build URLs are kept).
    ci: dict[str, str | None] | None = None
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


def ci_value(name: str, item: str | int | None) -> str | None:
    """One ``ci`` field as stored: a number as its text, blank as null, cut to its limit;
    a build URL that is not http(s) is dropped, as the dashboard links it."""
    if isinstance(item, int):
        item = str(item)  # a pull request or build number sent as a number
    if item is None or not item.strip():
        return None
    if name == "build_url":
        url = clean_text(item).strip()
        scheme = url.split(":", 1)[0].lower()
        ok = scheme in ("http", "https") and len(url) <= MAX_URL_CHARS
        return url if ok and url.isprintable() else None
    limit = MAX_SHORT_CHARS if name == "repository" else MAX_IDENTITY_CHARS
    return cut_text(clean_text(item), limit, newline=False)


def capped(kept: list[str], count: int) -> tuple[str, ...]:
    """The first MAX_LIST_ITEMS of ``count`` strings, then one marker saying how many more."""
    if count > MAX_LIST_ITEMS:
        more = f"[... {count - MAX_LIST_ITEMS} more truncated by pytest-rt]"
        kept = [*kept[:MAX_LIST_ITEMS], more]
    return tuple(kept)


def sections_json(pairs: Sequence[tuple[str | None, str | None]]) -> str | None:
    """stopTestItem's ``sections`` (name, text) as JSON text, at most MAX_SECTIONS_CHARS of
    text in all: the section that passes the budget is cut with the marker, later ones
    dropped with a note saying how many."""
    kept: list[dict[str, str]] = []
    budget = MAX_SECTIONS_CHARS
    for i, (name, text) in enumerate(pairs):
        if budget <= 0 or len(kept) >= MAX_LIST_ITEMS:
            more = len(pairs) - i
            kept.append({"name": "pytest-rt",
                         "text": f"[... {more} more sections truncated by pytest-rt]"})
            break
        text = cut_text(clean_text(text or ""), budget)
        budget -= len(text)
        kept.append({"name": cut_text(clean_text(name or ""), MAX_SHORT_CHARS, False),
                     "text": text})
    return ascii_json(kept) if kept else None


def collect_errors_json(pairs: Sequence[tuple[str | None, str | None]]) -> str:
    """Collection errors (nodeid, msg) as JSON text, each cut, at most MAX_LIST_ITEMS."""
    errors = [
        {"nodeid": cut_text(nodeid or "", MAX_NAME_CHARS, newline=False),
         "msg": cut_text(msg or "", MAX_MSG_CHARS)}
        for nodeid, msg in pairs[:MAX_LIST_ITEMS]
    ]
    if len(pairs) > MAX_LIST_ITEMS:
        more = len(pairs) - MAX_LIST_ITEMS
        errors.append({"nodeid": "", "msg": f"[... {more} more truncated by pytest-rt]"})
    return ascii_json(errors)


def type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def ascii_json(value: Any) -> str:
    try:
        # ensure_ascii escapes NUL and lone surrogates: the text stores anywhere.
        return json.dumps(value, ensure_ascii=True)
    except (ValueError, RecursionError):
        raise IngestError(422, "custom_data or collect_errors cannot be stored") from None


# ---- the events, defined once ---------------------------------------------------------
#
# These models are the event schema: they validate every POST /loader body, they are
# its body in /openapi.json, and tests/server/test_server_api_docs.py checks
# docs/protocol.md's field tables against them. Each field holds its value as stored
# (text cleaned and cut). Unknown keys are ignored, as docs/protocol.md asks of
# receivers; fields the receiver does not read are described but never checked.
# They replaced a hand-written validator: they cost less than the 10% of throughput
# issue 10 allowed (benchmarks/bench_ingest.py's docstring has the measurement).


def _clean(limit: int, newline: bool | None = None) -> AfterValidator:
    wrap = limit >= MAX_MSG_CHARS if newline is None else newline
    return AfterValidator(lambda v: cut_text(clean_text(v), limit, wrap))


def _id_text(value: str, required: bool = False) -> str:
    """An id (job, event, run), checked after cleaning: a length constraint on the str
    type would make pydantic-core refuse a lone surrogate outright, in its own words."""
    value = cut_text(clean_text(value), MAX_SHORT_CHARS, False)
    if len(value) > MAX_ID_LEN:
        raise ValueError(f"is longer than {MAX_ID_LEN} characters")
    if required and not value:
        raise ValueError("is empty")
    return value


def _job_id(value: str) -> str:
    value = _id_text(value, required=True)
    if not value.isprintable():
        # It is part of the job page's URL, where a newline cannot be routed.
        raise ValueError("must be printable: no control characters or line breaks")
    return value


def _time(value: Any) -> float:
    """Unix seconds: the seed sends numbers and numeric strings."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"must be a number or a numeric string, got {type_name(value)}")
    return _finite(value, MAX_TIME)


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number, got {type_name(value)}")
    return _finite(value, MAX_DURATION)


def _finite(value: str | float, bound: float) -> float:
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise ValueError(f"is not a number: {str(value)[:40]!r}") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    if not -bound <= number <= bound:
        raise ValueError(f"must be between {-bound:g} and {bound:g}")
    return number


def _msg(value: Any) -> str:
    """The seed's ``msg``: a string, or (unittest family) a list of strings."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        value = "\n".join(value)
    if not isinstance(value, str):
        raise ValueError(f"must be a string or an array of strings, got {type_name(value)}")
    return cut_text(clean_text(value), MAX_MSG_CHARS)


class _Between:
    """Validates an integer from ``low`` to ``high`` (a boolean is not one)."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer, got {type_name(value)}")
        if not self.low <= value <= self.high:
            raise ValueError(f"must be between {self.low} and {self.high}")
        return value

    def __get_pydantic_core_schema__(self, _source: Any, _handler: Any) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(self.check)

    def __get_pydantic_json_schema__(self, _schema: Any, _handler: Any) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}


def _custom_data(value: Any) -> str | None:
    """``custom_data`` as JSON text. Refused, not cut: it is the user's own structure (a
    Git ref, a build URL); a silently pruned copy would mislead the tools that read it."""
    if isinstance(value, str):  # nose2rt sends the object as JSON text
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise ValueError("must be an object or null") from None
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"must be an object or null, got {type_name(value)}")
    depth = depth_of(value, MAX_DEPTH)
    if depth > MAX_DEPTH:
        raise ValueError(f"is nested more than {MAX_DEPTH} levels deep ({depth} or more)")
    text = ascii_json(value)
    if len(text) > MAX_CUSTOM_DATA_BYTES:
        raise ValueError(
            f"is {len(text)} bytes as JSON, more than the limit of {MAX_CUSTOM_DATA_BYTES}"
        )
    return text


def _tests(value: Any) -> Any:
    """startTestRun's ``tests`` as a list of objects: the unittest family sends an object
    ``{"test_m": "pkg.mod.Cls.test_m"}``, and an entry may be a bare node id."""
    if isinstance(value, dict):
        return [{"nodeid": dotted, "location": name} for name, dotted in value.items()]
    if isinstance(value, list):
        return [{"nodeid": item} if isinstance(item, str) else item for item in value]
    return value


Name = Annotated[StrictStr, AfterValidator(lambda v: cut_name(clean_text(v)))]
Short = Annotated[StrictStr, _clean(MAX_SHORT_CHARS)]
Identity = Annotated[StrictStr, _clean(MAX_IDENTITY_CHARS)]
Long = Annotated[StrictStr, _clean(MAX_NAME_CHARS)]
Message = Annotated[StrictStr, _clean(MAX_MSG_CHARS)]
Marker = Annotated[StrictStr, _clean(MAX_SHORT_CHARS, True)]
Ident = Annotated[StrictStr, AfterValidator(_id_text)]
Time = Annotated[
    float, PlainValidator(_time),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string"}]}),
]
Seconds = Annotated[float, PlainValidator(_seconds), WithJsonSchema({"type": "number"})]
CiValue = Annotated[
    str | None,
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}),
]
# Fields the receiver does not read: described, never checked.
AnyString = Annotated[Any, WithJsonSchema({"type": "string"})]
AnyInteger = Annotated[Any, WithJsonSchema({"type": "integer"})]
AnyNumber = Annotated[Any, WithJsonSchema({"type": "number"})]


class _Lenient(BaseModel):
    # Unknown keys are ignored: what lets the protocol grow (docs/protocol.md).
    model_config = ConfigDict(extra="ignore", frozen=True)


class EventFields(_Lenient):
    """Fields every event carries."""

    fw: Annotated[Any, WithJsonSchema({"type": "string", "enum": [protocol.FW, "1"]})] = None
    job_id: Annotated[StrictStr, AfterValidator(_job_id)]
    custom_id: Short | None = None
    event_id: Ident | None = None
    run_id: Ident | None = None
    seq: Annotated[int, _Between(0, 2**62)] | None = None

    def meta(self) -> Meta:
        return Meta(self.job_id, self.run_id or "", self.event_id, self.custom_id)


class TestEntry(_Lenient):
    """An entry of startTestRun's ``tests``."""

    nodeid: Name
    location: Long | None = None
    uuid: Short | None = None
    description: Message | None = None
    file: Long | None = None
    markers: list[Marker] | None = None


class CollectErrorEntry(_Lenient):
    # Stored as JSON text with every non-ASCII character escaped: nothing to clean.
    nodeid: StrictStr | None = None
    msg: StrictStr | None = None


class CiFields(_Lenient):
    """startTestRun's ``ci``; a number (a build's, a pull request's) is taken as its text."""

    provider: CiValue = None
    repository: CiValue = None
    branch: CiValue = None
    commit: CiValue = None
    pull_request: CiValue = None
    build: CiValue = None
    build_url: CiValue = None  # kept only when an http(s) URL

    @field_validator("*", mode="plain")
    @classmethod
    def _as_stored(cls, value: Any, info: ValidationInfo) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (str, int, type(None))):
            raise ValueError(f"must be a string or null, got {type_name(value)}")
        return ci_value(info.field_name or "", value)


class SectionEntry(_Lenient):
    name: StrictStr | None = None
    text: StrictStr | None = None


class StartRunEvent(EventFields):
    """``startTestRun``: once per run, after collection."""

    type: Literal["startTestRun"]
    tests: Annotated[
        list[TestEntry],
        BeforeValidator(_tests, json_schema_input_type=list[TestEntry | str] | dict[str, str]),
    ] | None = None
    env: Short | None = None
    startTime: Time | None = None  # noqa: N815 - the seed's name
    custom_data: Annotated[
        str | None,
        PlainValidator(_custom_data),
        WithJsonSchema({"anyOf": [{"type": "object"}, {"type": "string"}, {"type": "null"}]}),
    ] = None
    collect_errors: list[CollectErrorEntry] | None = None
    xdist: StrictBool | None = None
    workers: Annotated[int, _Between(0, 1_000_000)] | None = None
    rootdir: Identity | None = None
    pytest_version: AnyString = None
    plugin_version: AnyString = None
    project: Identity | None = None
    ci: CiFields | None = None
    tests_omitted: AnyInteger = None
    shards: Annotated[int, _Between(0, MAX_SHARDS)] | None = None


class StartItemEvent(EventFields):
    """``startTestItem`` (``startTest`` in the seed's unittest family): a test starts."""

    type: Literal["startTestItem", "startTest"]
    test: Name
    startTime: Time | None = None  # noqa: N815
    uuid: Short | None = None
    worker: Short | None = None


class StopItemEvent(EventFields):
    """``stopTestItem`` (``stopTest`` in the seed's unittest family): a test's result."""

    type: Literal["stopTestItem", "stopTest"]
    test: Name
    # The seed's four words; pytest's outcomes are taken too (some clients send them).
    status: Literal["passed", "failed", "error", "skipped", "xfailed", "xpassed", "interrupted"]
    msg: Annotated[
        str,
        PlainValidator(_msg),
        WithJsonSchema({"anyOf": [{"type": "string"},
                                  {"type": "array", "items": {"type": "string"}}]}),
    ] | None = None
    stopTime: Time | None = None  # noqa: N815
    uuid: Short | None = None
    outcome: Short | None = None
    when: Short | None = None
    duration: Seconds | None = None
    worker: Short | None = None
    reruns: Annotated[int, _Between(0, INT_MAX)] | None = None
    rerun_msgs: list[Message] | None = None
    sections: list[SectionEntry] | None = None


class StopRunEvent(EventFields):
    """``stopTestRun``: once, last."""

    type: Literal["stopTestRun"]
    stopTime: Time | None = None  # noqa: N815
    send_report: Annotated[Any, WithJsonSchema({"type": "string", "enum": ["0", "1"]})] = None
    exitstatus: Annotated[int, _Between(INT_MIN, INT_MAX)] | None = None
    interrupted: StrictBool | None = None
    counts: Annotated[Any, WithJsonSchema({"type": "object"})] = None
    total: AnyInteger = None
    duration: AnyNumber = None
    collect_errors: list[CollectErrorEntry] | None = None


class HeartbeatEvent(EventFields):
    """``heartbeat``: the run is alive (only to receivers that announce it)."""

    type: Literal["heartbeat"]
    time: AnyNumber = None


AnyEvent = Annotated[
    StartRunEvent | StartItemEvent | StopItemEvent | StopRunEvent | HeartbeatEvent,
    Field(discriminator="type"),
]
# A POST /loader body: one event, or a batch of them (all or nothing).
IngestBody = AnyEvent | list[AnyEvent]
EVENT_TYPES = (*protocol.EVENT_TYPES, *protocol.UNITTEST_EVENT_TYPES)
_EVENT: TypeAdapter[Any] = TypeAdapter(AnyEvent)


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
    where = "the event" if index is None else f"event {index} of the batch"
    if not isinstance(data, dict):
        raise IngestError(422, f"{where}: must be a JSON object, got {type_name(data)}")
    kind = data.get("type")
    if kind not in EVENT_TYPES:
        if kind is None:
            problem = "is missing"
        elif not isinstance(kind, str):
            problem = f"must be a string, got {type_name(kind)}"
        else:
            problem = UNKNOWN_TYPE.format(kind=kind)
        raise IngestError(422, f"{where}: field 'type': {problem}")
    tests = data.get("tests")
    if kind == protocol.START_RUN and isinstance(tests, (list, dict)) and len(tests) > max_tests:
        # 413: too large to write at once (it would hold the one writer), not malformed.
        raise IngestError(
            413,
            f"{where}: field 'tests': lists {len(tests)} tests, more than the limit "
            f"of {max_tests} per startTestRun (--max-tests-per-run); the tests' own "
            "events are still taken, without the list",
        )
    try:
        event = _EVENT.validate_python(data)
    except ValidationError as exc:
        raise IngestError(422, f"{where}: {_problem(exc)}") from None
    return record_of(event)


_EXPECTED = {
    "string_type": "a string", "int_type": "an integer", "int_from_float": "an integer",
    "bool_type": "a boolean", "float_type": "a number", "list_type": "an array",
    "dict_type": "an object", "model_type": "an object", "model_attributes_type": "an object",
}


def _problem(exc: ValidationError) -> str:
    """The first problem of ``exc`` as the receiver says it: the field, then what is wrong."""
    error = exc.errors(include_url=False)[0]
    loc = error["loc"][1:]  # [0] is the event type (the union's tag)
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "missing":
        problem = "is missing"
    elif kind == "value_error":
        problem = str(ctx.get("error", error["msg"]))
    elif kind in _EXPECTED:
        problem = f"must be {_EXPECTED[kind]}, got {type_name(error['input'])}"
    elif kind == "string_too_short":
        problem = "is empty"
    elif kind == "string_too_long":
        problem = f"is longer than {ctx.get('max_length')} characters"
    elif kind == "literal_error" and isinstance(error["input"], str):
        problem = f"unknown {field} {error['input']!r}: expected one of {ctx.get('expected')}"
    elif kind == "literal_error":
        problem = f"must be a string, got {type_name(error['input'])}"
    else:
        problem = error["msg"]
    return f"field {field!r}: {problem}" if field else problem


def record_of(event: Any) -> Event:
    """The record the writer stores for one validated event."""
    if isinstance(event, StopItemEvent):
        return _item_stop(event)
    if isinstance(event, StartItemEvent):
        return ItemStart(event.meta(), event.test, nodeid_key(event.test), event.startTime,
                         event.uuid, event.worker)
    if isinstance(event, StartRunEvent):
        return _run_start(event)
    if isinstance(event, StopRunEvent):
        return RunStop(event.meta(), event.stopTime, event.exitstatus, event.interrupted,
                       _collect_errors(event.collect_errors))
    return Heartbeat(event.meta())


def _collect_errors(errors: list[CollectErrorEntry] | None) -> str | None:
    if errors is None:
        return None
    return collect_errors_json([(e.nodeid, e.msg) for e in errors])


def _item_stop(event: StopItemEvent) -> ItemStop:
    status, default_outcome = STATUS_ALIASES.get(event.status, (event.status, event.status))
    rerun_msgs = event.rerun_msgs or []
    sections = event.sections
    return ItemStop(
        meta=event.meta(),
        nodeid=event.test,
        key=nodeid_key(event.test),
        status=status,
        outcome=event.outcome or default_outcome,
        msg=event.msg or "",
        stop_time=event.stopTime,
        uuid=event.uuid,
        when=event.when,
        duration=event.duration,
        worker=event.worker,
        reruns=event.reruns or 0,
        rerun_msgs=json.dumps(list(capped(rerun_msgs, len(rerun_msgs)))),
        sections=None if sections is None else sections_json([(s.name, s.text) for s in sections]),
    )


def _run_start(event: StartRunEvent) -> RunStart:
    ci = {n: getattr(event.ci, n) for n in CI_FIELDS} if event.ci else dict.fromkeys(CI_FIELDS)
    return RunStart(
        meta=event.meta(),
        env=event.env,
        start_time=event.startTime,
        custom_data=event.custom_data,
        collect_errors=_collect_errors(event.collect_errors),
        xdist=event.xdist,
        workers=event.workers,
        tests=tuple(_test(entry) for entry in event.tests or ()),
        project=event.project,
        rootdir=event.rootdir,
        ci=ci,
        lineage=lineage(event.project, ci["branch"], event.env, event.rootdir),
        shards=event.shards or None,  # 0: not declared
    )


def _test(entry: TestEntry) -> TestDecl:
    markers = entry.markers or []
    nodeid = entry.nodeid
    return TestDecl(
        nodeid=nodeid,
        key=nodeid_key(nodeid),
        location=entry.location,
        uuid=entry.uuid,
        description=entry.description,
        file=entry.file or (nodeid.split("::", 1)[0] if "::" in nodeid else None),
        markers=capped(markers, len(markers)),
    )
