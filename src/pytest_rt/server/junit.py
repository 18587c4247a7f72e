"""A finished job as JUnit XML (``GET /api/jobs/{id}/junit.xml``).

The format is the one Ant's junit task made and Jenkins, GitLab, GitHub
actions, Azure and most test tools read: ``<testsuites>`` with one
``<testsuite>`` per job (a job's CI shards are one job: their tests are
merged into one file), a ``<testcase>`` per test with ``<failure>``,
``<error>`` or ``<skipped>``, and the captured output in ``<system-out>`` and
``<system-err>``. tests/server/junit.xsd is the schema the tests check it
against.

XML 1.0 cannot carry most control characters, not even escaped: terminal
colour codes are removed and any other such character becomes U+FFFD.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection

from . import reads

PAGE = 5000  # tests read per query
# ANSI escape sequences (colours, cursor moves) that pytest and loggers print.
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
# Everything XML 1.0 refuses (its Char production), lone surrogates included.
NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class StillRunning(Exception):
    """The job has not finished: its XML would say tests failed that are still running."""


def xml_text(value: Any) -> str:
    """``value`` as text XML 1.0 can hold (ElementTree escapes ``<``, ``&`` and quotes)."""
    text = "" if value is None else str(value)
    if "\x1b" in text:
        text = ANSI.sub("", text)
    return NOT_XML.sub("\ufffd", text)


def export(conn: Connection, job_id: str) -> bytes | None:
    """The job's JUnit XML; None when there is no such job. Raises StillRunning."""
    row = reads.job_row(conn, job_id)
    if row is None:
        return None
    if row["status"] == "running":
        raise StillRunning(job_id)
    counts = reads.status_counts(conn, [job_id])[job_id]
    job = reads.job_object(row, counts, None, time.time())
    return render(job, _tests(conn, job_id))


def _tests(conn: Connection, job_id: str) -> Iterator[dict[str, Any]]:
    offset = 0
    while True:
        rows = reads.test_rows(conn, job_id, offset=offset, limit=PAGE)
        for row in rows:
            yield reads.test_object(row, True, None)
        if len(rows) < PAGE:
            return
        offset += PAGE


def suite_name(job: Mapping[str, Any]) -> str:
    """The dashboard's job title (common.js jobTitle): custom id, else project · branch ·
    #build, else the job id."""
    if job.get("custom_id"):
        return str(job["custom_id"])
    ci = job.get("ci") or {}
    parts = [job.get("project"), ci.get("branch"), f"#{ci['build']}" if ci.get("build") else None]
    shown = [str(p) for p in parts if p]
    return " · ".join(shown) if shown else f"job {job['job_id']}"


def render(job: Mapping[str, Any], tests: Iterator[dict[str, Any]]) -> bytes:
    counts = job["counts"]
    total = job["total"]
    failures = counts["failed"]
    errors = counts["error"] + counts["aborted"]
    skipped = counts["skipped"] + counts["not_started"]
    duration = f"{job['duration'] or 0.0:.3f}"
    root = ET.Element("testsuites", {
        "name": "pytest-rt", "tests": str(total), "failures": str(failures),
        "errors": str(errors), "skipped": str(skipped), "time": duration,
    })
    suite = ET.SubElement(root, "testsuite", {
        "name": xml_text(suite_name(job)), "tests": str(total), "failures": str(failures),
        "errors": str(errors), "skipped": str(skipped), "time": duration,
        "timestamp": _timestamp(job["start_time"]), "id": "0",
    })
    props = ET.SubElement(suite, "properties")
    ci = job.get("ci") or {}
    for name, value in [
        ("job_id", job["job_id"]), ("status", job["status"]), ("env", job.get("env")),
        ("project", job.get("project")), ("custom_id", job.get("custom_id")),
        *((f"ci.{key}", value) for key, value in ci.items()),
    ]:
        if value is not None:
            ET.SubElement(props, "property", {"name": name, "value": xml_text(value)})
    for test in tests:
        _testcase(suite, test)
    ET.indent(root, space=" ")
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml + b"\n"


def _timestamp(start: float | None) -> str:
    when = datetime.fromtimestamp(start if start is not None else 0.0, tz=timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S")


def names(nodeid: str) -> tuple[str, str]:
    """(classname, name) as pytest's own junitxml writes them:
    ``tests/test_a.py::TestC::test_b[1]`` -> ``tests.test_a.TestC``, ``test_b[1]``."""
    parts = nodeid.split("::")
    path = parts[0]
    if path.endswith(".py"):
        path = path[:-3]
    module = path.replace("/", ".").replace("\\", ".")
    if len(parts) == 1:
        return module, parts[0]
    return ".".join([module, *parts[1:-1]]), parts[-1]


def _headline(msg: str) -> str:
    """The line of a failure that says most (its first ``E   `` line), as the dashboard."""
    lines = [line.rstrip() for line in msg.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E ")]
    pick = errors[0][1:].strip() if errors else (lines[-1] if lines else "")
    return pick[:300]


def _testcase(suite: ET.Element, test: Mapping[str, Any]) -> None:
    classname, name = names(test["nodeid"])
    attrs = {"classname": xml_text(classname), "name": xml_text(name)}
    if test["duration"] is not None:
        attrs["time"] = f"{max(0.0, test['duration']):.3f}"
    if test.get("file"):
        attrs["file"] = xml_text(test["file"])
    case = ET.SubElement(suite, "testcase", attrs)
    status, msg = test["status"], test.get("msg") or ""
    if status == "failed":
        tag = "failure"
    elif status in ("error", "aborted"):
        tag = "error"
    elif status in ("skipped", "not_started"):
        tag = "skipped"
    else:
        tag = ""
    if tag == "skipped":
        reason = "not run: the run ended before it started" if status == "not_started" else msg
        if test.get("outcome") == "xfailed":
            reason = f"xfail: {reason}" if reason else "xfail"
        ET.SubElement(case, "skipped", {"message": xml_text(_headline(reason) or reason)})
    elif tag:
        if status == "aborted":
            msg = msg or "aborted: the run ended without this test's result"
        element = ET.SubElement(case, tag, {
            "message": xml_text(_headline(msg)), "type": xml_text(test.get("outcome") or status),
        })
        element.text = xml_text(msg)
    out = [s for s in test.get("sections") or [] if "stderr" not in s["name"]]
    err = [s for s in test.get("sections") or [] if "stderr" in s["name"]]
    for tag_name, sections in (("system-out", out), ("system-err", err)):
        if sections:
            ET.SubElement(case, tag_name).text = xml_text("\n".join(
                f"----- {s['name']} -----\n{s['text']}" for s in sections
            ))
