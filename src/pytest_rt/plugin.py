"""pytest hooks of pytest-rt: options and lifecycle only.

Everything a run does lives in ``pytest_rt.reporter.Reporter``, created here
when ``--rt`` is given. Without ``--rt`` this module is all that is imported:
no thread, no socket, no file.
"""

from __future__ import annotations

import pytest

from pytest_rt.settings import add_options

REPORTER = "pytest-rt-reporter"
XDIST_HOOKS = "pytest-rt-xdist"
DESCRIPTIONS = "pytest-rt-descriptions"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("rt", False):
        return
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        # An xdist worker: the controller sends, from the reports xdist relays. The worker
        # only hands over the docstrings the controller cannot import (descriptions.py).
        from pytest_rt.descriptions import KEY, WorkerDescriptions

        if isinstance(workerinput.get(KEY), str):
            config.pluginmanager.register(WorkerDescriptions(workerinput[KEY]), DESCRIPTIONS)
        return
    if config.getoption("collectonly", False) or config.getoption("setuponly", False):
        return  # no test runs (--collect-only, --setup-only, --setup-plan): nothing is sent
    from pytest_rt.reporter import Reporter, XdistHooks
    from pytest_rt.settings import resolve

    reporter = Reporter(config, resolve(config))
    config.pluginmanager.register(reporter, REPORTER)
    # xdist's own hooks exist whatever name it was loaded under: "xdist" by its entry
    # point, "xdist.plugin" by `-p xdist.plugin` (its way with plugin autoload disabled).
    if hasattr(config.hook, "pytest_xdist_node_collection_finished"):
        config.pluginmanager.register(XdistHooks(reporter), XDIST_HOOKS)


def pytest_unconfigure(config: pytest.Config) -> None:
    reporter = config.pluginmanager.get_plugin(REPORTER)
    if reporter is None:
        return
    reporter.close()
    config.pluginmanager.unregister(name=REPORTER)
    xdist_hooks = config.pluginmanager.get_plugin(XDIST_HOOKS)
    if xdist_hooks is not None:
        xdist_hooks.close()
        config.pluginmanager.unregister(name=XDIST_HOOKS)
