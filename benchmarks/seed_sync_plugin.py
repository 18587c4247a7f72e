"""The original 2018 plugin's delivery, for comparison only: one synchronous POST
per event on the test thread (http.client with keep-alive, which is kinder than
the original's new `requests` session per event, and a timeout it did not have).
Loaded by benchmarks/bench_plugin.py with `-p seed_sync_plugin`."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlsplit

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--seed-url")


class SeedSync:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.path = parts.path
        self.conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)

    def post(self, payload: dict[str, Any]) -> None:
        self.conn.request("POST", self.path, body=json.dumps(payload),
                          headers={"Content-Type": "application/json"})
        self.conn.getresponse().read()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        tests = [{"location": i.location[2], "nodeid": i.nodeid} for i in session.items]
        self.post({"fw": "2", "type": "startTestRun", "tests": tests, "startTime": time.time(),
                   "job_id": "seed", "env": None})

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.post({"fw": "2", "type": "startTestItem", "job_id": "seed", "test": nodeid,
                   "startTime": str(time.time())})

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            self.post({"fw": "2", "type": "stopTestItem", "job_id": "seed",
                       "test": report.nodeid, "status": report.outcome,
                       "msg": report.longreprtext, "stopTime": str(time.time())})

    def pytest_sessionfinish(self) -> None:
        self.post({"fw": "2", "type": "stopTestRun", "job_id": "seed",
                   "stopTime": str(time.time())})
        self.conn.close()


def pytest_configure(config: pytest.Config) -> None:
    url = config.getoption("--seed-url")
    if url:
        config.pluginmanager.register(SeedSync(url), "seed-sync")
