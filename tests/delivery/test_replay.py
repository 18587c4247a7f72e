"""A receiver away for the whole run: the run is unharmed, `pytest-rt replay` sends it all."""

from __future__ import annotations

import subprocess
import sys
import time

from pytest_rt.replay import Overrides, replay_one

from .helpers import (
    assert_whole_stream,
    journal_events,
    journals,
    module_with,
    nodeids_of,
    replay,
    wait_for,
)


def test_a_dead_receiver_leaves_the_run_unharmed_and_the_events_spooled(rt, receiver, dead_url):
    rt.pytester.makepyfile(test_mod=module_with(3) + "\ndef test_fails():\n    assert 0\n")
    rt.url = dead_url
    started = time.monotonic()
    result = rt.run("--rt-flush-timeout", "30")
    # Nobody listens: the end of the run does not wait the flush timeout for nobody.
    assert time.monotonic() - started < 15
    plain = rt.pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == plain.ret == 1
    result.assert_outcomes(passed=3, failed=1)
    spool = rt.pytester.path / ".spool"
    [journal] = journals(spool)
    assert len(journal_events(journal)) == 2 + 2 * 4
    result.stdout.fnmatch_lines([
        "*0 events delivered, 10 not delivered*",
        f"*10 events spooled; send them with: pytest-rt replay {journal}*",
    ])


def test_replay_sends_every_event_once_in_order_and_leaves_nothing_behind(
        rt, receiver, dead_url):
    rt.pytester.makepyfile(test_mod=module_with(5))
    rt.url = dead_url
    rt.run("--rt-flush-timeout", "2").assert_outcomes(passed=5)
    spool = rt.pytester.path / ".spool"
    [journal] = journals(spool)

    done = replay(str(spool), "--url", receiver.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "12 events sent" in done.stdout
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 5))
    assert len(receiver.events) == 12
    assert not spool.exists()

    again = replay(str(spool), "--url", receiver.url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(receiver.events) == 12
    assert receiver.requests == len(receiver.bodies)


def test_replay_to_a_dead_url_fails_and_keeps_every_event(rt, receiver, dead_url):
    rt.pytester.makepyfile(test_mod=module_with(2))
    rt.url = dead_url
    rt.run("--rt-flush-timeout", "2").assert_outcomes(passed=2)
    spool = rt.pytester.path / ".spool"
    [journal] = journals(spool)
    before = journal_events(journal)

    failed = replay(str(spool), "--url", dead_url)
    assert failed.returncode == 1
    assert "6 events still pending" in failed.stdout
    assert "connection refused" in failed.stdout
    assert journal_events(journal) == before

    # A journal file is a PATH too.
    done = replay(str(journal), "--url", receiver.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 2))


def test_replay_without_url_sends_to_the_url_the_run_was_meant_for(rt, receiver):
    rt.pytester.makepyfile(test_mod=module_with(2))
    receiver.kill()
    rt.run("--rt-flush-timeout", "1").assert_outcomes(passed=2)
    receiver.start()
    done = replay(".spool", cwd=rt.pytester.path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 2))


def test_replay_with_nothing_pending_says_so(pytester):
    done = replay(cwd=pytester.path)
    assert done.returncode == 0
    assert "nothing to send" in done.stdout


def test_the_console_script_is_installed():
    assert subprocess.run([sys.executable, "-m", "pytest_rt.cli", "--version"],
                          capture_output=True, timeout=30).returncode == 0


def test_replay_skips_a_file_that_is_not_a_spool_and_still_sends_the_rest(rt, receiver, dead_url):
    rt.pytester.makepyfile(test_mod=module_with(1))
    rt.url = dead_url
    rt.run("--rt-flush-timeout", "1").assert_outcomes(passed=1)
    spool = rt.pytester.path / ".spool"
    [journal] = journals(spool)
    (journal.parent / "aaa-foreign.jsonl").write_text('{"not": "ours"}\n')
    (journal.parent / "aab-empty.jsonl").write_text("")
    done = replay(str(spool), "--url", receiver.url)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "aaa-foreign.jsonl is not a pytest-rt spool file; skipped" in done.stdout
    assert "aab-empty.jsonl is not a pytest-rt spool file; skipped" in done.stdout
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 1))
    assert not journal.exists()


