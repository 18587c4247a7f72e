"""Runs that end early or oddly: Ctrl-C, -x, collection errors, pytest.exit, a receiver that is
down; and the runs that must send nothing (--collect-only, --help, --version)."""

from __future__ import annotations

import threading

import pytest

INTERRUPTED = """
def test_before():
    pass

def test_interrupted():
    raise KeyboardInterrupt

def test_after():
    pass
"""


def test_ctrl_c_stops_the_running_test_as_error_and_still_ends_the_run(rt, stream, spare):
    rt.pytester.makepyfile(test_one=INTERRUPTED)
    result = rt.run_subprocess(*spare)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    s = stream()
    assert s.started == ["test_one.py::test_before", "test_one.py::test_interrupted"]
    assert s.stops["test_one.py::test_before"]["status"] == "passed"
    stop = s.stops["test_one.py::test_interrupted"]
    assert stop["status"] == "error"
    assert stop["outcome"] == "interrupted"
    assert stop["when"] is None
    assert "interrupted" in stop["msg"].lower()
    assert "KeyboardInterrupt" in stop["msg"]
    assert "test_one.py::test_after" not in s.starts
    assert s.tests == ["test_one.py::test_before", "test_one.py::test_interrupted",
                       "test_one.py::test_after"]
    assert s.stop["interrupted"] is True
    assert s.stop["exitstatus"] == 2
    assert s.stop["total"] == 3
    assert s.stop["counts"]["passed"] == 1
    assert s.stop["counts"]["interrupted"] == 1
    assert s.stop["counts"]["not_started"] == 1
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_ctrl_c_in_a_fixture_stops_that_test_as_interrupted(rt, stream, spare):
    rt.pytester.makepyfile(test_one="""
        import pytest

        @pytest.fixture
        def ctrl_c():
            raise KeyboardInterrupt

        def test_it(ctrl_c):
            pass
    """)
    assert rt.run_subprocess(*spare).ret == pytest.ExitCode.INTERRUPTED
    s = stream()
    stop = s.stops["test_one.py::test_it"]
    assert (stop["status"], stop["outcome"]) == ("error", "interrupted")
    assert s.stop["interrupted"] is True


def test_ctrl_c_leaves_the_exit_code_as_it_is_without_rt(rt, stream, spare):
    rt.pytester.makepyfile(test_one=INTERRUPTED)
    without = rt.pytester.runpytest_subprocess("-p", "no:cacheprovider", *spare, timeout=60)
    with_rt = rt.run_subprocess(*spare)
    assert with_rt.ret == without.ret == pytest.ExitCode.INTERRUPTED
    with_rt.stdout.fnmatch_lines(["*KeyboardInterrupt*"])


def test_pytest_exit_in_a_test_stops_it_as_interrupted_and_keeps_its_return_code(rt, stream):
    rt.pytester.makepyfile(test_one="""
        import pytest

        def test_it():
            pytest.exit("enough", returncode=3)

        def test_after():
            pass
    """)
    result = rt.run()
    assert result.ret == 3
    s = stream()
    stop = s.stops["test_one.py::test_it"]
    assert (stop["status"], stop["outcome"]) == ("error", "interrupted")
    assert "enough" in stop["msg"]
    assert "test_one.py::test_after" not in s.starts
    assert s.stop["exitstatus"] == 3
    assert s.stop["interrupted"] is True


