"""Each way a test can end, as the receiver sees it: status in the seed's words, msg, outcome."""

from __future__ import annotations

import re

import pytest

FIXTURES = """
import pytest

@pytest.fixture
def broken_setup():
    raise RuntimeError("setup broke")

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown broke")

@pytest.fixture
def skipping():
    pytest.skip("the fixture skips")
"""


def test_a_passing_test_yields_the_seed_events_in_order(rt, stream):
    rt.pytester.makepyfile(test_one="def test_ok():\n    pass\n")
    rt.run().assert_outcomes(passed=1)
    events = stream().events
    assert [e["type"] for e in events] == [
        "startTestRun", "startTestItem", "stopTestItem", "stopTestRun"]
    assert [e["test"] for e in events[1:3]] == ["test_one.py::test_ok"] * 2


def test_a_passing_test_is_passed_with_an_empty_msg(rt, stream):
    rt.pytester.makepyfile(test_one="def test_ok():\n    pass\n")
    rt.run()
    stop = stream().stops["test_one.py::test_ok"]
    assert stop["status"] == "passed"
    assert stop["outcome"] == "passed"
    assert stop["msg"] == ""
    assert stop["when"] == "call"
    assert stop["reruns"] == 0
    assert stop["rerun_msgs"] == []
    assert stop["worker"] is None


def test_a_failing_test_is_failed_with_pytests_failure_text(rt, stream):
    rt.pytester.makepyfile(test_one="def test_bad():\n    assert 1 == 2, 'one is not two'\n")
    rt.run().assert_outcomes(failed=1)
    stop = stream().stops["test_one.py::test_bad"]
    assert stop["status"] == "failed"
    assert stop["outcome"] == "failed"
    assert stop["when"] == "call"
    assert "AssertionError: one is not two" in stop["msg"]
    assert "test_one.py:2: AssertionError" in stop["msg"]


def test_a_setup_error_is_reported_as_error_at_setup(rt, stream):
    rt.pytester.makeconftest(FIXTURES)
    rt.pytester.makepyfile(test_one="def test_it(broken_setup):\n    pass\n")
    rt.run().assert_outcomes(errors=1)
    stop = stream().stops["test_one.py::test_it"]
    assert stop["status"] == "error"
    assert stop["outcome"] == "error"
    assert stop["when"] == "setup"
    assert "RuntimeError: setup broke" in stop["msg"]


def test_a_teardown_error_is_reported_as_error_even_when_the_call_passed(rt, stream):
    rt.pytester.makeconftest(FIXTURES)
    rt.pytester.makepyfile(test_one="def test_it(broken_teardown):\n    pass\n")
    rt.run().assert_outcomes(passed=1, errors=1)
    s = stream()
    assert len(s.stops) == 1
    stop = s.stops["test_one.py::test_it"]
    assert stop["status"] == "error"
    assert stop["outcome"] == "error"
    assert stop["when"] == "teardown"
    assert "RuntimeError: teardown broke" in stop["msg"]


def test_a_failing_call_with_a_failing_teardown_is_failed_with_both_texts(rt, stream):
    rt.pytester.makeconftest(FIXTURES)
    rt.pytester.makepyfile(
        test_one="def test_it(broken_teardown):\n    assert False, 'call broke'\n")
    rt.run().assert_outcomes(failed=1, errors=1)
    stop = stream().stops["test_one.py::test_it"]
    assert stop["status"] == "failed"
    assert stop["outcome"] == "failed"
    assert stop["when"] == "call"
    assert "AssertionError: call broke" in stop["msg"]
    assert "RuntimeError: teardown broke" in stop["msg"]
    assert stop["msg"].index("call broke") < stop["msg"].index("teardown broke")


