"""The receiver spells the protocol's words as pytest_rt.protocol does.

Where a word must be written out again (a ``Literal`` for mypy and FastAPI, a
``NamedTuple``'s fields), these tests fail as soon as the copy drifts.
"""

from __future__ import annotations

import json
from typing import get_args

import httpx
import pytest
from rt_server_events import Run

from pytest_rt import protocol
from pytest_rt.server import api_schema, app, ingest, loader, status


def test_the_api_status_types_are_the_protocol_words() -> None:
    assert get_args(api_schema.TestStatus) == protocol.SHOWN_STATUSES
    assert get_args(api_schema.JobStatus) == protocol.JOB_STATUSES
    assert app.JobStatus is api_schema.JobStatus
    assert get_args(api_schema.Job.model_fields["status"].annotation) == protocol.JOB_STATUSES
    assert get_args(api_schema.JobTest.model_fields["status"].annotation) == (
        protocol.SHOWN_STATUSES
    )


def test_the_job_status_rules_use_the_protocol_words() -> None:
    assert status.FINAL == protocol.STATUSES
    assert status.COUNT_KEYS == protocol.SHOWN_STATUSES
    assert status.JOB_STATUSES == protocol.JOB_STATUSES
    assert status.FINISHED == protocol.FINISHED_JOB_STATUSES


def test_ingest_reads_the_protocol_words() -> None:
    assert ingest.STATUSES == protocol.STATUSES
    assert ingest.CI_FIELDS == protocol.CI_FIELDS
    assert ingest.Ci._fields == protocol.CI_FIELDS
    assert api_schema.Ci.model_fields.keys() == set(protocol.CI_FIELDS)
    aliases = {o: protocol.STATUS_OF[o] for o in protocol.OUTCOMES if o not in protocol.STATUSES}
    assert {o: status for o, (status, _) in ingest.STATUS_ALIASES.items()} == aliases


def test_every_event_type_of_the_protocol_is_taken() -> None:
    run = Run()
    for kind in (*protocol.EVENT_TYPES, *protocol.UNITTEST_EVENT_TYPES):
        event = {**run.stop("t.py::t"), "type": kind}
        assert ingest.parse_body(json.dumps(event).encode())


def test_the_loader_headers_are_the_protocol_names() -> None:
    assert loader.BATCH_HEADER[0] == protocol.BATCH_HEADER.lower().encode()
    assert loader.HEARTBEAT_HEADER[0] == protocol.HEARTBEAT_HEADER.lower().encode()
    assert protocol.DASHBOARD_HEADER.lower().encode() == loader.DASHBOARD_HEADER


@pytest.mark.anyio
async def test_an_answer_carries_the_protocol_headers(client: httpx.AsyncClient) -> None:
    response = await client.post("/loader", json=Run().start_run(["a::t"]))
    assert response.status_code == 200, response.text
    assert response.headers[protocol.BATCH_HEADER] == "1"
    assert int(response.headers[protocol.HEARTBEAT_HEADER]) > 0
    assert response.headers[protocol.DASHBOARD_HEADER] == "http://127.0.0.1/"
