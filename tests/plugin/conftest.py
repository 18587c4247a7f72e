"""Helpers for the plugin's tests: what every received stream must satisfy.

`stream()` checks the invariants docs/protocol.md promises for any run (one
startTestRun first, one stopTestRun last, one start and one stop per test,
seq 1..N, unique event ids, the documented fields with their types) and hands
back the events arranged for the assertions a test makes about its own case.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

HEX32 = re.compile(r"^[0-9a-f]{32}$")
STAMP = re.compile(r"^\d{10,}\.\d{6}$")  # the seed's time strings: Unix seconds, 6 decimals

COMMON = {"fw", "type", "job_id", "custom_id", "event_id", "run_id", "seq"}
FIELDS = {
    "startTestRun": COMMON | {
        "tests", "env", "startTime", "custom_data", "collect_errors", "xdist", "workers",
        "rootdir", "pytest_version", "plugin_version", "project", "ci", "shards",
    },
    "startTestItem": COMMON | {"test", "startTime", "uuid", "worker"},
    "stopTestItem": COMMON | {
        "test", "status", "msg", "stopTime", "uuid", "outcome", "when", "duration", "worker",
        "reruns", "rerun_msgs", "sections",
    },
    "stopTestRun": COMMON | {
        "stopTime", "send_report", "exitstatus", "interrupted", "counts", "total", "duration",
        "collect_errors",
    },
}
CI_FIELDS = ("provider", "repository", "branch", "commit", "pull_request", "build", "build_url")
ENTRY_FIELDS = {"location", "nodeid", "uuid", "description", "file", "markers"}
COUNT_KEYS = {"passed", "failed", "error", "skipped", "xfailed", "xpassed", "interrupted",
              "not_started"}
STATUSES = {"passed", "failed", "error", "skipped"}
OUTCOMES = {"passed", "failed", "error", "skipped", "xfailed", "xpassed", "interrupted"}


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class Stream:
    """One run's events, checked, arranged by type and by test."""

    events: list[dict[str, Any]]
    start: dict[str, Any]
    stop: dict[str, Any]
    starts: dict[str, dict[str, Any]]
    stops: dict[str, dict[str, Any]]

    @property
    def tests(self) -> list[str]:
        """Node ids listed by startTestRun, in its order."""
        return [entry["nodeid"] for entry in self.start["tests"]]

    @property
    def entries(self) -> dict[str, dict[str, Any]]:
        return {entry["nodeid"]: entry for entry in self.start["tests"]}

    @property
    def started(self) -> list[str]:
        """Node ids in the order their startTestItem arrived."""
        return [e["test"] for e in self.events if e["type"] == "startTestItem"]

    def only(self, nodeid_suffix: str) -> dict[str, Any]:
        """The stopTestItem of the one test whose node id ends with the suffix."""
        found = [stop for nodeid, stop in self.stops.items() if nodeid.endswith(nodeid_suffix)]
        assert len(found) == 1, (nodeid_suffix, list(self.stops))
        return found[0]


def check_stream(events: list[dict[str, Any]]) -> Stream:
    """Assert what holds for every run, and return the events arranged."""
    assert events, "the receiver got nothing"
    types = [e["type"] for e in events]
    assert types[0] == "startTestRun", types
    assert types[-1] == "stopTestRun", types
    assert types.count("startTestRun") == 1, types
    assert types.count("stopTestRun") == 1, types
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert len({e["event_id"] for e in events}) == len(events)
    assert len({e["run_id"] for e in events}) == 1
    assert len({e["job_id"] for e in events}) == 1
    assert len({e["custom_id"] for e in events}) == 1
    for event in events:
        assert set(event) == FIELDS[event["type"]], event["type"]
        assert event["fw"] == "2"
        assert HEX32.match(event["event_id"]), event["event_id"]
        assert HEX32.match(event["run_id"]), event["run_id"]
        assert isinstance(event["job_id"], str) and event["job_id"]
        assert event["custom_id"] is None or isinstance(event["custom_id"], str)
    start, stop = events[0], events[-1]
    _check_start_run(start)
    _check_stop_run(stop)
    starts: dict[str, dict[str, Any]] = {}
    stops: dict[str, dict[str, Any]] = {}
    uuids = {entry["nodeid"]: entry["uuid"] for entry in start["tests"]}
    for event in events[1:-1]:
        assert event["type"] in ("startTestItem", "stopTestItem"), event["type"]
        nodeid = event["test"]
        if event["type"] == "startTestItem":
            assert nodeid not in starts, f"two startTestItem for {nodeid}"
            _check_start_item(event)
            starts[nodeid] = event
        else:
            assert nodeid in starts, f"stopTestItem before startTestItem for {nodeid}"
            assert nodeid not in stops, f"two stopTestItem for {nodeid}"
            _check_stop_item(event)
            assert event["uuid"] == starts[nodeid]["uuid"]
            assert event["worker"] == starts[nodeid]["worker"]
            stops[nodeid] = event
        if nodeid in uuids:
            assert event["uuid"] == uuids[nodeid], nodeid
    assert set(starts) == set(stops), "a started test without its stopTestItem"
    return Stream(events, start, stop, starts, stops)


