"""`pytest-rt watch`: follow a job from a terminal, live, off the receiver's event stream.

The stream (``GET /api/events?job=ID``) is opened *before* the job is read
(``GET /api/jobs/ID``), so no change can fall between the two: whatever
happened before is in the snapshot, whatever happens after is on the stream.
Each message carries the whole Job (one message per job per short window, with
the tests that moved in it), so the counts and the ETA shown are the receiver's.
The stream has no replay (no event ids), so after a drop the watcher opens it
again and reads the job again, printing only failures it has not printed yet.

Node ids and messages come from the tests: they are printed as text, never as
rich markup, and control characters (ANSI escapes, carriage returns, bidi
overrides) are shown escaped, so a test name can't restyle or rewrite the
terminal.

Only the standard library talks HTTP (the plugin depends on pytest alone); rich,
for the live bar, is the ``watch`` extra.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, unquote, urlencode, urlsplit, urlunsplit

from pytest_rt.protocol import FINISHED_JOB_STATUSES, SHOWN_STATUSES
from pytest_rt.settings import DEFAULT_URL

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn, Task, TaskID
    from rich.text import Text

MISSING_EXTRA = 'pytest-rt watch needs the watch extra: pip install "pytest-rt[watch]"'
DEFAULT_WAIT = 30.0
# The receiver pings every 15 s: two pings missed, and the stream is taken for dead.
DEFAULT_STREAM_TIMEOUT = 40.0
DEFAULT_RETRIES = 5
REQUEST_TIMEOUT = 10.0
POLL_SECONDS = 0.25
LATEST_PAGE = 50  # jobs read while waiting for a new one
FAILURES_PAGE = 100  # earlier failures printed on attaching, per status
MSG_LINES = 5
MAX_LINE_CHARS = 300
MAX_SSE_LINE = 64 * 1024 * 1024  # a message holds a whole Test: msg, rerun_msgs...
FINISHED = FINISHED_JOB_STATUSES
# `abandoned`: the receiver heard nothing of the job for --stale-after seconds.
ENDED = (*FINISHED, "abandoned")
EXIT_PASSED, EXIT_NOT_PASSED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
SHOWN_COUNTS = SHOWN_STATUSES
DONE = ("passed", "failed", "error", "skipped", "aborted")
# Shown escaped, besides C0/C1 controls: they reorder or break lines in a terminal.
_INVISIBLE = frozenset(
    [0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)


class WatchError(Exception):
    """A one-line reason to give up: exit 2."""


class Unreachable(WatchError):
    """The receiver could not be reached or answered 5xx: worth another try."""


class NotFound(WatchError):
    """404; ``is_receiver`` when the answer is the receiver's own ``{"error": ...}``."""

    def __init__(self, message: str, is_receiver: bool) -> None:
        super().__init__(message)
        self.is_receiver = is_receiver


class StreamLost(Exception):
    """The event stream ended, broke or went silent."""


# -- text -------------------------------------------------------------------------------


def literal(text: str, keep_tabs: bool = False) -> str:
    """``text`` safe to print: control and bidi characters as ``\\x1b``-style escapes."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if (code < 0x20 and not (keep_tabs and ch == "\t")) or 0x7F <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif code in _INVISIBLE:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def gist(msg: str | None, limit: int = MSG_LINES) -> list[str]:
    """The lines of a failure message worth a terminal: pytest's ``E`` lines, else the first."""
    if not msg:
        return []
    lines = [line.rstrip("\r ") for line in msg.split("\n")]
    errors = [line for line in lines if line.startswith("E ")]
    chosen = errors or [line for line in lines if line.strip()]
    shown = [_cut(literal(line, keep_tabs=True)) for line in chosen[:limit]]
    if len(chosen) > limit:
        shown.append(f"... ({len(chosen) - limit} more lines)")
    return shown


def _cut(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 3] + "..."


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--"
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def counts_words(job: dict[str, Any]) -> list[tuple[str, str]]:
    """(count word, kind) of each non-zero count, e.g. ("3 passed", "passed")."""
    counts = job.get("counts") or {}
    words = []
    for key in SHOWN_COUNTS:
        n = counts.get(key) or 0
        if n:
            words.append((f"{n} {key.replace('_', ' ')}", key))
    outcomes = job.get("outcome_counts") or {}
    sub = ", ".join(f"{n} {k}" for k, n in outcomes.items() if n)
    if sub:
        words.append((f"({sub})", "skipped"))
    return words


