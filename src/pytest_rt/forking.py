"""What a fork of the test process sees of our sender thread: nothing.

On Python 3.12+ ``os.fork()`` in a process with more than one thread warns
(``DeprecationWarning: This process (pid=N) is multi-threaded, use of fork()
may lead to deadlocks in the child.``). With ``--rt`` our sender thread alone
makes a single-threaded test process multi-threaded, and the warning lands in
the summary of the user's forking test. It is hidden here, but only when our
threads are the only reason for it: a user's own thread keeps it.

In a forked child the parent's Delivery is not the child's: its sender thread
does not exist there, its locks may be held, its journal and socket are the
parent's. The child's deliveries are made inert, so a child that goes on
running pytest hooks (or exits normally) sends nothing, writes nothing into the
parent's journal and removes nothing.

``os.register_at_fork`` hooks cannot be unregistered, so they are registered
once, at import, and consult the live deliveries.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_rt.delivery import Delivery

# CPython's words (Modules/posixmodule.c), for os.fork() and os.forkpty(); the pid is
# left out where there is no getpid.
_MESSAGE = (r"This process (\(pid=\d+\) )?is multi-threaded, "
            r"use of fork(pty)?\(\) may lead to deadlocks in the child\.")
_WARNS = sys.version_info >= (3, 12)

_live: weakref.WeakSet[Delivery] = weakref.WeakSet()
_hiding: warnings.catch_warnings | None = None  # set from before the fork to after it


def track(delivery: Delivery) -> None:
    """Count delivery's sender thread as ours at the next fork; make it inert in a child."""
    _live.add(delivery)


def _threads() -> int:
    """The count CPython warns on: the kernel's on Linux, threading's elsewhere."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            # Field 20 is num_threads; field 2, the command, may hold spaces or ")".
            return int(stat.read().rsplit(b")", 1)[1].split()[17])
    except (OSError, ValueError, IndexError):
        return threading.active_count()


def _before() -> None:
    global _hiding
    # An exception here would be "ignored" into sys.unraisablehook, which pytest turns
    # into a warning on the user's test: the very noise this module is here to avoid.
    try:
        if not _WARNS or _hiding is not None:
            return
        ours = sum(1 for delivery in list(_live) if delivery.thread.is_alive())
        if ours == 0 or _threads() - ours > 1:
            return  # someone else's thread: the warning is theirs
        hiding = warnings.catch_warnings()  # restores the filters list as it was, exactly
        hiding.__enter__()
        _hiding = hiding
        warnings.filterwarnings("ignore", message=_MESSAGE, category=DeprecationWarning)
    except Exception:  # then the warning simply shows
        pass


def _restore() -> None:
    global _hiding
    hiding, _hiding = _hiding, None
    if hiding is not None:
        with contextlib.suppress(Exception):  # (see _before)
            hiding.__exit__(None, None, None)


def _in_child() -> None:
    with contextlib.suppress(Exception):  # (see _before)
        for delivery in list(_live):
            delivery.forked = True
        _live.clear()
    _restore()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(before=_before, after_in_parent=_restore, after_in_child=_in_child)
