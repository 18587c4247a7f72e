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
from pytest_rt.server import api_schema, app, ingest


def test_the_api_status_types_are_the_protocol_words() -> None:
    assert get_args(api_schema.TestStatus) == protocol.SHOWN_STATUSES
    assert get_args(api_schema.JobStatus) == protocol.JOB_STATUSES
    assert app.JobStatus is api_schema.JobStatus
    assert get_args(api_schema.Job.model_fields["status"].annotation) == protocol.JOB_STATUSES
    assert get_args(api_schema.JobTest.model_fields["status"].annotation) == (
        protocol.SHOWN_STATUSES
    )


def test_the_ci_fields_written_out_again_are_the_protocol_fields() -> None:
    assert api_schema.Ci.model_fields.keys() == set(protocol.CI_FIELDS)


def test_every_event_type_of_the_protocol_is_taken() -> None:
    run = Run()
    for kind in (*protocol.EVENT_TYPES, *protocol.UNITTEST_EVENT_TYPES):
        event = {**run.stop("t.py::t"), "type": kind}
        assert ingest.parse_body(json.dumps(event).encode())


@pytest.mark.anyio
async def test_an_answer_carries_the_protocol_headers(client: httpx.AsyncClient) -> None:
    response = await client.post("/loader", json=Run().start_run(["a::t"]))
    assert response.status_code == 200, response.text
    assert response.headers[protocol.BATCH_HEADER] == "1"
    assert int(response.headers[protocol.HEARTBEAT_HEADER]) > 0
    assert response.headers[protocol.DASHBOARD_HEADER] == "http://127.0.0.1/"
