"""Pydantic models of the read API's answers, for /openapi.json.

The handlers build plain dicts (see ``reads``) and return them as they are;
these models document the shapes (docs/server.md says the same in prose).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

TestStatus = Literal["passed", "failed", "error", "skipped", "not_started", "running", "aborted"]


class ErrorAnswer(BaseModel):
    error: str


class IngestAnswer(BaseModel):
    accepted: int
    duplicates: int


class Health(BaseModel):
    status: Literal["ok"]


class CollectError(BaseModel):
    nodeid: str
    msg: str


class Counts(BaseModel):
    passed: int
    failed: int
    error: int
    skipped: int
    running: int
    not_started: int
    aborted: int


class OutcomeCounts(BaseModel):
    xfailed: int
    xpassed: int


class Job(BaseModel):
    job_id: str
    status: Literal["running", "abandoned", "passed", "failed", "interrupted"]
    env: str | None
    custom_id: str | None
    custom_data: dict[str, Any] | None
    start_time: float | None
    stop_time: float | None
    duration: float | None
    total: int
    counts: Counts
    outcome_counts: OutcomeCounts
    exitstatus: int | None
    xdist: bool
    workers: int
    collect_errors: list[CollectError]
    eta_seconds: float | None
    last_heard: float | None = None  # when the receiver last heard of the job


class JobTest(BaseModel):
    nodeid: str
    location: str | None
    uuid: str | None
    description: str | None
    file: str | None
    markers: list[str]
    status: TestStatus
    outcome: str | None
    msg: str | None
    when: str | None
    start_time: float | None
    stop_time: float | None
    duration: float | None
    worker: str | None
    reruns: int
    rerun_msgs: list[str]
    history_median: float | None


class JobList(BaseModel):
    jobs: list[Job]
    total: int
    limit: int
    offset: int


class JobDetail(BaseModel):
    job: Job
    tests: list[JobTest]  # one page, in run order: ?offset=&limit=&status=
    tests_total: int = 0  # tests of the job (of ?status= when given)
    offset: int = 0
    limit: int = 0


class HistoryResult(BaseModel):
    job_id: str
    env: str | None
    status: TestStatus
    outcome: str | None
    msg: str | None
    start_time: float | None
    stop_time: float | None
    duration: float | None


class History(BaseModel):
    nodeid: str
    results: list[HistoryResult]
    flaky: bool


INGEST_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorAnswer, "description": text}
    for code, text in (
        (400, "The body is not JSON"),
        (401, "Missing or wrong token (when the server has one)"),
        (408, "The body did not arrive within --body-timeout"),
        (413, "The body is larger than --max-body, or a startTestRun lists more tests than "
              "--max-tests-per-run"),
        (415, "The Content-Type is not application/json"),
        (421, "The Host header is not one the receiver answers to (--allowed-host)"),
        (422, "Not an event: wrong type, unknown event type, missing job_id, custom_data "
              "nested deeper than 32 levels or larger than 64 KB..."),
        (503, "Request bodies in flight hold the --max-inflight budget: retry shortly"),
    )
}

_EVENT = {
    "type": "object",
    "required": ["type", "job_id"],
    "properties": {
        "type": {
            "type": "string",
            "enum": [
                "startTestRun", "startTestItem", "stopTestItem", "stopTestRun",
                "startTest", "stopTest", "heartbeat",
            ],
        },
        "job_id": {"type": "string"},
        "fw": {"type": "string"},
        "event_id": {"type": "string"},
        "run_id": {"type": "string"},
        "seq": {"type": "integer"},
        "test": {"type": "string"},
        "status": {"type": "string"},
    },
    "additionalProperties": True,
}

INGEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "One event (docs/protocol.md) or an array of events (all-or-nothing).",
        "content": {
            "application/json": {
                "schema": {"oneOf": [_EVENT, {"type": "array", "items": _EVENT}]}
            }
        },
    }
}
