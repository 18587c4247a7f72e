"""The real plugin streaming a real pytest run into a real receiver (uvicorn, free port)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from rt_api import HOOKS
from rt_server_live import LiveServer

SUITE = """
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("setup broke")

def test_passes():
    '''Adds up.'''
    assert 1 + 1 == 2

def test_fails():
    assert 1 == 2

def test_errors(broken):
    pass

def test_skips():
    pytest.skip("not today")

@pytest.mark.xfail(reason="known bug")
def test_xfails():
    assert False

@pytest.mark.xfail(reason="fixed already")
def test_xpasses():
    pass

@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    assert n
"""

EXPECTED = {
    "test_e2e.py::test_passes": ("passed", "passed"),
    "test_e2e.py::test_fails": ("failed", "failed"),
    "test_e2e.py::test_errors": ("error", "error"),
    "test_e2e.py::test_skips": ("skipped", "skipped"),
    "test_e2e.py::test_xfails": ("skipped", "xfailed"),
    "test_e2e.py::test_xpasses": ("passed", "xpassed"),
    "test_e2e.py::test_param[1]": ("passed", "passed"),
    "test_e2e.py::test_param[2]": ("passed", "passed"),
}


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.xdist)])
def test_a_pytest_run_arrives_whole(
    pytester: pytest.Pytester, live_server: LiveServer, workers: int
) -> None:
    if workers:
        pytest.importorskip("xdist")
    pytester.makepyfile(test_e2e=SUITE)
    job_id = f"e2e-{uuid.uuid4().hex}"
    args = [
        "--rt", "--rt-url", f"{live_server.url}/loader", "--rt-job-id", job_id, "--rte", "E2E",
        "--rt-spool", str(pytester.path / ".spool"), "-p", "no:cacheprovider",
    ]
    if workers:
        args += ["-n", str(workers)]
    result = pytester.runpytest_subprocess(*args, timeout=120)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    # The live link comes once and opens the job (before the tests' progress when the
    # receiver answers within 0.2 s: tests/plugin/test_summary.py; this machine may be busy).
    lines = result.stdout.lines
    live = [line for line in lines if line.startswith("pytest-rt: live at ")]
    assert live == [f"pytest-rt: live at {live_server.url}/jobs/{job_id}"], lines
    assert httpx.get(f"{live_server.url}/jobs/{job_id}").status_code == 200

    with httpx.Client(event_hooks=HOOKS, base_url=live_server.url) as client:
        detail = client.get(f"/api/jobs/{job_id}").json()
        history = client.get("/api/tests/history", params={"nodeid": "test_e2e.py::test_fails"})
    job = detail["job"]
    assert job["status"] == "failed"
    assert job["env"] == "E2E"
    assert job["exitstatus"] == 1
    assert job["total"] == len(EXPECTED)
    assert job["counts"] == {
        "passed": 4, "failed": 1, "error": 1, "skipped": 2,
        "running": 0, "not_started": 0, "aborted": 0,
    }
    assert job["outcome_counts"] == {"xfailed": 1, "xpassed": 1}
    assert job["xdist"] is bool(workers)
    tests = {t["nodeid"]: t for t in detail["tests"]}
    assert {n: (t["status"], t["outcome"]) for n, t in tests.items()} == EXPECTED
    assert "assert 1 == 2" in tests["test_e2e.py::test_fails"]["msg"]
    assert "setup broke" in tests["test_e2e.py::test_errors"]["msg"]
    assert all(t["duration"] is not None for t in tests.values())
    if workers:
        assert {t["worker"] for t in tests.values()} <= {"gw0", "gw1"}
    else:
        assert tests["test_e2e.py::test_passes"]["description"] == "Adds up."
    assert history.json()["results"][0]["job_id"] == job_id


def test_the_github_summary_lists_new_failures_first(
    pytester: pytest.Pytester, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    args = ["--rt", "--rt-url", f"{live_server.url}/loader", "--rt-project", "gh-summary",
            "--rt-spool", str(pytester.path / ".spool"), "-p", "no:cacheprovider"]
    pytester.makepyfile(test_s="def test_a():\n    assert 0\n\ndef test_b():\n    pass\n")
    pytester.runpytest_subprocess(*args, timeout=120).assert_outcomes(failed=1, passed=1)
    summary.write_text("")
    pytester.makepyfile(test_s="def test_a():\n    assert 0\n\ndef test_b():\n    assert 0\n")
    pytester.runpytest_subprocess(*args, timeout=120).assert_outcomes(failed=2)
    text = summary.read_text()
    assert "Failures (2, 1 new):" in text
    listed = [line for line in text.splitlines() if line.startswith("test_s.py::")]
    assert listed == ["test_s.py::test_b  [new]", "test_s.py::test_a"]
