"""Keeps the tests off port 8765, the default receiver's, where ./scripts/demo leaves one.

Importing this module patches `socket.socket.connect` and `connect_ex` in the process: a
connection to port 8765, on any host, is refused as if nobody listened, and is written down
(one line per attempt, in the file that PYTEST_RT_TEST_GUARD_LOG names). tests/conftest.py
imports it in the suite's own processes and puts this folder on PYTHONPATH for every Python
the tests start (inner subprocess runs, their xdist workers, replay), where sitecustomize.py
imports it; after each test it fails the test that tried, unless the test asked for
`default_port_refused`.

A receiver listening on 127.0.0.1:8765 during the suite therefore gets nothing, whatever a
test configures, and a test that would reach it fails instead of leaving a stray job there.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from typing import Any

PORT = 8765
LOG = "PYTEST_RT_TEST_GUARD_LOG"
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _forbidden(address: Any) -> bool:
    return (isinstance(address, tuple) and len(address) >= 2 and address[1] == PORT)


def _record(address: tuple[Any, ...]) -> None:
    path = os.environ.get(LOG)
    if not path:
        return
    line = f"{os.getpid()} {address[0]}:{address[1]} {' '.join(sys.argv)[:300]}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("utf-8", "replace"))
    finally:
        os.close(fd)


def connect(self: socket.socket, address: Any) -> None:
    if _forbidden(address):
        _record(address)
        raise ConnectionRefusedError(errno.ECONNREFUSED,
                                     f"port {PORT} is off limits to the tests (rt_port_guard)")
    return _real_connect(self, address)


def connect_ex(self: socket.socket, address: Any) -> int:
    if _forbidden(address):
        _record(address)
        return errno.ECONNREFUSED
    return _real_connect_ex(self, address)


def install() -> None:
    """Patch this process's sockets; idempotent."""
    if socket.socket.connect is not connect:
        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]


install()
