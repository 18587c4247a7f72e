"""pytest-rerunfailures: one start and one stop per test, with the final status and the reruns."""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_rerunfailures")

SUITE = """
import pathlib

import pytest

def attempt(name):
    path = pathlib.Path(__file__).with_name(name + ".count")
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n

def test_flaky():
    n = attempt("flaky")
    assert n > 2, f"attempt {n} failed"

def test_broken():
    n = attempt("broken")
    assert False, f"attempt {n} failed"

def test_steady():
    pass

@pytest.fixture
def flaky_setup():
    n = attempt("setup")
    if n == 1:
        raise RuntimeError("setup attempt 1 broke")

def test_flaky_setup(flaky_setup):
    pass
"""


@pytest.fixture
def only_reruns(monkeypatch):
    """Just pytest-rt, pytest-rerunfailures and xdist: fast workers (see only_xdist)."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return ("-p", "pytest_rt", "-p", "pytest_rerunfailures", "-p", "xdist.plugin")


def check(s):
    flaky = s.stops["test_one.py::test_flaky"]
    assert flaky["status"] == "passed"
    assert flaky["outcome"] == "passed"
    assert flaky["msg"] == ""
    assert flaky["reruns"] == 2
    assert len(flaky["rerun_msgs"]) == 2
    assert "attempt 1 failed" in flaky["rerun_msgs"][0]
    assert "attempt 2 failed" in flaky["rerun_msgs"][1]

    broken = s.stops["test_one.py::test_broken"]
    assert broken["status"] == "failed"
    assert broken["reruns"] == 3
    assert [f"attempt {n} failed" in m for n, m in enumerate(broken["rerun_msgs"], 1)] == [
        True] * 3
    assert "attempt 4 failed" in broken["msg"]

    steady = s.stops["test_one.py::test_steady"]
    assert (steady["status"], steady["reruns"], steady["rerun_msgs"]) == ("passed", 0, [])

    setup = s.stops["test_one.py::test_flaky_setup"]
    assert setup["status"] == "passed"
    assert setup["reruns"] == 1
    assert "setup attempt 1 broke" in setup["rerun_msgs"][0]

    assert s.stop["counts"]["passed"] == 3
    assert s.stop["counts"]["failed"] == 1
    assert s.stop["total"] == 4


@pytest.mark.parametrize("args", [
    pytest.param([], id="autoloaded"),
    pytest.param(["-n", "2"], id="-n 2"),
])
def test_a_rerun_test_gets_one_start_one_stop_and_its_earlier_failures(rt, stream, request,
                                                                       args):
    rt.pytester.makepyfile(test_one=SUITE)
    if args:
        pytest.importorskip("xdist")
    plugins = request.getfixturevalue("only_reruns") if args else ()
    result = rt.run(*plugins, "--reruns", "3", *args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    s = stream()  # one startTestItem and one stopTestItem per test, or this fails
    assert sorted(s.started) == sorted(s.tests)
    check(s)


def test_a_rerun_of_a_test_that_keeps_failing_is_failed(rt, stream):
    rt.pytester.makepyfile(test_one="def test_it():\n    assert False, 'always'\n")
    rt.run("--reruns", "2")
    stop = stream().stops["test_one.py::test_it"]
    assert stop["status"] == "failed"
    assert stop["reruns"] == 2
    assert len(stop["rerun_msgs"]) == 2
    assert all("always" in m for m in stop["rerun_msgs"])
