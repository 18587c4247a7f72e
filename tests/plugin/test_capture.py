"""The whole failure: what pytest captured of a failed test goes with its stopTestItem."""

from __future__ import annotations

import pytest

SUITE = """
import logging, sys

def test_fails_loudly():
    print("to stdout: the reason")
    print("to stderr: more", file=sys.stderr)
    logging.getLogger("app").warning("a log record: token=abc123")
    assert 1 == 2

def test_passes_loudly():
    print("passing chatter")

def test_fails_quietly():
    assert 0
"""


def sections(stream, suffix):
    return {s["name"]: s["text"] for s in stream().only(suffix)["sections"]}


def test_a_failed_test_sends_its_stdout_stderr_and_log_and_a_passing_one_nothing(rt, stream):
    rt.pytester.makepyfile(test_mod=SUITE)
    rt.run().assert_outcomes(passed=1, failed=2)
    loud = sections(stream, "test_fails_loudly")
    assert "to stdout: the reason" in loud["Captured stdout call"]
    assert "to stderr: more" in loud["Captured stderr call"]
    assert "a log record" in loud["Captured log call"]
    assert sections(stream, "test_passes_loudly") == {}
    assert sections(stream, "test_fails_quietly") == {}


def test_capture_all_sends_passing_tests_output_too_and_none_sends_nothing(rt, stream, receiver):
    rt.pytester.makepyfile(test_mod=SUITE)
    rt.run("--rt-capture", "all").assert_outcomes(passed=1, failed=2)
    assert "passing chatter" in sections(stream, "test_passes_loudly")["Captured stdout call"]
    receiver.events.clear()
    rt.pytester.makeini("[pytest]\nrt_capture = none\n")
    rt.run().assert_outcomes(passed=1, failed=2)
    assert sections(stream, "test_fails_loudly") == {}


def test_captured_output_is_redacted_and_cut_like_msg(rt, stream):
    rt.pytester.makepyfile(test_mod="""
def test_floods():
    print("secret=hunter2 " + "x" * 5000)
    assert 0
""")
    rt.run("--rt-redact", "hunter2", "--rt-max-msg", "1000").assert_outcomes(failed=1)
    out = sections(stream, "test_floods")["Captured stdout call"]
    assert "hunter2" not in out and "secret=***" in out
    assert out.endswith("characters truncated by pytest-rt]")
    assert len(out) < 1100


def test_output_captured_in_setup_goes_with_a_setup_error(rt, stream):
    rt.pytester.makepyfile(test_mod="""
import pytest

@pytest.fixture
def broken():
    print("setting up the database")
    raise RuntimeError("no database")

def test_needs_it(broken):
    pass
""")
    rt.run().assert_outcomes(errors=1)
    assert "setting up the database" in sections(stream, "test_needs_it")[
        "Captured stdout setup"]


def test_a_bad_capture_value_stops_pytest_naming_the_option(rt):
    rt.pytester.makepyfile(test_mod="def test_a():\n    pass\n")
    result = rt.run("--rt-capture", "some")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--rt-capture: must be one of failed, all, none*"])
