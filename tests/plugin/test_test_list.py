"""startTestRun's `tests`: every selected test in run order, with the seed's and Testgr's fields."""

from __future__ import annotations

import pytest

SUITE = """
import pytest

def test_alpha(): pass
def test_beta(): pass

@pytest.mark.slow
def test_gamma(): pass

class TestGroup:
    def test_delta(self): pass
"""


@pytest.mark.parametrize(("args", "selected"), [
    pytest.param(["-k", "beta or delta"], ["test_beta", "TestGroup::test_delta"], id="-k"),
    pytest.param(["-k", "not alpha"], ["test_beta", "test_gamma", "TestGroup::test_delta"],
                 id="-k not"),
    pytest.param(["-m", "slow"], ["test_gamma"], id="-m"),
    pytest.param(["--deselect", "test_one.py::test_alpha"],
                 ["test_beta", "test_gamma", "TestGroup::test_delta"], id="--deselect"),
    pytest.param(["test_one.py::test_gamma", "test_one.py::test_alpha"],
                 ["test_gamma", "test_alpha"], id="node ids"),
])
def test_tests_lists_only_the_selected_tests_in_run_order(rt, stream, args, selected):
    rt.pytester.makeini("[pytest]\nmarkers =\n    slow: slow\n")
    rt.pytester.makepyfile(test_one=SUITE)
    rt.run(*args)
    s = stream()
    expected = [f"test_one.py::{name}" for name in selected]
    assert s.tests == expected
    assert s.started == expected
    assert s.stop["total"] == len(expected)
    assert s.stop["counts"]["not_started"] == 0


def test_tests_follows_a_plugin_that_reorders_and_deselects(rt, stream):
    rt.pytester.makeconftest("""
        def pytest_collection_modifyitems(config, items):
            dropped = [item for item in items if "beta" in item.name]
            items[:] = [item for item in reversed(items) if item not in dropped]
            config.hook.pytest_deselected(items=dropped)
    """)
    rt.pytester.makeini("[pytest]\nmarkers =\n    slow: slow\n")  # else a collection error
    rt.pytester.makepyfile(test_one=SUITE)
    rt.run().assert_outcomes(passed=3, deselected=1)
    s = stream()
    expected = ["test_one.py::TestGroup::test_delta", "test_one.py::test_gamma",
                "test_one.py::test_alpha"]
    assert s.tests == expected
    assert s.started == expected


def test_each_entry_has_location_nodeid_uuid_description_file_and_markers(rt, stream):
    rt.pytester.makeini("[pytest]\nmarkers =\n    slow: slow\n    db: db\n")
    rt.pytester.mkpydir("pkg")
    rt.pytester.path.joinpath("pkg", "test_two.py").write_text(
        "import pytest\n\n"
        "class TestCls:\n"
        "    @pytest.mark.parametrize('n', [1])\n"
        "    def test_m(self, n):\n"
        "        '''\n        Checks the method.\n\n        More words.\n        '''\n"
        "\n"
        "@pytest.mark.slow\n"
        "@pytest.mark.db\n"
        "def test_f():\n"
        "    pass\n"
    )
    rt.run().assert_outcomes(passed=2)
    entries = stream().entries
    method = entries["pkg/test_two.py::TestCls::test_m[1]"]
    assert method["location"] == "TestCls.test_m[1]"
    assert method["file"] == "pkg/test_two.py"
    assert method["description"].startswith("Checks the method.")
    assert method["description"].endswith("More words.")
    assert method["markers"] == ["parametrize"]
    function = entries["pkg/test_two.py::test_f"]
    assert function["location"] == "test_f"
    assert function["description"] is None
    assert function["markers"] == ["db", "slow"]


def test_item_events_carry_the_uuid_of_their_entry_in_tests(rt, stream):
    rt.pytester.makeini("[pytest]\nmarkers =\n    slow: slow\n")  # else a collection error
    rt.pytester.makepyfile(test_one=SUITE)
    rt.run()
    s = stream()
    assert len(s.entries) == 4
    for nodeid, entry in s.entries.items():
        assert s.starts[nodeid]["uuid"] == entry["uuid"]
        assert s.stops[nodeid]["uuid"] == entry["uuid"]
    assert len({entry["uuid"] for entry in s.entries.values()}) == 4


def test_start_test_run_describes_the_run(rt, stream):
    rt.pytester.makeini("[pytest]\nmarkers =\n    slow: slow\n")  # else a collection error
    rt.pytester.makepyfile(test_one=SUITE)
    rt.run()
    start = stream().start
    assert start["xdist"] is False
    assert start["workers"] == 0
    assert start["rootdir"] == rt.pytester.path.name
    assert start["plugin_version"] == __import__("pytest_rt").__version__
    assert start["collect_errors"] == []
