"""Settings and surroundings that must not break a user's run (found in review)."""

from __future__ import annotations

import pytest

from .helpers import assert_whole_stream, module_with, nodeids_of


def test_a_users_own_spool_directory_is_never_removed(rt, receiver):
    mine = rt.pytester.path / "logs"
    mine.mkdir()
    (mine / ".gitignore").write_text("*.log\n")
    rt.pytester.makepyfile(test_mod=module_with(1))
    rt.run("--rt-spool", str(mine)).assert_outcomes(passed=1)
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 1))
    assert (mine / ".gitignore").read_text() == "*.log\n"
    assert sorted(p.name for p in mine.iterdir()) == [".gitignore"]


def test_an_empty_directory_of_the_users_is_left_in_place(rt, receiver):
    mine = rt.pytester.path / "empty"
    mine.mkdir()
    rt.pytester.makepyfile(test_mod=module_with(1))
    rt.run("--rt-spool", str(mine)).assert_outcomes(passed=1)
    assert mine.is_dir() and list(mine.iterdir()) == []


def test_a_conftest_fixture_called_endpoint_is_not_the_seeds_variable(rt, receiver):
    rt.pytester.makeconftest(
        "import pytest\n\n@pytest.fixture\ndef endpoint():\n    return '/api/users'\n")
    rt.pytester.makepyfile(test_mod="def test_uses(endpoint):\n    assert endpoint\n")
    result = rt.run()
    result.assert_outcomes(passed=1)
    assert [e["type"] for e in receiver.unique()][0] == "startTestRun"


def test_a_malformed_proxy_setting_keeps_the_run_green_and_the_events(rt, receiver,
                                                                      monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy:abc")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    rt.pytester.makepyfile(test_mod=module_with(1))
    result = rt.run("--rt-flush-timeout", "2")
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    output = result.stdout.str()
    assert "INTERNALERROR" not in output
    result.stdout.fnmatch_lines(["*HTTP_PROXY setting is not a valid URL*",
                                 "*events spooled; send them with: pytest-rt replay*"])


@pytest.mark.parametrize(("option", "value"), [
    ("--rt-flush-timeout", "inf"),
    ("--rt-timeout", "1e300"),
    ("--rt-url", "http://127.0.0.1:9/my loader"),
])
def test_values_that_would_break_delivery_later_are_refused_at_start(rt, option, value):
    rt.pytester.makepyfile(test_mod=module_with(1))
    result = rt.run_subprocess(option, value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: pytest-rt: {option}*"])
    assert "Traceback" not in result.stderr.str()
