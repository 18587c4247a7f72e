"""A run's summary for GitHub Actions' job page (the file GITHUB_STEP_SUMMARY names).

Markdown, appended once at the end of a run: counts, the live link, and the
failures first (at most MAX_FAILURES). Test names and messages are untrusted
text: they go inside a fenced block that nothing in them can close.
"""

from __future__ import annotations

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


def markdown(*, title: str, counts: Counter[str], total: int, live_url: str | None,
             failures: list[tuple[str, str]], failed: int) -> str:
    order = ("failed", "error", "passed", "skipped", "xfailed", "xpassed", "interrupted")
    parts = [f"{counts[name]} {name}" for name in order if counts.get(name)]
    head = f"### {_plain(title)}\n\n" + (", ".join(parts) or "no tests") + f" of {total}"
    if live_url:
        head += f" · [live results]({live_url.replace(')', '%29')})"
    text = [head, ""]
    if failures:
        shown = f"first {len(failures)} of {failed}" if failed > len(failures) else str(failed)
        text += [f"Failures ({shown}):", "", FENCE]
        for nodeid, line in failures:
            text.append(_plain(nodeid))
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
