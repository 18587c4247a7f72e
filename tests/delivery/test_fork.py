"""A test that forks under --rt: no warning of ours, and the child sends nothing.

Python 3.12+ warns when a multi-threaded process forks; with --rt our sender
thread alone would make every forking test warn. The inner runs are
subprocesses: the outer test process has the receiver's threads, which would
be "the user's" there. So would pytest-rerunfailures' (it serves the status of
reruns from a thread whenever pytest-xdist is installed): it is blocked in the
runs that need our thread to be the only other one.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
import warnings

import pytest

from pytest_rt.delivery import Delivery
from pytest_rt.settings import Settings

from .helpers import assert_whole_stream, journals

needs_the_warning = pytest.mark.skipif(
    sys.version_info < (3, 12),
    reason="Python < 3.12 does not warn about fork() in a multi-threaded process")

NO_OTHER_THREADS = ("-p", "no:rerunfailures")

WARNING = ("*DeprecationWarning: This process (pid=*) is multi-threaded, "
           "use of fork() may lead to deadlocks in the child.*")

FORKS = """
import multiprocessing, os, threading, warnings

def test_000_forks():
    # What makes this process multi-threaded is our sender thread alone.
    assert sorted(t.name for t in threading.enumerate()) == ["MainThread", "pytest-rt-sender"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filters = warnings.filters
        before = list(filters)
        pid = os.fork()
        if pid == 0:
            os._exit(0 if warnings.filters is filters and filters == before else 3)
        after = warnings.filters
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert after is filters and after == before  # the filters, exactly as they were
    assert [str(w.message) for w in caught] == []

def nothing():
    pass

def test_001_multiprocessing_forks():
    process = multiprocessing.get_context("fork").Process(target=nothing)
    process.start()
    process.join(30)
    assert process.exitcode == 0
"""

FORKS_BESIDE_ITS_OWN_THREAD = """
import os, threading

def test_000_forks_beside_its_own_thread():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        _, status = os.waitpid(pid, 0)
    finally:
        stop.set()
        thread.join()
    assert os.waitstatus_to_exitcode(status) == 0
"""

# The child returns from the test: it goes on with the session (the next test, the
# hooks, the summary) and exits normally, as a careless fork in a test would.
CHILD_GOES_ON = """
import os

def test_000():
    pass

def test_001_forks():
    pid = os.fork()
    if pid == 0:
        return
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

def test_002():
    pass
"""


def nodeids(module: str, *names: str) -> list[str]:
    return [f"{module}.py::{name}" for name in names]


@needs_the_warning
def test_a_test_that_forks_under_rt_gets_no_warning_from_our_thread(rt, receiver):
    rt.pytester.makepyfile(test_forks=FORKS)
    # Not `-W error::DeprecationWarning`: CPython drops the fork warning silently when a
    # filter makes it an error, so only a warning that shows proves anything. An exception
    # in our fork hooks would come as an unraisable one: that fails the run.
    result = rt.run_subprocess(*NO_OTHER_THREADS,
                               "-W", "error::pytest.PytestUnraisableExceptionWarning",
                               timeout=60)
    result.assert_outcomes(passed=2, warnings=0)
    output = result.stdout.str() + result.stderr.str()
    assert "multi-threaded" not in output
    assert "warnings summary" not in output
    assert_whole_stream(receiver.unique(), nodeids(
        "test_forks", "test_000_forks", "test_001_multiprocessing_forks"))


@needs_the_warning
def test_a_users_own_thread_still_gets_its_fork_warning(rt, receiver):
    rt.pytester.makepyfile(test_forks=FORKS_BESIDE_ITS_OWN_THREAD)
    result = rt.run_subprocess(*NO_OTHER_THREADS, timeout=60)
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*warnings summary*", WARNING])
    assert_whole_stream(receiver.unique(),
                        nodeids("test_forks", "test_000_forks_beside_its_own_thread"))


def test_a_forked_child_that_goes_on_with_the_session_sends_nothing(rt, receiver):
    rt.pytester.makepyfile(test_child=CHILD_GOES_ON)
    result = rt.run_subprocess(timeout=60)
    # The child's session ends first: its 3 tests passed, and it delivered nothing.
    result.stdout.fnmatch_lines(["*pytest-rt: job *: 0 events delivered to *",
                                 "*pytest-rt: job *: 8 events delivered to *"])
    result.assert_outcomes(passed=3)
    # Every event of the parent exactly once: none duplicated from the child's journal
    # writes, none lost to the child removing the journal or closing the connection.
    assert len(receiver.events) == len(receiver.unique())
    assert_whole_stream(receiver.events,
                        nodeids("test_child", "test_000", "test_001_forks", "test_002"))
    assert not journals(rt.pytester.path / ".spool")


def event(i: int) -> dict[str, object]:
    return {"type": "x", "event_id": uuid.uuid4().hex, "seq": i}


def exit_code_of(pid: int, timeout: float = 15.0) -> int | None:
    """The child's exit code; None (and the child killed) if it hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def test_emit_and_finish_in_a_forked_child_leave_the_parents_delivery_whole(tmp_path,
                                                                              receiver):
    delivery = Delivery(Settings(url=receiver.url, spool_dir=tmp_path / "rt"), uuid.uuid4().hex)
    for i in range(1, 21):
        delivery.emit(event(i))
    journal = delivery.spool.path
    assert journal is not None
    with warnings.catch_warnings():
        # The receiver's threads live in this process: on 3.12+ the warning is real here.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for i in range(21, 41):  # the same seqs the parent is about to use
                delivery.emit(event(i))
            report = delivery.finish()
            code = 0 if report.produced == 0 and journal.exists() else 2
        finally:
            os._exit(code)
    assert exit_code_of(pid) == 0
    assert journal.exists()
    for i in range(21, 41):
        delivery.emit(event(i))
    report = delivery.finish()
    assert [e["seq"] for e in receiver.events] == list(range(1, 41))
    assert report.undelivered == 0
    assert not (tmp_path / "rt").exists()
