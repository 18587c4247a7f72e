"""Pydantic models of the read API's answers, for /openapi.json.

The handlers build plain dicts (see ``reads``) and return them as they are;
these models are their shapes: the tests check every answer they read against
them, and docs/server.md's examples too. POST /loader's events are ``ingest``'s
models, which validate them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from . import ingest

# The protocol's words (pytest_rt.protocol) as types: mypy needs them written out,
# and tests/server/test_server_protocol_words.py fails when one drifts from protocol.py.
TestStatus = Literal["passed", "failed", "error", "skipped", "running", "not_started", "aborted"]
JobStatus = Literal["running", "abandoned", "passed", "failed", "interrupted"]
# A test against the previous finished job of its line (same project and branch):
# failing and not failing there (new), failing in both, or passing now and failing there.
Change = Literal["new", "still_failing", "fixed"]


class ErrorAnswer(BaseModel):
    error: str


class IngestAnswer(BaseModel):
    accepted: int
    duplicates: int


class Deleted(BaseModel):
    """DELETE /api/jobs/{job_id}'s answer."""

    deleted: str


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


class Ci(BaseModel):
    """Where the job's run comes from (startTestRun's ``ci``); each null when unknown."""

    provider: str | None = None
    repository: str | None = None
    branch: str | None = None
    commit: str | None = None
    pull_request: str | None = None
    build: str | None = None
    build_url: str | None = None  # http(s) only


class Job(BaseModel):
    job_id: str
    status: JobStatus
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
    shards: int | None = None  # the job's declared shard count (startTestRun's shards)
    runs: int = 0  # runs (pytest processes, shards) heard of
    runs_stopped: int = 0  # of them, those that sent stopTestRun
    reopened: int = 0  # times a run started after the job had finished
    last_heard: float | None = None  # when the receiver last heard of the job
    project: str | None = None
    rootdir: str | None = None
    ci: Ci = Ci()


class Section(BaseModel):
    name: str
    text: str


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
    sections: list[Section] = []  # what pytest captured: "Captured stdout call"...
    change: Change | None = None  # on a job page; null in live events


class Changes(BaseModel):
    """The job's tests that changed since ``previous_job_id`` (null: none to compare)."""

    previous_job_id: str | None = None
    new: int = 0
    still_failing: int = 0
    fixed: int = 0


class JobList(BaseModel):
    jobs: list[Job]
    total: int
    limit: int
    offset: int


class JobDetail(BaseModel):
    job: Job
    tests: list[JobTest]  # one page, in run order: ?offset=&limit=&status=&change=
    tests_total: int = 0  # tests of the job (of ?status= and ?change= when given)
    offset: int = 0
    limit: int = 0
    changes: Changes = Changes()


class HistoryResult(BaseModel):
    job_id: str
    env: str | None
    project: str | None = None
    branch: str | None = None
    commit: str | None = None
    build: str | None = None
    custom_id: str | None = None
    status: TestStatus
    outcome: str | None
    msg: str | None
    start_time: float | None
    stop_time: float | None
    duration: float | None


LiveKind = Literal["job_started", "test_started", "test_finished", "job_finished", "job_deleted"]


class LiveMessage(BaseModel):
    """One message of GET /api/events (the JSON of a ``data:`` line)."""

    kind: LiveKind  # the weightiest of kinds
    kinds: list[LiveKind]  # what happened in the window, in order
    job_id: str
    job: Job | None  # null when the job was deleted
    tests: list[JobTest] | None = None  # only on the stream of one job (?job=)


class History(BaseModel):
    nodeid: str
    project: str | None = None  # the ?project= the results are of (all when null)
    branch: str | None = None
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

# POST /loader's body (ingest's event models), for /openapi.json.
IngestBody = ingest.IngestBody