def summary_line(job_id: str, job: dict[str, Any]) -> str:
    counts = ", ".join(word for word, _ in counts_words(job)) or "no tests"
    duration = job.get("duration")
    took = f" in {duration:.2f} s" if isinstance(duration, (int, float)) else ""
    return f"job {literal(job_id)} {job.get('status')}: {counts}{took}"


def done_and_total(job: dict[str, Any]) -> tuple[int, int]:
    counts = job.get("counts") or {}
    return sum(counts.get(key) or 0 for key in DONE), int(job.get("total") or 0)


def exit_status(job: dict[str, Any] | None) -> int:
    return EXIT_PASSED if job is not None and job.get("status") == "passed" else EXIT_NOT_PASSED


# -- the receiver -----------------------------------------------------------------------


def base_url(url: str) -> str:
    """The receiver's base URL from what the user gave: its base, its ``/loader``, with or
    without a path prefix (``http://host/rt/loader`` -> ``http://host/rt``)."""
    parts = urlsplit(url.strip())
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise WatchError(f"not an http(s) URL of a receiver: {url!r}")
    if parts.username is not None or parts.password is not None:
        raise WatchError("give credentials with --token, not in the URL")
    path = parts.path.rstrip("/")
    path = path.removesuffix("/loader")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def split_job_link(text: str) -> tuple[str, str] | None:
    """(base URL, job id) of a job page's URL (what the plugin prints as 'live at'), else None."""
    if not text.startswith(("http://", "https://")):
        return None
    parts = urlsplit(text)
    prefix, sep, job = parts.path.partition("/jobs/")
    if not sep or not job:
        return None
    return base_url(urlunsplit((parts.scheme, parts.netloc, prefix, "", ""))), unquote(job)


@dataclass(frozen=True)
class Receiver:
    base: str
    token: str | None = field(default=None, repr=False)
    stream_timeout: float = DEFAULT_STREAM_TIMEOUT

    def job_url(self, job_id: str) -> str:
        return f"{self.base}/jobs/{quote(job_id, safe='')}"

    def get_json(self, path: str, **query: Any) -> Any:
        with self._open(path, query, REQUEST_TIMEOUT, "application/json") as response:
            try:
                return json.loads(response.read())
            except (OSError, http.client.HTTPException) as exc:
                raise Unreachable(f"{self.base} broke off its answer: {_reason(exc)}") from None
            except ValueError:
                raise WatchError(
                    f"{self.base} is not a pytest-rt receiver (GET {path}: not JSON)"
                ) from None

    def job(self, job_id: str) -> dict[str, Any]:
        answer = self.get_json(f"/api/jobs/{quote(job_id, safe='')}", limit=1)
        return _job_of(answer, self.base)

    def failures(self, job_id: str, status: str) -> tuple[list[dict[str, Any]], int]:
        """The first page of a job's tests of ``status``, and how many there are."""
        answer = self.get_json(
            f"/api/jobs/{quote(job_id, safe='')}", status=status, limit=FAILURES_PAGE
        )
        tests = answer.get("tests") if isinstance(answer, dict) else None
        if not isinstance(tests, list):
            raise WatchError(f"{self.base} is not a pytest-rt receiver (no tests in a job)")
        total = answer.get("tests_total")
        return tests, total if isinstance(total, int) else len(tests)

    def jobs(self, **query: Any) -> list[dict[str, Any]]:
        answer = self.get_json("/api/jobs", **query)
        jobs = answer.get("jobs") if isinstance(answer, dict) else None
        if not isinstance(jobs, list):
            raise WatchError(f"{self.base} is not a pytest-rt receiver (GET /api/jobs)")
        return jobs

    @contextmanager
    def events(self, job_id: str) -> Iterator[Iterator[dict[str, Any]]]:
        """The job's live messages, until the stream ends (StreamLost when it breaks)."""
        response = self._open("/api/events", {"job": job_id}, self.stream_timeout,
                              "text/event-stream")
        try:
            if not response.headers.get("Content-Type", "").startswith("text/event-stream"):
                raise WatchError(f"{self.base} is not a pytest-rt receiver (no event stream)")
            yield sse_messages(response, self.stream_timeout)
        finally:
            response.close()

    def _open(
        self, path: str, query: dict[str, Any], timeout: float, accept: str
    ) -> http.client.HTTPResponse:
        url = self.base + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": accept, "User-Agent": "pytest-rt-watch"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response: http.client.HTTPResponse = urllib.request.urlopen(
                urllib.request.Request(url, headers=headers), timeout=timeout
            )
            return response
        except urllib.error.HTTPError as exc:
            raise self._refusal(path, exc) from None
        except urllib.error.URLError as exc:
            raise Unreachable(f"cannot reach the receiver at {self.base}: {_reason(exc.reason)}"
                              ) from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise Unreachable(f"cannot reach the receiver at {self.base}: {_reason(exc)}"
                              ) from None

    def _refusal(self, path: str, exc: urllib.error.HTTPError) -> WatchError:
        try:
            body = json.loads(exc.read(64 * 1024))
        except (OSError, ValueError, http.client.HTTPException):
            body = None
        finally:
            exc.close()
        said = body.get("error") if isinstance(body, dict) else None
        where = f"{self.base} answered GET {path} with HTTP {exc.code}"
        if exc.code == 404:
            return NotFound(f"{where}: not a pytest-rt receiver?", isinstance(said, str))
        if exc.code in (401, 403, 407):
            return WatchError(f"{where}: a token? (--token or env PYTEST_RT_TOKEN)")
        if exc.code >= 500 or exc.code in (408, 429):
            return Unreachable(where)
        return WatchError(f"{where}: {literal(said)}" if isinstance(said, str) else where)


