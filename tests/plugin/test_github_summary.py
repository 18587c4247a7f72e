"""CI summaries where CI shows them: GitHub Actions' step summary."""

from __future__ import annotations

SUITE = """
import pytest

def test_ok():
    pass

def test_broken():
    assert 6 * 7 == 43

@pytest.mark.parametrize("name", ["~~~~\\n# injected", "<b>bold</b>"])
def test_odd(name):
    assert name == ""
"""


def test_a_github_run_gets_counts_failures_and_the_live_link(rt, receiver, tmp_path,
                                                              monkeypatch):
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    receiver.behaviour.dashboard = "http://dash.example/"
    rt.pytester.makepyfile(test_mod=SUITE)
    rt.run("--rt-project", "shop", "--rt-job-id", "j1").assert_outcomes(passed=1, failed=3)
    text = summary.read_text()
    assert text.startswith("earlier step\n### pytest-rt · shop")  # appended, not replaced
    assert "3 failed, 1 passed of 4 · [live results](http://dash.example/jobs/j1)" in text
    fenced = text.split("~~~~\n", 1)[1].rsplit("~~~~", 1)[0]
    assert "test_mod.py::test_broken\n    E       assert (6 * 7) == 43" in fenced
    assert "~~~~" not in fenced  # a test name cannot close the block and inject Markdown
    assert "Failures (3):" in text


def test_no_summary_when_asked_not_to_or_outside_github(rt, receiver, tmp_path, monkeypatch):
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    rt.pytester.makepyfile(test_mod=SUITE)
    rt.run("--rt-no-ci-summary").assert_outcomes(passed=1, failed=3)
    assert not summary.exists()
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    rt.run().assert_outcomes(passed=1, failed=3)
    assert not summary.exists()


def test_an_unwritable_summary_is_said_and_changes_nothing_else(rt, receiver, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "no" / "such" / "dir" / "f.md"))
    rt.pytester.makepyfile(test_mod="def test_ok():\n    pass\n")
    result = rt.run()
    assert result.ret == 0
    result.stdout.fnmatch_lines(["pytest-rt: cannot write GITHUB_STEP_SUMMARY*"])