@pytest.mark.parametrize(("args", "ran"), [(["-x"], 2), (["--maxfail=2"], 3)])
def test_tests_not_started_after_x_get_no_item_events_and_are_counted(rt, stream, args, ran):
    rt.pytester.makepyfile(test_one="""
        def test_1(): pass
        def test_2(): assert False
        def test_3(): assert False
        def test_4(): pass
        def test_5(): pass
    """)
    result = rt.run(*args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    s = stream()
    expected = [f"test_one.py::test_{n}" for n in range(1, ran + 1)]
    assert s.started == expected
    assert list(s.stops) == expected
    assert len(s.tests) == 5
    assert s.stop["total"] == 5
    assert s.stop["counts"]["not_started"] == 5 - ran
    assert s.stop["counts"]["failed"] == ran - 1
    assert s.stop["counts"]["passed"] == 1
    assert s.stop["interrupted"] is True
    assert s.stop["exitstatus"] == 1


def test_a_complete_run_is_not_interrupted(rt, stream):
    rt.pytester.makepyfile(test_one="def test_1(): assert False\ndef test_2(): pass\n")
    rt.run()
    s = stream()
    assert s.stop["interrupted"] is False
    assert s.stop["counts"]["not_started"] == 0
    assert s.stop["exitstatus"] == 1


BROKEN_MODULE = "import no_such_module_for_pytest_rt\n"


def test_a_collection_error_reaches_the_receiver_and_the_run_still_ends(rt, stream):
    rt.pytester.makepyfile(test_good="def test_ok(): pass\n", test_broken=BROKEN_MODULE)
    result = rt.run()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    s = stream()
    assert [e["type"] for e in s.events] == ["startTestRun", "stopTestRun"]
    assert len(s.start["collect_errors"]) == 1
    error = s.start["collect_errors"][0]
    assert error["nodeid"] == "test_broken.py"
    assert "No module named 'no_such_module_for_pytest_rt'" in error["msg"]
    assert s.stop["collect_errors"] == [error]
    assert s.tests == ["test_good.py::test_ok"]
    assert s.stop["interrupted"] is True
    assert s.stop["exitstatus"] == 2
    assert s.stop["counts"]["not_started"] == 1


def test_with_continue_on_collection_errors_the_tests_run_and_the_error_is_reported(rt, stream):
    rt.pytester.makepyfile(test_good="def test_ok(): pass\n", test_broken=BROKEN_MODULE)
    result = rt.run("--continue-on-collection-errors")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    s = stream()
    assert s.stops["test_good.py::test_ok"]["status"] == "passed"
    assert [e["nodeid"] for e in s.start["collect_errors"]] == ["test_broken.py"]
    assert [e["nodeid"] for e in s.stop["collect_errors"]] == ["test_broken.py"]


def test_a_syntax_error_in_a_test_module_is_a_collection_error(rt, stream):
    rt.pytester.makepyfile(test_broken="def test_it(:\n    pass\n")
    rt.run()
    s = stream()
    assert [e["nodeid"] for e in s.start["collect_errors"]] == ["test_broken.py"]
    assert "SyntaxError" in s.start["collect_errors"][0]["msg"]
    assert s.tests == []


@pytest.mark.parametrize("args", [
    pytest.param(["--collect-only"], id="--collect-only"),
    pytest.param(["--co", "-q"], id="--co -q"),
    pytest.param(["--setup-only"], id="--setup-only"),
    pytest.param(["--setup-plan"], id="--setup-plan"),
    pytest.param(["--help"], id="--help"),
    pytest.param(["--version"], id="--version"),
])
def test_runs_that_run_no_test_send_nothing(rt, receiver, args):
    rt.pytester.makepyfile(test_one="def test_ok(): pass\n")
    result = rt.run(*args)
    assert result.ret == 0
    assert receiver.requests == 0
    assert not (rt.pytester.path / ".spool").exists()
    assert "pytest-rt: job" not in result.stdout.str()


def test_no_tests_collected_still_sends_a_start_and_a_stop(rt, stream):
    rt.pytester.makepyfile(test_one="x = 1\n")
    result = rt.run()
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    s = stream()
    assert s.tests == []
    assert s.stop["exitstatus"] == 5
    assert s.stop["total"] == 0


# -- a receiver that is down ----------------------------------------------------------------

@pytest.mark.parametrize(("body", "code"), [
    ("def test_ok(): pass\n", pytest.ExitCode.OK),
    ("def test_bad(): assert False\n", pytest.ExitCode.TESTS_FAILED),
])
def test_a_receiver_that_is_down_changes_no_exit_code_and_says_so_in_one_line(
        pytester, dead_url, body, code):
    pytester.makepyfile(test_one=body)
    without = pytester.runpytest("-p", "no:cacheprovider")
    result = pytester.runpytest("--rt", "--rt-url", dead_url, "--rt-flush-timeout", "1",
                                "--rt-spool", str(pytester.path / ".spool"))
    assert result.ret == without.ret == code
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output
    assert "Traceback" not in output
    problems = [line for line in result.stdout.lines if "cannot reach" in line]
    assert problems == [f"pytest-rt: cannot reach {dead_url}: connection refused"]
    result.stdout.fnmatch_lines([f"pytest-rt: job *: 0 events delivered, 4 not delivered*"
                                 f" to {dead_url}"])
    assert not [t for t in threading.enumerate() if t.name == "pytest-rt-sender"]


def test_a_receiver_that_never_answers_costs_a_bounded_wait_and_no_error(pytester, silent_port):
    pytester.makepyfile(test_one="def test_ok(): pass\n")
    url = f"http://127.0.0.1:{silent_port}/loader"
    result = pytester.runpytest("--rt", "--rt-url", url, "--rt-timeout", "0.2",
                                "--rt-flush-timeout", "0.5",
                                "--rt-spool", str(pytester.path / ".spool"))
    assert result.ret == 0
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines([f"pytest-rt: job *not delivered* to {url}"])
    assert not [t for t in threading.enumerate() if t.name == "pytest-rt-sender"]
