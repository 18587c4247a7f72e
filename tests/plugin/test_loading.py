"""The two ways the plugin is loaded (the pytest11 entry point, the seed's conftest line) and
both at once."""

from __future__ import annotations

import pytest

CHECK_REGISTERED = """
def test_registered_once(request):
    pm = request.config.pluginmanager
    hooks = [p for p in pm.get_plugins() if getattr(p, "__name__", "") == "pytest_rt.plugin"]
    assert len(hooks) == 1
    assert len([p for p in pm.get_plugins() if type(p).__name__ == "Reporter"]) == 1
"""


def test_the_plugin_loads_through_its_pytest11_entry_point(rt, stream):
    rt.pytester.makepyfile(test_one="""
        def test_entry_point(request):
            plugin = request.config.pluginmanager.get_plugin("pytest_rt")
            assert plugin.__name__ == "pytest_rt.plugin"
    """)
    rt.run().assert_outcomes(passed=1)
    assert stream().stops["test_one.py::test_entry_point"]["status"] == "passed"


@pytest.mark.parametrize("line", [
    'pytest_plugins = "pytest_rt"',
    'pytest_plugins = ["pytest_rt"]',
])
def test_the_seeds_conftest_line_loads_it_with_plugin_autoload_disabled(
        rt, stream, monkeypatch, spare, line):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    rt.pytester.makeconftest(line + "\n")
    rt.pytester.makepyfile(test_one=CHECK_REGISTERED)
    result = rt.run_subprocess(*spare)
    result.assert_outcomes(passed=1)
    s = stream()
    assert list(s.stops) == ["test_one.py::test_registered_once"]


def test_with_plugin_autoload_disabled_and_no_conftest_line_rt_is_unknown(rt, receiver,
                                                                          monkeypatch, spare):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    rt.pytester.makepyfile(test_one="def test_ok(): pass\n")
    result = rt.run_subprocess(*spare)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --rt*"])
    assert receiver.requests == 0


@pytest.mark.parametrize("line", [
    'pytest_plugins = "pytest_rt"',
    'pytest_plugins = ["pytest_rt"]',
])
def test_the_entry_point_and_the_conftest_line_together_register_it_once(rt, stream, line):
    rt.pytester.makeconftest(line + "\n")
    rt.pytester.makepyfile(test_one=CHECK_REGISTERED)
    rt.run().assert_outcomes(passed=1)
    s = stream()  # one startTestRun, one start and one stop per test, or it fails
    assert len(s.events) == 4


def test_the_entry_point_and_dash_p_together_register_it_once(rt, stream):
    rt.pytester.makepyfile(test_one=CHECK_REGISTERED)
    rt.run("-p", "pytest_rt").assert_outcomes(passed=1)
    assert len(stream().events) == 4


def test_dash_p_no_rt_disables_the_plugin(rt, receiver):
    rt.pytester.makepyfile(test_one="def test_ok(): pass\n")
    result = rt.pytester.runpytest("-p", "no:rt", "--rt")
    assert result.ret != 0  # a usage error (pytest 7.4 in-process reports it as internal)
    assert "unrecognized arguments: --rt" in result.stderr.str()
    assert receiver.requests == 0
