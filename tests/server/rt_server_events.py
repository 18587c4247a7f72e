"""Build protocol events (docs/protocol.md) for the receiver's tests."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

T0 = 1_700_000_000.0


def new_id() -> str:
    return uuid.uuid4().hex


class Run:
    """One pytest process (one ``run_id``) of a job, producing events the plugin's way."""

    def __init__(self, job_id: str | None = None, run_id: str | None = None) -> None:
        self.job_id = job_id or str(uuid.uuid4())
        self.run_id = run_id or new_id()
        self._seq = itertools.count(1)

    def event(self, type_: str, **fields: Any) -> dict[str, Any]:
        return {
            "fw": "2",
            "type": type_,
            "job_id": self.job_id,
            "custom_id": None,
            "event_id": new_id(),
            "run_id": self.run_id,
            "seq": next(self._seq),
            **fields,
        }

    def start_run(self, nodeids: list[str], **fields: Any) -> dict[str, Any]:
        tests = [
            {
                "location": nodeid.split("::")[-1],
                "nodeid": nodeid,
                "uuid": new_id(),
                "description": None,
                "file": nodeid.split("::")[0],
                "markers": [],
            }
            for nodeid in nodeids
        ]
        base: dict[str, Any] = {
            "tests": tests, "env": None, "startTime": T0, "custom_data": None,
            "collect_errors": [], "xdist": False, "workers": 0, "rootdir": "proj",
            "pytest_version": "9.0", "plugin_version": "0.1.0",
        }
        return self.event("startTestRun", **(base | fields))

    def start(self, nodeid: str, at: float = T0 + 1, **fields: Any) -> dict[str, Any]:
        base = {"test": nodeid, "startTime": f"{at:.6f}", "uuid": None, "worker": None}
        return self.event("startTestItem", **(base | fields))

    def stop(
        self, nodeid: str, status: str = "passed", at: float = T0 + 2, **fields: Any
    ) -> dict[str, Any]:
        base = {
            "test": nodeid, "status": status, "msg": "", "stopTime": f"{at:.6f}",
            "uuid": None, "outcome": status, "when": "call", "duration": 1.0,
            "worker": None, "reruns": 0, "rerun_msgs": [],
        }
        return self.event("stopTestItem", **(base | fields))

    def stop_run(self, at: float = T0 + 10, **fields: Any) -> dict[str, Any]:
        base = {
            "stopTime": f"{at:.6f}", "send_report": "0", "exitstatus": 0,
            "interrupted": False, "counts": {}, "total": 0, "duration": 10.0,
            "collect_errors": [],
        }
        return self.event("stopTestRun", **(base | fields))

    def passing(
        self, nodeid: str, at: float = T0 + 1, duration: float = 1.0
    ) -> list[dict[str, Any]]:
        """The start and the stop of a test that passed."""
        return [
            self.start(nodeid, at=at),
            self.stop(nodeid, at=at + duration, duration=duration),
        ]