def _job_of(answer: Any, base: str) -> dict[str, Any]:
    job = answer.get("job") if isinstance(answer, dict) else None
    if not isinstance(job, dict):
        raise WatchError(f"{base} is not a pytest-rt receiver (no job in its answer)")
    return job


def _reason(exc: object) -> str:
    return literal(" ".join(str(exc).split())) or type(exc).__name__


def sse_messages(response: http.client.HTTPResponse, timeout: float) -> Iterator[dict[str, Any]]:
    """The JSON objects of a ``text/event-stream``'s ``data:`` lines; comments (pings) skipped.

    Ends when the stream ends; StreamLost when it breaks or stays silent ``timeout`` s.
    """
    data: list[str] = []
    while True:
        try:
            raw = response.readline(MAX_SSE_LINE)
        except TimeoutError:
            raise StreamLost(f"nothing heard for {timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise StreamLost(_reason(exc)) from None
        if not raw:
            return
        if not raw.endswith(b"\n"):
            raise StreamLost("a line cut short or too long")
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if line.startswith(":"):
            continue
        if line:
            name, _, value = line.partition(":")
            if name == "data":
                data.append(value.removeprefix(" "))
            continue
        if data:
            message = _json_object("\n".join(data))
            data = []
            if message is not None:
                yield message


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# -- what the user sees -----------------------------------------------------------------


class View(Protocol):
    def start(self, job_id: str, url: str) -> None: ...
    def update(self, job: dict[str, Any]) -> None: ...
    def failure(self, word: str, nodeid: str, msg: str | None) -> None: ...
    def note(self, text: str) -> None: ...
    def finish(self, job_id: str, job: dict[str, Any] | None, why: str | None) -> None: ...
    def close(self) -> None: ...


class PlainView:
    """Lines for logs (stdout is not a terminal): the failures, then a summary."""

    def start(self, job_id: str, url: str) -> None:
        _say(f"pytest-rt watch: job {literal(job_id)}: {url}")

    def update(self, job: dict[str, Any]) -> None:
        pass

    def failure(self, word: str, nodeid: str, msg: str | None) -> None:
        lines = [f"{word} {literal(nodeid)}", *(f"    {line}" for line in gist(msg))]
        _say("\n".join(lines))

    def note(self, text: str) -> None:
        print(f"pytest-rt watch: {text}", file=sys.stderr, flush=True)

    def finish(self, job_id: str, job: dict[str, Any] | None, why: str | None) -> None:
        if why:
            _say(f"pytest-rt watch: {why}")
        if job is not None:
            _say(f"pytest-rt watch: {summary_line(job_id, job)}")

    def close(self) -> None:
        pass


def _say(text: str) -> None:
    print(text, flush=True)


STYLES = {"passed": "green", "failed": "red", "error": "red", "skipped": "yellow",
          "running": "cyan", "not_started": "dim", "aborted": "magenta",
          "interrupted": "yellow", "abandoned": "magenta"}


class RichView:
    """A live bar (counts, ETA, elapsed time) with the failures printed above it."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.console = console
        self.progress: Progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            _column(_counts_text),
            _column(_times_text),
            console=console,
            refresh_per_second=4,
        )
        self.task: TaskID | None = None

    def start(self, job_id: str, url: str) -> None:
        self.console.print(_text(("job ", ""), (literal(job_id), "bold"), ("  ", ""),
                                 (url, "underline")))
        self.task = self.progress.add_task(f"job {literal(job_id)[:12]}", total=None,
                                           job={}, seen=time.monotonic())
        self.progress.start()

    def update(self, job: dict[str, Any]) -> None:
        if self.task is None:
            return
        done, total = done_and_total(job)
        self.progress.update(self.task, completed=done, total=total or None, job=job,
                             seen=time.monotonic())

    def failure(self, word: str, nodeid: str, msg: str | None) -> None:
        # One print: the live bar is redrawn below it once, not between its lines.
        lines = [("\n    " + line, "") for line in gist(msg)]
        self.console.print(_text((word, f"bold {STYLES['failed']}"), (" ", ""),
                                 (literal(nodeid), "bold"), *lines))

    def note(self, text: str) -> None:
        self.console.print(_text((text, "dim")))

    def finish(self, job_id: str, job: dict[str, Any] | None, why: str | None) -> None:
        if job is not None:
            self.update(job)
        self.close()
        if why:
            self.console.print(_text((why, "yellow")))
        if job is None:
            return
        status = str(job.get("status"))
        parts: list[tuple[str, str]] = [("job ", ""), (literal(job_id), "bold"), (" ", ""),
                                        (status, f"bold {STYLES.get(status, '')}"), (": ", "")]
        words = counts_words(job) or [("no tests", "")]
        for i, (word, kind) in enumerate(words):
            parts += [(", " if i else "", ""), (word, STYLES.get(kind, ""))]
        duration = job.get("duration")
        if isinstance(duration, (int, float)):
            parts.append((f" in {duration:.2f} s", ""))
        self.console.print(_text(*parts))

    def close(self) -> None:
        self.progress.stop()


def _text(*parts: tuple[str, str]) -> Text:
    """Styled text from (plain string, style) pairs: the strings are never read as markup."""
    from rich.text import Text

    text = Text()
    for plain, style in parts:
        text.append(plain, style=style or None)
    return text


def _counts_text(task: Task) -> Text:
    job = task.fields.get("job") or {}
    parts: list[tuple[str, str]] = []
    for word, kind in counts_words(job):
        if kind in ("not_started",):
            continue
        parts += [(" " if parts else "", ""), (word, STYLES.get(kind, ""))]
    return _text(*parts)


def _times_text(task: Task) -> Text:
    job: dict[str, Any] = task.fields.get("job") or {}
    since = time.monotonic() - float(task.fields.get("seen") or time.monotonic())
    running = job.get("status") == "running"
    duration = job.get("duration")
    elapsed = None
    if isinstance(duration, (int, float)):
        elapsed = duration + (since if running else 0.0)
    parts = [(clock(elapsed), "")]
    eta = job.get("eta_seconds")
    if running:
        left = max(0.0, eta - since) if isinstance(eta, (int, float)) else None
        parts.append((f"  ETA {clock(left)}", "cyan"))
    return _text(*parts)


def _column(render: Callable[[Task], Text]) -> ProgressColumn:
    """A progress column drawn by ``render`` (rich is imported only once it is needed)."""
    from rich.progress import ProgressColumn

    class Column(ProgressColumn):
        def render(self, task: Task) -> Text:
            return render(task)

    return Column()


# -- following --------------------------------------------------------------------------


@dataclass
class Follower:
    """Follows one job to its end on ``view``; reconnects ``retries`` times in a row."""

    receiver: Receiver
    job_id: str
    view: View
    retries: int = DEFAULT_RETRIES
    printed: set[str] = field(default_factory=set)

    def run(self) -> dict[str, Any] | None:
        """The job as it ended (None: deleted); Unreachable once the retries are spent."""
        failed_tries = 0
        while True:
            try:
                with self.receiver.events(self.job_id) as messages:
                    job = self.catch_up()
                    if job.get("status") in ENDED:
                        return job
                    for message in messages:
                        failed_tries = 0  # it talks again: a later drop starts anew
                        ended, job_now = self.take(message)
                        if ended:
                            return self.settle(job_now)
                reason = "the receiver ended the stream"
            except NotFound as exc:
                if not exc.is_receiver:
                    raise
                self.view.note("the job was deleted on the receiver")
                return None
            except (Unreachable, StreamLost) as exc:
                reason = str(exc)
            failed_tries += 1
            if failed_tries > self.retries:
                raise Unreachable(f"lost the receiver at {self.receiver.base}: {reason}")
            self.view.note(f"{reason}; reconnecting ({failed_tries}/{self.retries})")
            time.sleep(min(8.0, 0.5 * 2 ** (failed_tries - 1)))

    def catch_up(self) -> dict[str, Any]:
        """The job now, with the failures not printed yet (all of them, on attaching)."""
        job = self.receiver.job(self.job_id)
        self.show_job(job)
        for status, word in (("failed", "FAILED"), ("error", "ERROR")):
            tests, total = self.receiver.failures(self.job_id, status)
            for test in tests:
                self.show_test(test, word)
            if total > len(tests):
                self.view.note(f"{total - len(tests)} more {status} tests: "
                               f"{self.receiver.job_url(self.job_id)}")
        return job

    def settle(self, job: dict[str, Any] | None) -> dict[str, Any] | None:
        """The job as it ended, once the failures the stream did not show are printed.

        The messages of one write all carry the Job as it is after the write: a run's
        last failure can come after a message that already says the job is over.
        """
        if job is None:
            return None
        try:
            final = self.catch_up()
        except (Unreachable, NotFound) as exc:
            self.view.note(f"could not read the job's last failures: {exc}")
            return job
        return final if final.get("status") in ENDED else job

    def take(self, message: dict[str, Any]) -> tuple[bool, dict[str, Any] | None]:
        """Apply one stream message: (whether the job ended, the job as it is)."""
        kind = message.get("kind")
        if message.get("job_id") != self.job_id:
            return False, None
        if kind == "job_deleted":
            self.view.note("the job was deleted on the receiver")
            return True, None
        job = message.get("job")
        if kind == "job_finished" and not isinstance(job, dict):
            job = self.receiver.job(self.job_id)  # abandoned jobs come without their Job
        if not isinstance(job, dict):
            return False, None
        # A message carries each test that moved in its window (``tests``); a receiver
        # before the coalesced stream sent one ``test`` a message.
        tests = message.get("tests")
        if not isinstance(tests, list):
            test = message.get("test")
            tests = [test] if kind == "test_finished" else []
        for test in tests:
            if isinstance(test, dict):
                self.show_test(test)
        self.show_job(job)
        return job.get("status") in ENDED, job

    def show_job(self, job: dict[str, Any]) -> None:
        self.view.update(job)
        for error in job.get("collect_errors") or []:
            if isinstance(error, dict):
                self.once(f"collect:{error.get('nodeid')}", "ERROR collecting",
                          str(error.get("nodeid")), error.get("msg"))

    def show_test(self, test: dict[str, Any], word: str | None = None) -> None:
        status = test.get("status")
        # The test Ctrl-C stopped is an error with outcome `interrupted`: not a failure.
        if status not in ("failed", "error") or test.get("outcome") == "interrupted":
            return
        nodeid = str(test.get("nodeid"))
        msg = test.get("msg")
        self.once(f"test:{nodeid}", word or status.upper(), nodeid,
                  msg if isinstance(msg, str) else None)

    def once(self, key: str, word: str, nodeid: str, msg: str | None) -> None:
        if key not in self.printed:
            self.printed.add(key)
            self.view.failure(word, nodeid, msg)


def find_latest(receiver: Receiver, wait: float, view: View) -> str:
    """The newest running job; else the first job to appear within ``wait`` seconds."""
    running = receiver.jobs(status="running", limit=1)
    if running:
        return str(running[0]["job_id"])
    # Any job not listed now is new, running or (a quick run) already over: no clocks
    # compared, the receiver's may differ from ours.
    known = {job.get("job_id") for job in receiver.jobs(limit=LATEST_PAGE)}
    view.note(f"no job running at {receiver.base}; waiting up to {wait:g} s for one")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        fresh = [job for job in receiver.jobs(limit=LATEST_PAGE) if job.get("job_id") not in known]
        if fresh:  # running jobs are listed first, each group newest first
            return str(fresh[0]["job_id"])
    raise WatchError(f"no job started at {receiver.base} within {wait:g} s")


def watch(receiver: Receiver, job_id: str | None, wait: float, retries: int, view: View) -> int:
    """Follow the job (None: the latest) to its end on ``view``; the exit status."""
    if job_id is None:
        job_id = find_latest(receiver, wait, view)
    follower = Follower(receiver, job_id, view, retries)
    try:
        # Unknown or unreachable: said now, not after the retries of following.
        first = receiver.job(job_id)
    except NotFound as exc:
        if exc.is_receiver:
            raise WatchError(f"no job {literal(job_id)!r} at {receiver.base}") from None
        raise
    view.start(job_id, receiver.job_url(job_id))
    # A job already over gets its failures and summary only; a running one is followed
    # (the stream opened first, then the job read again: nothing falls between).
    job = follower.catch_up() if first.get("status") in ENDED else follower.run()
    why = None
    if job is not None and job.get("status") == "abandoned":
        why = "the receiver heard nothing of the job for a while: abandoned"
    view.finish(job_id, job, why)
    return exit_status(job)


# -- the command ------------------------------------------------------------------------


DESCRIPTION = (
    "Follow a job live from the receiver: a progress bar, failures as they happen. Exit "
    "status: 0 the job passed, 1 it did not, 2 usage or receiver problems, 130 Ctrl-C."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``pytest-rt watch``'s options, on its subparser of the ``pytest-rt`` command."""
    parser.add_argument("job", nargs="?", metavar="JOB_ID",
                        help="the job to follow, or its page's URL (default: --latest)")
    parser.add_argument("--latest", action="store_true",
                        help="follow the newest running job, or the next one to start")
    parser.add_argument("--url", help="the receiver (its base or /loader URL; default: env "
                        f"PYTEST_RT_URL, else {DEFAULT_URL})")
    parser.add_argument("--token", help="bearer token (default: env PYTEST_RT_TOKEN)")
    parser.add_argument("--wait", type=_seconds, default=DEFAULT_WAIT, metavar="SECONDS",
                        help="with --latest, how long to wait for a job to start "
                        "(default %(default)g)")
    parser.add_argument("--timeout", type=_seconds, default=DEFAULT_STREAM_TIMEOUT,
                        metavar="SECONDS", help="silence after which the stream is opened "
                        "again (default %(default)g; the receiver pings every 15 s)")
    parser.add_argument("--retries", type=int, default=DEFAULT_RETRIES, metavar="N",
                        help="reconnections in a row before giving up (default %(default)s)")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1e6 seconds: {text!r}")
    return value


def target(args: argparse.Namespace) -> tuple[Receiver, str | None]:
    """The receiver and the job (None: the latest) the command line names."""
    if args.job is not None and args.latest:
        raise WatchError("give a JOB_ID or --latest, not both")
    if args.retries < 0:
        raise WatchError("--retries must be 0 or more")
    token = args.token or os.environ.get("PYTEST_RT_TOKEN") or None
    link = split_job_link(args.job) if args.job else None
    job = args.job
    if link is not None:
        link_base, job = link
        base = base_url(args.url) if args.url else link_base
    else:
        base = base_url(args.url or os.environ.get("PYTEST_RT_URL") or DEFAULT_URL)
    return Receiver(base, token, args.timeout), job


def make_view() -> View:
    from rich.console import Console

    if sys.stdout.isatty():
        return RichView(Console(highlight=False))
    return PlainView()


def run(args: argparse.Namespace, _parser: argparse.ArgumentParser) -> int:
    """``pytest-rt watch``: its exit status."""
    try:
        import rich  # noqa: F401
    except ImportError:
        print(MISSING_EXTRA, file=sys.stderr)
        return EXIT_USAGE
    view: View | None = None
    try:
        receiver, job_id = target(args)
        view = make_view()
        return watch(receiver, job_id, args.wait, args.retries, view)
    except KeyboardInterrupt:
        _close(view)
        print("pytest-rt watch: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `pytest-rt watch | head`: the reader has all it wanted
        # Python would report the pipe again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13  # as a process killed by SIGPIPE
    except WatchError as exc:
        _close(view)
        print(f"pytest-rt watch: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _close(view: View | None) -> None:
    if view is not None:
        view.close()