def test_replay_with_no_path_sends_what_the_default_spool_holds(pytester, receiver):
    pytester.makepyfile(test_mod=module_with(2))
    receiver.kill()
    pytester.runpytest("--rt", "--rt-url", receiver.url, "--rt-flush-timeout", "1",
                       "-p", "no:cacheprovider").assert_outcomes(passed=2)
    assert journals(pytester.path / ".pytest_rt")
    receiver.start()
    done = replay(cwd=pytester.path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 2))
    assert not (pytester.path / ".pytest_rt").exists()


def test_replay_leaves_the_journal_of_a_running_pytest_alone(pytester, receiver):
    marker = pytester.path / "go-on"
    pytester.makepyfile(test_mod=module_with(2) + f"""
def test_waits():
    marker = pathlib.Path({str(marker)!r})
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
""")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rt", "--rt-url",
         receiver.url, "--rt-spool", ".spool"],
        cwd=pytester.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: len(receiver.of_type("startTestItem")) == 3, timeout=30)
        done = replay(".spool", cwd=pytester.path)
        assert "is in use by a running pytest; skipped" in done.stdout
    finally:
        marker.touch()
        assert proc.wait(timeout=30) == 0
    assert_whole_stream(receiver.unique(), [*nodeids_of("test_mod", 2), "test_mod.py::test_waits"])
    assert len(receiver.events) == len(receiver.unique())  # replay sent nothing twice


def test_replay_to_a_port_that_never_answers_gives_up_after_its_timeout(rt, dead_url,
                                                                       silent_port):
    rt.url = dead_url
    rt.pytester.makepyfile(test_mod=module_with(1))
    rt.run("--rt-flush-timeout", "1").assert_outcomes(passed=1)
    spool = rt.pytester.path / ".spool"
    started = time.monotonic()
    done = replay(str(spool), "--url", f"http://127.0.0.1:{silent_port}/loader", "--timeout", "2")
    assert time.monotonic() - started < 2 + 10  # bounded; not a performance figure
    assert done.returncode == 1
    assert "timed out" in done.stdout
    assert "4 events still pending" in done.stdout
    assert len(journals(spool)) == 1


def test_replay_trusts_no_acknowledged_count_beyond_the_journal(rt, receiver):
    rt.pytester.makepyfile(test_mod=module_with(1))
    receiver.kill()
    rt.run("--rt-flush-timeout", "1").assert_outcomes(passed=1)
    receiver.start()
    [journal] = journals(rt.pytester.path / ".spool")
    journal.with_suffix(".acked").write_text("999")
    done = replay(str(journal))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 events sent" in done.stdout
    assert not journal.exists()


def test_replay_sends_each_journal_to_the_url_its_run_was_meant_for(
        rt, receiver, other_receiver):
    rt.pytester.makepyfile(test_a=module_with(1), test_b=module_with(2))
    receiver.kill()
    other_receiver.kill()
    rt.run("test_a.py", "--rt-flush-timeout", "1").assert_outcomes(passed=1)
    rt.url = other_receiver.url
    rt.run("test_b.py", "--rt-flush-timeout", "1").assert_outcomes(passed=2)
    spool = rt.pytester.path / ".spool"
    assert len(journals(spool)) == 2
    receiver.start()
    other_receiver.start()
    done = replay(str(spool))
    assert done.returncode == 0, done.stdout + done.stderr
    assert_whole_stream(receiver.unique(), nodeids_of("test_a", 1))
    assert_whole_stream(other_receiver.unique(), nodeids_of("test_b", 2))
    assert not spool.exists()


def test_a_journal_another_replay_just_removed_is_nothing_pending(tmp_path):
    assert replay_one(tmp_path / "gone.jsonl", Overrides(), 1) == 0


def test_replay_to_the_wrong_url_suggests_url(rt, receiver, dead_url):
    rt.pytester.makepyfile(test_mod=module_with(1))
    rt.url = dead_url
    rt.run("--rt-flush-timeout", "1").assert_outcomes(passed=1)
    receiver.behaviour.reject = lambda body: 405  # a receiver, but not its event URL
    failed = replay(str(rt.pytester.path / ".spool"), "--url", receiver.url)
    assert failed.returncode == 1
    assert "(the wrong URL?)" in failed.stdout
    assert "give the receiver's event URL with --url" in failed.stdout
