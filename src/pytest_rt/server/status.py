"""The rules that turn test results into a job's status and counts (pure)."""

from __future__ import annotations

from collections.abc import Iterable

from .. import protocol

FINAL = protocol.STATUSES  # a test's stored status once it has its result
COUNT_KEYS = protocol.SHOWN_STATUSES
# A job's stored status. ``abandoned``: still running as far as its runs said, but
# nothing was heard for --stale-after seconds; its running tests show as aborted,
# and any late event brings it back to ``running``. ``deleting`` is never shown.
JOB_STATUSES = protocol.JOB_STATUSES
FINISHED = protocol.FINISHED_JOB_STATUSES
NO_TESTS_RAN = 5  # pytest's exit code when nothing was collected: not a failure
INTERRUPTED_EXIT = 2  # Ctrl-C (and collection errors, which count as failures first)


def shown_status(stored: str, job_finished: bool) -> str:
    """A test's status as shown: a test still running when its job ended was aborted."""
    if stored == "running" and job_finished:
        return "aborted"
    return stored


def is_failure(status: str, outcome: str | None) -> bool:
    # The test that Ctrl-C interrupted is reported as an error; it makes the job
    # interrupted, not failed.
    return status in ("failed", "error") and outcome != "interrupted"


def job_status(
    counts: Iterable[tuple[str, str | None, int]],
    collect_errors: bool,
    exits: list[int],
    interrupted: bool,
) -> str:
    """The status of a job whose every run has sent ``stopTestRun``.

    failed: a test failed or errored, a file did not collect, or pytest exited
    with a code other than 0, 5 (no tests) and 2 (interrupted); interrupted:
    Ctrl-C, or a test never got its result; else passed.
    """
    rows = list(counts)
    if collect_errors or any(is_failure(status, outcome) and n for status, outcome, n in rows):
        return "failed"
    if interrupted or INTERRUPTED_EXIT in exits:
        return "interrupted"
    if any(code not in (0, NO_TESTS_RAN) for code in exits):
        return "failed"
    if any(status == "running" and n for status, _, n in rows):
        return "interrupted"
    return "passed"


def count_tests(
    rows: Iterable[tuple[str, str | None, int]], job_finished: bool
) -> tuple[dict[str, int], dict[str, int]]:
    """``counts`` per shown status and ``outcome_counts`` (xfailed, xpassed) of a job."""
    counts = dict.fromkeys(COUNT_KEYS, 0)
    outcomes = {"xfailed": 0, "xpassed": 0}
    for status, outcome, n in rows:
        shown = shown_status(status, job_finished)
        if shown in counts:
            counts[shown] += n
        if outcome in outcomes:
            outcomes[outcome] += n
    return counts, outcomes


def is_flaky(statuses: list[str]) -> bool:
    """Recent results (newest first) flip between pass and fail at least twice in the last 10."""
    kinds = [s == "passed" for s in statuses[:10] if s in ("passed", "failed", "error")]
    flips = sum(1 for a, b in zip(kinds, kinds[1:], strict=False) if a != b)
    return flips >= 2
