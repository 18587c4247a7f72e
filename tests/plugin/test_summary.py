"""What the user sees: one summary line when all is well, and nothing at all without --rt."""

from __future__ import annotations

import re
import threading

import pytest

OURS = re.compile(r"pytest-rt( replay)?: ")

THREAD = "pytest-rt-sender"
SEES_THREADS = f"""
import threading

def test_sender_thread():
    names = [thread.name for thread in threading.enumerate()]
    print("threads:", names)
    assert ({THREAD!r} in names) == EXPECTED
"""


def rt_lines(result: pytest.RunResult) -> list[str]:
    """What pytest-rt printed: its lines all start with "pytest-rt: " (replay's with
    "pytest-rt replay: "). Not any line that contains "pytest-rt": a path does when the clone's
    folder is named so, as in pytest 7.4's warnings."""
    return [line for line in result.outlines + result.errlines if OURS.match(line)]


@pytest.mark.parametrize("args", [[], ["-q"], ["-rA"]])
def test_a_run_that_goes_well_prints_one_line_job_delivered_count_and_endpoint(
        rt, stream, receiver, args):
    rt.pytester.makepyfile(test_one="def test_a(): pass\ndef test_b(): assert False\n")
    result = rt.run(*args)
    s = stream()
    assert rt_lines(result) == [
        f"pytest-rt: job {s.start['job_id']}: {len(s.events)} events delivered to {receiver.url}"]
    assert result.errlines == []


def test_the_summary_line_comes_once_under_xdist(rt, stream, receiver, only_xdist):
    pytest.importorskip("xdist")
    rt.pytester.makepyfile(test_one="def test_a(): pass\ndef test_b(): pass\n")
    result = rt.run(*only_xdist, "-n", "2")
    s = stream()
    assert rt_lines(result) == [
        f"pytest-rt: job {s.start['job_id']}: {len(s.events)} events delivered to {receiver.url}"]


def test_a_password_in_the_endpoint_is_not_printed(pytester, receiver):
    pytester.makepyfile(test_one="def test_a(): pass\n")
    url = receiver.url.replace("http://", "http://user:s3cret@")
    result = pytester.runpytest("--rt", "--rt-url", url, "--rt-spool",
                                str(pytester.path / ".spool"))
    assert result.ret == 0
    assert "s3cret" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["pytest-rt: job *: 4 events delivered to http://***@127.0.0.1:*"])


def test_the_sender_thread_runs_during_the_run_and_is_gone_after_it(rt, stream):
    rt.pytester.makepyfile(test_one=SEES_THREADS.replace("EXPECTED", "True"))
    rt.run().assert_outcomes(passed=1)
    assert stream().stops["test_one.py::test_sender_thread"]["status"] == "passed"
    assert THREAD not in [thread.name for thread in threading.enumerate()]


def test_without_rt_nothing_is_sent_no_thread_starts_and_no_file_is_written(pytester,
                                                                            receiver):
    pytester.makepyfile(test_one=SEES_THREADS.replace("EXPECTED", "False"))
    pytester.makeini(f"[pytest]\nrt_url = {receiver.url}\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--rt-return-job")
    result.assert_outcomes(passed=1)
    assert receiver.requests == 0
    assert rt_lines(result) == []
    assert sorted(p.name for p in pytester.path.iterdir()) == ["test_one.py", "tox.ini"]


def test_without_rt_nothing_beyond_the_hooks_is_imported(pytester, receiver, spare):
    pytester.makepyfile(test_one="""
        import sys

        def test_imports():
            loaded = sorted(name for name in sys.modules if name.startswith("pytest_rt"))
            assert loaded == ["pytest_rt", "pytest_rt.plugin", "pytest_rt.settings"], loaded
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *spare)
    result.assert_outcomes(passed=1)
    assert receiver.requests == 0


def test_a_job_file_that_cannot_be_written_is_said_even_when_all_was_delivered(rt, receiver):
    rt.pytester.makepyfile(test_mod="def test_ok():\n    pass\n")
    blocked = rt.pytester.path / "not_a_dir"
    blocked.write_text("")
    result = rt.run("--rt-job-file", str(blocked / "job.txt"))
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"pytest-rt: cannot write {blocked / 'job.txt'}*"])
