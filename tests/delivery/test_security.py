"""Tokens, headers, message caps and masks, and a spool only its owner can read."""

from __future__ import annotations

import re
import stat

import pytest

from .helpers import assert_whole_stream, journal_events, journals, module_with, nodeids_of, replay

TOKEN = "s3cret"


def all_text_under(path):
    return "".join(p.name + (p.read_text() if p.is_file() else "") for p in path.rglob("*"))


def test_the_token_is_sent_as_a_bearer_header_with_the_extra_headers(rt, receiver):
    rt.pytester.makepyfile(test_mod=module_with(2))
    result = rt.run("--rt-token", TOKEN, "--rt-header", "X-A: b", "--rt-header", "X-Other:c d")
    result.assert_outcomes(passed=2)
    assert receiver.headers
    assert {h["Authorization"] for h in receiver.headers} == {f"Bearer {TOKEN}"}
    assert {(h["X-A"], h["X-Other"]) for h in receiver.headers} == {("b", "c d")}
    assert TOKEN not in result.stdout.str() + result.stderr.str()


def test_the_token_from_the_environment_is_sent(rt, receiver, monkeypatch):
    monkeypatch.setenv("PYTEST_RT_TOKEN", TOKEN)
    rt.pytester.makepyfile(test_mod=module_with(1))
    rt.run().assert_outcomes(passed=1)
    assert {h["Authorization"] for h in receiver.headers} == {f"Bearer {TOKEN}"}


def test_the_token_is_in_no_output_and_nowhere_in_the_spool(rt, dead_url):
    rt.url = dead_url
    rt.pytester.makepyfile(test_mod=module_with(2) + "\ndef test_fails():\n    assert 0\n")
    result = rt.run("--rt-token", TOKEN, "--rt-flush-timeout", "1", "-v", "-rA")
    result.assert_outcomes(passed=2, failed=1)
    assert "not delivered" in result.stdout.str()
    assert TOKEN not in result.stdout.str() + result.stderr.str()
    spool = rt.pytester.path / ".spool"
    assert journals(spool)
    assert TOKEN not in all_text_under(spool)


def test_a_token_with_a_trailing_newline_is_sent_without_it(rt, receiver, monkeypatch):
    monkeypatch.setenv("PYTEST_RT_TOKEN", TOKEN + "\n")  # as read from a secret file
    rt.pytester.makepyfile(test_mod=module_with(1))
    result = rt.run()
    result.assert_outcomes(passed=1)
    assert {h["Authorization"] for h in receiver.headers} == {f"Bearer {TOKEN}"}
    assert TOKEN not in result.stdout.str() + result.stderr.str()


def test_a_token_with_a_line_break_stops_pytest_at_start_without_printing_it(rt, receiver):
    rt.pytester.makepyfile(test_mod=module_with(1))
    result = rt.run_subprocess("--rt-token", "zq9\nxw7")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert receiver.events == []
    result.stderr.fnmatch_lines(["*--rt-token*line break*"])
    output = result.stdout.str() + result.stderr.str()
    assert "zq9" not in output and "xw7" not in output


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_stops_delivery_and_keeps_the_events_for_replay(rt, receiver, status):
    receiver.behaviour.fail_first = 1000
    receiver.behaviour.fail_status = status
    rt.pytester.makepyfile(test_mod=module_with(3))
    result = rt.run("--rt-token", "wrong", "--rt-flush-timeout", "5")
    result.assert_outcomes(passed=3)
    assert receiver.requests == 1  # stopped at the first refusal, no retries
    result.stdout.fnmatch_lines([f"*refused the token or credentials ({status})*",
                                 "*8 events spooled; send them with: pytest-rt replay*"])
    assert "wrong" not in result.stdout.str()
    [journal] = journals(rt.pytester.path / ".spool")
    assert len(journal_events(journal)) == 8


def test_replay_sends_the_token_given_to_it(rt, receiver):
    receiver.token = TOKEN
    rt.pytester.makepyfile(test_mod=module_with(3))
    rt.run("--rt-token", "wrong", "--rt-flush-timeout", "5").assert_outcomes(passed=3)
    spool = rt.pytester.path / ".spool"

    refused = replay(str(spool))  # no token: refused again, still pending
    assert refused.returncode == 1
    assert "refused the token" in refused.stdout
    assert receiver.events == []

    done = replay(str(spool), "--token", TOKEN)
    assert done.returncode == 0, done.stdout + done.stderr
    assert TOKEN not in done.stdout + done.stderr
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 3))


