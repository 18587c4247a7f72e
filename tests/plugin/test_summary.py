"""What the user sees: one summary line when all is well, and nothing at all without --rt."""

from __future__ import annotations

import re
import threading
import time

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


# -- the live link -----------------------------------------------------------------------

LIVE = "pytest-rt: live at "


def with_cache(rt):
    """The inner run's arguments, pytest's cache on (where earlier links are kept)."""
    return [a for a in rt.args() if a not in ("-p", "no:cacheprovider")]


def test_the_live_link_comes_first_when_the_receiver_has_a_dashboard(rt, receiver):
    receiver.behaviour.dashboard = "http://dash.example:8765/rt/"
    rt.pytester.makepyfile(test_mod="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    # A first run learns the link (on a loaded machine its answer may come after 0.2 s).
    rt.pytester.runpytest(*with_cache(rt))
    result = rt.pytester.runpytest(*with_cache(rt), "--rt-job-id", "job:1.x")
    lines = result.stdout.lines
    live = [i for i, line in enumerate(lines) if line.startswith(LIVE)]
    assert [lines[i] for i in live] == [f"{LIVE}http://dash.example:8765/rt/jobs/job%3A1.x"]
    assert live[0] < next(i for i, line in enumerate(lines) if line.startswith("test_mod.py"))


@pytest.mark.parametrize("announced", [None, "javascript:alert(1)", "http://a b/", "ftp://x/"])
def test_no_live_link_without_a_dashboard_worth_showing(rt, receiver, announced):
    receiver.behaviour.dashboard = announced
    rt.pytester.makepyfile(test_mod="def test_a():\n    pass\n")
    result = rt.run()
    assert LIVE not in result.stdout.str()


@pytest.mark.xdist
def test_the_live_link_comes_once_under_xdist(rt, receiver):
    pytest.importorskip("xdist")
    receiver.behaviour.dashboard = "http://127.0.0.1:1/"
    rt.pytester.makepyfile(test_mod="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = rt.run("-n", "2")
    assert [line for line in result.stdout.lines if line.startswith(LIVE)] == [
        f"{LIVE}http://127.0.0.1:1/jobs/{receiver.events[0]['job_id']}"]


def test_a_slow_receiver_gets_the_link_it_announced_on_an_earlier_run(rt, receiver):
    receiver.behaviour.dashboard = "http://dash.example/"
    rt.pytester.makepyfile(test_mod="def test_a():\n    pass\n")
    first = rt.pytester.runpytest(*with_cache(rt))
    assert LIVE in first.stdout.str()
    receiver.behaviour.delay = 1.0  # its first answer comes too late to wait for
    started = time.monotonic()
    second = rt.pytester.runpytest(*with_cache(rt), "--rt-job-id", "again")
    lines = second.stdout.lines
    assert f"{LIVE}http://dash.example/jobs/again" in lines
    assert lines.index(f"{LIVE}http://dash.example/jobs/again") < next(
        i for i, line in enumerate(lines) if line.startswith("test_mod.py"))
    assert time.monotonic() - started < 30


def test_a_slow_first_answer_brings_the_link_after_the_test_it_came_during(rt, receiver):
    receiver.behaviour.dashboard = "http://dash.example/"
    receiver.behaviour.delay = 0.5  # no earlier run, no cache: the link comes late, once
    rt.pytester.makepyfile(test_mod="import time\n\ndef test_a():\n    time.sleep(2)\n"
                                    "\ndef test_b():\n    pass\n")
    result = rt.run("--rt-job-id", "late")
    assert [line for line in result.stdout.lines if line.startswith(LIVE)] == [
        f"{LIVE}http://dash.example/jobs/late"]
