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
import re
import sys
import threading
import warnings
import weakref
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from pytest_rt.delivery import Delivery

# CPython's words (Modules/posixmodule.c), for os.fork() and os.forkpty(); the pid is
# left out where there is no getpid.
_MESSAGE = re.compile(r"This process (\(pid=\d+\) )?is multi-threaded, "
                      r"use of fork(pty)?\(\) may lead to deadlocks in the child\.")
_WARNS = sys.version_info >= (3, 12)

_live: weakref.WeakSet[Delivery] = weakref.WeakSet()


def track(delivery: Delivery) -> None:
    """Count delivery's sender thread as ours at the next fork; make it inert in a child."""
    _live.add(delivery)


class _OneForkWarning:
    """The message pattern of an "ignore" filter that takes itself out when it matches.

    The filter cannot be removed by a fork hook: 3.12 warns between the hooks run
    before and after the fork, but 3.13 warns after all of them. So it goes away
    the moment it has ignored the warning, leaving the filters list as it was
    (CPython holds the entry it is matching, and rereads the list's length, so
    removing it here is safe). A warning CPython never looks up (one already in a
    "default" registry) leaves it armed until the next fork, or until the
    enclosing catch_warnings (pytest has one around every test) puts the list back.
    """

    def __init__(self) -> None:
        self.filters = cast("list[Any]", warnings.filters)  # a list, whatever typeshed says
        self.entry = ("ignore", self, DeprecationWarning, None, 0)
        self.filters.insert(0, self.entry)
        _filters_mutated()

    def match(self, text: str) -> bool:
        if _MESSAGE.match(text) is None:
            return False
        self.remove()
        return True

    def remove(self) -> None:
        if any(entry is self.entry for entry in self.filters):
            self.filters.remove(self.entry)  # (only this entry holds self: equal to no other)
            _filters_mutated()

    def __repr__(self) -> str:
        return "<pytest-rt: the fork warning our sender thread causes>"


def _filters_mutated() -> None:
    # What warnings.filterwarnings() does after changing the list: registries of
    # warnings already shown are checked against the filters again.
    mutated = getattr(warnings, "_filters_mutated", None)
    if mutated is not None:
        mutated()


_armed: _OneForkWarning | None = None


def _threads() -> int:
    """The count CPython warns on: the kernel's on Linux, threading's elsewhere."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            # Field 20 is num_threads; field 2, the command, may hold spaces or ")".
            return int(stat.read().rsplit(b")", 1)[1].split()[17])
    except (OSError, ValueError, IndexError):
        return threading.active_count()


def _disarm() -> None:
    global _armed
    armed, _armed = _armed, None
    if armed is not None:
        armed.remove()


def _before() -> None:
    global _armed
    # An exception here would be "ignored" into sys.unraisablehook, which pytest turns
    # into a warning on the user's test: the very noise this module is here to avoid.
    try:
        _disarm()  # a filter the last fork did not use must not hide this one's
        if not _WARNS:
            return
        ours = sum(1 for delivery in list(_live) if delivery.thread.is_alive())
        if ours and _threads() - ours <= 1:  # else someone else's thread: their warning
            _armed = _OneForkWarning()
    except Exception:  # then the warning simply shows
        pass


def _in_child() -> None:
    with contextlib.suppress(Exception):  # (see _before)
        for delivery in list(_live):
            delivery.forked = True
        _live.clear()
    with contextlib.suppress(Exception):
        _disarm()  # the child does not warn


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(before=_before, after_in_child=_in_child)
