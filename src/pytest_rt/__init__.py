"""pytest-rt: stream pytest results live over HTTP.

Importing this package must stay cheap: it is what the seed's
``pytest_plugins = "pytest_rt"`` imports in every test run. The hooks live in
``pytest_rt.plugin``, which this module pulls in as a pytest plugin.
"""

from __future__ import annotations

# 2.x: the successor of the original pytest-rt (1.x on PyPI), keeping its protocol.
__version__ = "2.0.0.dev0"

# When loaded the seed's way (conftest.py: pytest_plugins = "pytest_rt"),
# pytest registers this module and then imports the hooks module below.
pytest_plugins = ["pytest_rt.plugin"]