def _check_start_run(event: dict[str, Any]) -> None:
    assert isinstance(event["startTime"], float), event["startTime"]
    assert isinstance(event["tests"], list)
    for entry in event["tests"]:
        assert set(entry) == ENTRY_FIELDS, entry
        for name in ("location", "nodeid", "uuid", "file"):
            assert isinstance(entry[name], str) and entry[name], (name, entry)
        assert entry["description"] is None or isinstance(entry["description"], str)
        assert isinstance(entry["markers"], list)
        assert all(isinstance(m, str) for m in entry["markers"])
        assert entry["nodeid"].split("::")[0] == entry["file"]
    assert len({entry["nodeid"] for entry in event["tests"]}) == len(event["tests"])
    assert len({entry["uuid"] for entry in event["tests"]}) == len(event["tests"])
    assert event["env"] is None or isinstance(event["env"], str)
    assert event["custom_data"] is None or isinstance(event["custom_data"], dict)
    assert isinstance(event["project"], str) and event["project"]
    assert set(event["ci"]) == set(CI_FIELDS), event["ci"]
    assert all(v is None or isinstance(v, str) for v in event["ci"].values()), event["ci"]
    assert event["shards"] is None or isinstance(event["shards"], int)
    _check_collect_errors(event["collect_errors"])
    assert isinstance(event["xdist"], bool)
    assert isinstance(event["workers"], int) and event["workers"] >= 0
    assert event["workers"] == 0 or event["xdist"]
    for name in ("rootdir", "pytest_version", "plugin_version"):
        assert isinstance(event[name], str) and event[name], name
    assert event["pytest_version"] == pytest.__version__


def _check_stop_run(event: dict[str, Any]) -> None:
    assert STAMP.match(event["stopTime"]), event["stopTime"]
    assert event["send_report"] in ("0", "1")
    assert isinstance(event["exitstatus"], int) and not isinstance(event["exitstatus"], bool)
    assert isinstance(event["interrupted"], bool)
    assert set(event["counts"]) == COUNT_KEYS
    assert all(isinstance(n, int) and n >= 0 for n in event["counts"].values())
    assert isinstance(event["total"], int)
    assert is_number(event["duration"]) and event["duration"] >= 0
    _check_collect_errors(event["collect_errors"])


def _check_collect_errors(errors: object) -> None:
    assert isinstance(errors, list)
    for error in errors:
        assert set(error) == {"nodeid", "msg"}
        assert isinstance(error["nodeid"], str) and isinstance(error["msg"], str)


def _check_start_item(event: dict[str, Any]) -> None:
    assert STAMP.match(event["startTime"]), event["startTime"]
    assert isinstance(event["test"], str) and event["test"]
    assert isinstance(event["uuid"], str) and event["uuid"]
    assert event["worker"] is None or isinstance(event["worker"], str)


def _check_stop_item(event: dict[str, Any]) -> None:
    assert STAMP.match(event["stopTime"]), event["stopTime"]
    assert event["status"] in STATUSES
    assert event["outcome"] in OUTCOMES
    assert isinstance(event["msg"], str)
    assert event["when"] in ("setup", "call", "teardown", None)
    assert is_number(event["duration"]) and event["duration"] >= 0
    assert isinstance(event["reruns"], int) and event["reruns"] >= 0
    assert isinstance(event["rerun_msgs"], list) and len(event["rerun_msgs"]) == event["reruns"]
    assert all(isinstance(m, str) for m in event["rerun_msgs"])
    assert isinstance(event["sections"], list)
    for section in event["sections"]:
        assert set(section) == {"name", "text"} and all(isinstance(v, str) for v in
                                                         section.values()), section


@pytest.fixture
def stream(receiver: Any) -> Callable[..., Stream]:
    """Call after a run: the receiver's events (or the events given), checked and arranged."""

    def check(events: list[dict[str, Any]] | None = None) -> Stream:
        return check_stream(receiver.events if events is None else events)

    return check


@pytest.fixture
def run_bare(pytester: pytest.Pytester) -> Callable[..., pytest.RunResult]:
    """An in-process run with --rt but no --rt-url: for the tests of where the URL comes from."""

    def run(*args: str) -> pytest.RunResult:
        spool = str(pytester.path / ".spool")
        return pytester.runpytest("--rt", "--rt-spool", spool, "-p", "no:cacheprovider",
                                  "--rt-flush-timeout", "1", *args)

    return run


@pytest.fixture
def spare() -> tuple[str, ...]:
    """Arguments that keep a subprocess run lean: the venv's heavy plugins the inner runs don't
    need (about 2 s of start-up each run). Blocking a plugin that is not installed is harmless."""
    return ("-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:anyio")


@pytest.fixture
def only_xdist(monkeypatch: pytest.MonkeyPatch) -> tuple[str, ...]:
    """Load just xdist and pytest-rt (xdist's documented way with plugin autoload disabled):
    each xdist worker then starts in a fraction of a second instead of importing every
    plugin of the venv. Inherited by subprocesses and xdist workers through the environment."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return ("-p", "xdist.plugin", "-p", "pytest_rt")