@pytest.mark.parametrize(("body", "when"), [
    pytest.param("@pytest.mark.skip(reason='REASON')\ndef test_it():\n    pass\n",
                 "setup", id="skip-mark"),
    pytest.param("@pytest.mark.skipif(True, reason='REASON')\ndef test_it():\n    pass\n",
                 "setup", id="skipif-mark"),
    pytest.param("def test_it():\n    pytest.skip('REASON')\n", "call", id="pytest.skip"),
    pytest.param("@pytest.fixture\ndef skipping():\n    pytest.skip('REASON')\n\n"
                 "def test_it(skipping):\n    pass\n", "setup", id="in-a-fixture"),
])
def test_a_skipped_test_is_skipped_with_its_reason_as_msg(rt, stream, body, when):
    rt.pytester.makepyfile(test_one="import pytest\n\n" + body)
    rt.run().assert_outcomes(skipped=1)
    stop = stream().stops["test_one.py::test_it"]
    assert stop["status"] == "skipped"
    assert stop["outcome"] == "skipped"
    assert stop["when"] == when
    assert stop["msg"] == "REASON"


def test_an_expected_failure_is_skipped_with_its_reason_as_msg(rt, stream):
    rt.pytester.makepyfile(test_one="""
        import pytest

        @pytest.mark.xfail(reason="known bug")
        def test_it():
            assert False
    """)
    rt.run().assert_outcomes(xfailed=1)
    stop = stream().stops["test_one.py::test_it"]
    assert stop["status"] == "skipped"
    assert stop["outcome"] == "xfailed"
    assert stop["when"] == "call"
    assert stop["msg"] == "known bug"


def test_an_imperative_xfail_is_skipped_with_its_reason_as_msg(rt, stream):
    rt.pytester.makepyfile(test_one="""
        import pytest

        def test_it():
            pytest.xfail("not yet")
    """)
    rt.run().assert_outcomes(xfailed=1)
    stop = stream().stops["test_one.py::test_it"]
    assert (stop["status"], stop["outcome"], stop["msg"]) == ("skipped", "xfailed", "not yet")


def test_a_non_strict_unexpected_pass_is_passed(rt, stream):
    rt.pytester.makepyfile(test_one="""
        import pytest

        @pytest.mark.xfail(reason="maybe fixed", strict=False)
        def test_it():
            pass
    """)
    rt.run().assert_outcomes(xpassed=1)
    stop = stream().stops["test_one.py::test_it"]
    assert stop["status"] == "passed"
    assert stop["outcome"] == "xpassed"
    assert stop["when"] == "call"
    assert stop["msg"] == ""


def test_a_strict_unexpected_pass_is_failed(rt, stream):
    rt.pytester.makepyfile(test_one="""
        import pytest

        @pytest.mark.xfail(reason="must fail", strict=True)
        def test_it():
            pass
    """)
    rt.run().assert_outcomes(failed=1)
    stop = stream().stops["test_one.py::test_it"]
    assert stop["status"] == "failed"
    assert stop["outcome"] == "failed"
    assert stop["when"] == "call"
    assert "XPASS(strict)" in stop["msg"]
    assert "must fail" in stop["msg"]


def test_xfail_strict_from_the_ini_file_makes_an_unexpected_pass_failed(rt, stream):
    rt.pytester.makeini("[pytest]\nxfail_strict = true\n")
    rt.pytester.makepyfile(test_one="""
        import pytest

        @pytest.mark.xfail(reason="must fail")
        def test_it():
            pass
    """)
    rt.run().assert_outcomes(failed=1)
    stop = stream().stops["test_one.py::test_it"]
    assert (stop["status"], stop["outcome"]) == ("failed", "failed")


def test_stop_run_counts_every_outcome_of_a_mixed_suite(rt, stream):
    rt.pytester.makeconftest(FIXTURES)
    rt.pytester.makepyfile(test_mixed="""
        import pytest

        def test_pass(): pass
        def test_fail(): assert False
        def test_setup_error(broken_setup): pass
        def test_teardown_error(broken_teardown): pass
        def test_skip(): pytest.skip("no")
        def test_skip_in_fixture(skipping): pass
        @pytest.mark.xfail(reason="bug")
        def test_xfail(): assert False
        @pytest.mark.xfail(reason="fixed?")
        def test_xpass(): pass
        @pytest.mark.xfail(reason="strict", strict=True)
        def test_xpass_strict(): pass
    """)
    rt.run()
    s = stream()
    statuses = {nodeid.split("::")[1]: stop["status"] for nodeid, stop in s.stops.items()}
    assert statuses == {
        "test_pass": "passed",
        "test_fail": "failed",
        "test_setup_error": "error",
        "test_teardown_error": "error",
        "test_skip": "skipped",
        "test_skip_in_fixture": "skipped",
        "test_xfail": "skipped",
        "test_xpass": "passed",
        "test_xpass_strict": "failed",
    }
    assert s.stop["counts"] == {
        "passed": 1, "failed": 2, "error": 2, "skipped": 2, "xfailed": 1, "xpassed": 1,
        "interrupted": 0, "not_started": 0,
    }
    assert s.stop["total"] == 9
    assert s.stop["exitstatus"] == 1
    assert s.stop["interrupted"] is False
    assert s.stop["collect_errors"] == []