def test_replay_takes_the_token_from_the_environment(rt, receiver):
    receiver.token = TOKEN
    rt.pytester.makepyfile(test_mod=module_with(1))
    rt.run("--rt-flush-timeout", "5").assert_outcomes(passed=1)
    done = replay(str(rt.pytester.path / ".spool"), env={"PYTEST_RT_TOKEN": TOKEN})
    assert done.returncode == 0, done.stdout + done.stderr
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 1))


# -- messages ----------------------------------------------------------------------------

MARKER = re.compile(r"\n\[\.\.\. (\d+) characters truncated by pytest-rt\]$")


def test_max_msg_caps_a_message_without_cutting_a_character(rt, receiver):
    rt.pytester.makepyfile(test_mod=f"def test_long():\n    assert 0, '{'😀é' * 400}'\n")
    rt.run("--rt-max-msg", "200").assert_outcomes(failed=1)
    msg = receiver.stops()["test_mod.py::test_long"]["msg"]
    match = MARKER.search(msg)
    assert match, msg[-80:]
    kept = msg[: match.start()]
    assert len(kept) == 200
    assert "😀é" in kept
    kept.encode("utf-8")  # no half of a surrogate pair, no broken character
    assert int(match.group(1)) > 600


def test_redact_masks_matches_in_messages(rt, receiver):
    rt.pytester.makepyfile(test_mod="def test_leak():\n    assert 0, 'the key is secret42!'\n")
    rt.run("--rt-redact", r"sec[r]et\d+").assert_outcomes(failed=1)
    msg = receiver.stops()["test_mod.py::test_leak"]["msg"]
    assert "secret42" not in msg
    assert "the key is ***!" in msg


# -- the spool on disk -------------------------------------------------------------------

def test_the_spool_is_readable_by_its_owner_only(rt, dead_url):
    rt.url = dead_url
    rt.pytester.makepyfile(test_mod=module_with(1))
    rt.run("--rt-flush-timeout", "1").assert_outcomes(passed=1)
    [journal] = journals(rt.pytester.path / ".spool")
    assert stat.S_IMODE(journal.parent.stat().st_mode) == 0o700
    for path in journal.parent.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_delivered_run_leaves_no_spool_behind(pytester, receiver):
    pytester.makepyfile(test_mod=module_with(2))
    result = pytester.runpytest("--rt", "--rt-url", receiver.url, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 2))
    assert not (pytester.path / ".pytest_rt").exists()
    assert sorted(p.name for p in pytester.path.iterdir()) == ["test_mod.py"]


def test_the_default_spool_is_under_the_rootdir_and_ignored_by_git(pytester, dead_url):
    pytester.makepyfile(test_mod=module_with(1))
    result = pytester.runpytest("--rt", "--rt-url", dead_url, "--rt-flush-timeout", "1",
                                "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    spool = pytester.path / ".pytest_rt"
    assert journals(spool)
    assert (spool / ".gitignore").read_text().splitlines()[-1] == "*"
    result.stdout.fnmatch_lines(["*pytest-rt replay *.pytest_rt*"])


def unwritable_spool(pytester):
    """A spool path under a regular file: root can't write there either."""
    blocker = pytester.path / "a-file"
    blocker.write_text("not a directory")
    return blocker / "spool"


def test_an_unwritable_spool_harms_neither_run_nor_delivery(rt, receiver):
    bad = unwritable_spool(rt.pytester)
    rt.pytester.makepyfile(test_mod=module_with(2) + "\ndef test_fails():\n    assert 0\n")
    result = rt.run("--rt-spool", str(bad))
    assert result.ret == 1
    result.assert_outcomes(passed=2, failed=1)
    assert_whole_stream(receiver.unique(), [*nodeids_of("test_mod", 2), "test_mod.py::test_fails"])
    assert result.stderr.str() == ""


def test_an_unwritable_spool_is_named_when_events_are_lost_with_it(rt, dead_url):
    bad = unwritable_spool(rt.pytester)
    rt.url = dead_url
    rt.pytester.makepyfile(test_mod=module_with(1))
    result = rt.run("--rt-spool", str(bad), "--rt-flush-timeout", "1")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        f"*cannot write the spool in {bad} (Not a directory): events were kept in memory only"])
    assert "pytest-rt replay" not in result.stdout.str()


def test_an_unwritable_spool_is_named_even_when_all_was_delivered(rt, receiver):
    bad = unwritable_spool(rt.pytester)
    rt.pytester.makepyfile(test_mod=module_with(1))
    result = rt.run("--rt-spool", str(bad))
    result.assert_outcomes(passed=1)
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 1))
    result.stdout.fnmatch_lines([f"*cannot write the spool in {bad}*"])
