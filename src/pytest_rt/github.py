"""A run's summary for GitHub Actions' job page (the file GITHUB_STEP_SUMMARY names).

Markdown, appended once at the end of a run: counts, the live link, and the
failures first (at most MAX_FAILURES). Test names and messages are untrusted
text: they go inside a fenced block that nothing in them can close.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

MAX_FAILURES = 20
FENCE = "~~~~"


def first_line(msg: str) -> str:
    """The line of a failure that says what went wrong: pytest's first `E` line."""
    lines = [line for line in msg.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("E "):
            return line[:200]
    return lines[0][:200] if lines else ""


def new_failures(dashboard: str, job_id: str, timeout: float = 2.0) -> set[str]:
    """Node ids the receiver marks as new failures of the job (`pytest-rt serve` compares
    with the previous finished job of the same project and branch); empty when it
    can't say. Only runs under GitHub Actions, once, after delivery."""
    import urllib.parse
    import urllib.request

    url = (f"{dashboard}api/jobs/{urllib.parse.quote(job_id, safe='')}"
           f"?change=new&limit={MAX_FAILURES}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - http(s)
            data = json.loads(answer.read(1 << 20))
        return {str(test["nodeid"]) for test in data.get("tests", [])}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return set()


def markdown(*, title: str, counts: Counter[str], total: int, live_url: str | None,
             failures: list[tuple[str, str]], failed: int, new: set[str] | None = None) -> str:
    order = ("failed", "error", "passed", "skipped", "xfailed", "xpassed", "interrupted")
    parts = [f"{counts[name]} {name}" for name in order if counts.get(name)]
    head = f"### {_plain(title)}\n\n" + (", ".join(parts) or "no tests") + f" of {total}"
    if live_url:
        head += f" · [live results]({live_url.replace(')', '%29')})"
    text = [head, ""]
    if failures:
        new = new or set()
        shown = f"first {len(failures)} of {failed}" if failed > len(failures) else str(failed)
        fresh = sum(1 for nodeid, _ in failures if nodeid in new)
        text += [f"Failures ({shown}" + (f", {fresh} new" if fresh else "") + "):", "", FENCE]
        # New failures first: what a reviewer asks about a red run.
        for nodeid, line in sorted(failures, key=lambda failure: failure[0] not in new):
            text.append(_plain(nodeid) + ("  [new]" if nodeid in new else ""))
            if line:
                text.append(f"    {_plain(line)}")
        text.append(FENCE)
    return "\n".join(text) + "\n\n"


def _plain(text: str) -> str:
    return text.replace(FENCE, "~~ ~~").replace("\r", " ").replace("\n", " ")


def append(text: str) -> str | None:
    """Append to the step summary; None, or why it could not be written."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return None
    try:
        with Path(path).open("a", encoding="utf-8") as summary:
            summary.write(text)
    except OSError as exc:
        return f"cannot write GITHUB_STEP_SUMMARY ({exc.strerror})"
    return None
