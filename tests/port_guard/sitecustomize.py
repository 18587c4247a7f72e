"""Python imports ``sitecustomize`` at start-up from anywhere on its path, before pytest, its
plugins or xdist's rewriting of sys.path: with this folder on PYTHONPATH (tests/conftest.py
puts it there for everything the tests start), every Python the tests start has port 8765
guarded (rt_port_guard.py). Then the sitecustomize this one hides, if any, runs as usual.
"""

from __future__ import annotations

import rt_next_sitecustomize
import rt_port_guard  # noqa: F401  (importing it guards the sockets)

rt_next_sitecustomize.run_after(__file__)