def test_each_test_starts_after_the_previous_one_stopped(rt, stream):
    rt.pytester.makepyfile(test_one="def test_a(): pass\ndef test_b(): assert 0\n"
                                    "def test_c(): pass\n")
    rt.run()
    items = [(e["type"], e["test"].split("::")[1]) for e in stream().events[1:-1]]
    assert items == [
        ("startTestItem", "test_a"), ("stopTestItem", "test_a"),
        ("startTestItem", "test_b"), ("stopTestItem", "test_b"),
        ("startTestItem", "test_c"), ("stopTestItem", "test_c"),
    ]


def test_duration_is_the_seconds_of_setup_call_and_teardown(rt, stream):
    rt.pytester.makepyfile(test_one="def test_ok():\n    pass\n")
    rt.run()
    s = stream()
    stop = s.stops["test_one.py::test_ok"]
    assert isinstance(stop["duration"], float)
    assert 0 <= stop["duration"] < s.stop["duration"] + 1
    assert float(s.start["startTime"]) <= float(s.starts["test_one.py::test_ok"]["startTime"])
    assert float(s.starts["test_one.py::test_ok"]["startTime"]) <= float(stop["stopTime"])
    assert float(stop["stopTime"]) <= float(s.stop["stopTime"])


def test_times_are_the_seeds_types_a_number_to_start_the_run_and_six_decimal_strings(rt, stream):
    rt.pytester.makepyfile(test_one="def test_ok():\n    pass\n")
    rt.run()
    s = stream()
    assert isinstance(s.start["startTime"], float)
    assert re.fullmatch(r"\d+\.\d{6}", s.starts["test_one.py::test_ok"]["startTime"])
    assert re.fullmatch(r"\d+\.\d{6}", s.stops["test_one.py::test_ok"]["stopTime"])
    assert re.fullmatch(r"\d+\.\d{6}", s.stop["stopTime"])


def test_a_long_msg_is_cut_at_rt_max_msg_with_a_marker(rt, stream):
    rt.pytester.makepyfile(test_one="def test_it():\n    assert False, 'x' * 5000\n")
    rt.run("--rt-max-msg", "200")
    msg = stream().stops["test_one.py::test_it"]["msg"]
    assert msg.startswith(msg[:200])
    head, marker = msg.rsplit("\n", 1)
    assert len(head) == 200
    assert re.fullmatch(r"\[\.\.\. \d+ characters truncated by pytest-rt\]", marker)


def test_rt_redact_masks_matches_in_msg(rt, stream):
    rt.pytester.makepyfile(test_one="def test_it():\n    assert False, 'password=hunter2'\n")
    rt.run("--rt-redact", "hunter[0-9]")
    msg = stream().stops["test_one.py::test_it"]["msg"]
    assert "hunter2" not in msg
    assert "password=***" in msg


def test_rt_max_msg_and_rt_redact_can_come_from_the_ini_file(rt, stream):
    rt.pytester.makeini("[pytest]\nrt_max_msg = 150\nrt_redact =\n    hunter[0-9]\n    s3cr.t\n")
    rt.pytester.makepyfile(
        test_one="def test_it():\n    assert False, 'hunter2 s3cret ' + 'x' * 5000\n")
    rt.run()
    msg = stream().stops["test_one.py::test_it"]["msg"]
    assert "hunter2" not in msg and "s3cret" not in msg
    assert msg.endswith("characters truncated by pytest-rt]")
    assert len(msg.split("\n[... ")[0]) == 150
