"""The plugin object: follows one pytest run through its hooks and emits its events.

Created in pytest_configure only when ``--rt`` is given, and only on the xdist
controller (workers' reports reach the controller's hooks through xdist), so a
run has exactly one job, one start and one stop per test.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from pytest_rt import __version__, ci, events, github, protocol
from pytest_rt.delivery import Delivery, Report
from pytest_rt.descriptions import DescriptionFiles
from pytest_rt.events import Job, Limits, TestResult
from pytest_rt.settings import Settings

LIVE_LINK_WAIT = 0.2  # seconds the start of a run may wait for the receiver's first answer
DASHBOARDS = "pytest-rt/dashboards"  # pytest's cache: dashboard URLs receivers announced


class Reporter:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.job = Job(settings.job_id, settings.custom_id)
        self.limits = Limits(settings.max_msg, settings.redact)
        self.delivery: Delivery | None = None
        self.report: Report | None = None
        self.uuids: dict[str, str] = {}
        self.refs: dict[str, str] = {}  # events.test_ref() of each test
        self.new_uuid = events.TestUuids(settings.custom_id)
        self.run_started = False
        self.start_time: float | None = None
        self.open: dict[str, TestResult] = {}
        self.counts: Counter[str] = Counter()
        self.started = 0
        self.collect_errors: list[dict[str, str]] = []
        self.distributed = False
        self.workers = 0
        self.worker_hint: str | None = None  # the xdist worker whose logstart is in progress
        self.interrupt_msg = ""
        self.failures: list[tuple[str, str]] = []  # (node id, first line), for summaries

    # -- lifecycle --------------------------------------------------------------------

    # Hook implementations take only the arguments they use (pluggy passes just those).

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self) -> None:
        self.distributed = self.config.pluginmanager.getplugin("dsession") is not None
        try:
            self.delivery = Delivery(self.settings, self.job.run_id)
        except Exception as exc:  # never the user's run: say so once, send nothing
            self._say(f"delivery not started: {type(exc).__name__}: {exc}")
            return
        self._emit = self.delivery.emit_line  # type: ignore[method-assign]  # one call less
        if self.settings.insecure:
            self._say("--rt-insecure: HTTPS certificates of the receiver are NOT verified")

    def close(self) -> None:
        """pytest_unconfigure: make sure the sender thread is gone, whatever happened."""
        if self.delivery is not None and self.report is None:
            self.report = self.delivery.finish()

    def _emit(self, text: str) -> None:
        """Without delivery (it failed to start), events go nowhere; see sessionstart."""

    # -- collection -------------------------------------------------------------------

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            error = {"nodeid": report.nodeid, "msg": self.limits.clean(events.failure_text(report))}
            self.collect_errors.append(error)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not self.distributed:
            self._start_run([self._entry_for_item(item) for item in session.items])

    def collected_ids(self, ids: list[str], workers: int,
                      descriptions: dict[str, str] | None = None) -> None:
        """xdist: the controller never collects; a worker's collection is the list, and
        the worker's descriptions (descriptions.py) their docstrings."""
        self.workers = workers
        if not self.run_started:
            docs = descriptions or {}
            self._start_run([self._entry(nodeid, description=docs.get(nodeid))
                             for nodeid in ids])

    def _entry_for_item(self, item: pytest.Item) -> str:
        return self._entry(
            item.nodeid,
            location=item.location[2],
            description=events.description_of(item),
            markers=_marker_names(item),
        )

    def _entry(self, nodeid: str, **extra: Any) -> str:
        entry, self.refs[nodeid] = events.test_entry(nodeid, self._uuid(nodeid), **extra)
        return entry

    def _uuid(self, nodeid: str) -> str:
        uuid_ = self.uuids.get(nodeid)
        if uuid_ is None:
            uuid_ = self.uuids[nodeid] = self.new_uuid(nodeid)
        return uuid_

    def _ref(self, nodeid: str) -> str:
        """The test's `test` and `uuid` fields, encoded once for its start and stop."""
        ref = self.refs.get(nodeid)
        if ref is None:
            ref = self.refs[nodeid] = events.test_ref(nodeid, self._uuid(nodeid))
        return ref

    def _start_run(self, tests: list[str]) -> None:
        self.run_started = True
        self.ci = ci.detect(os.environ, self.config.rootpath)
        self.start_time = time.time()
        extra = {
            "xdist": self.distributed,
            "workers": self.workers,
            "rootdir": self.config.rootpath.name,
            "pytest_version": pytest.__version__,
            "plugin_version": __version__,
            "project": self.settings.project,
            "ci": self.ci,
            "shards": self.settings.shards,
        }
        self._emit(events.start_test_run(
            self.job, tests, env=self.settings.env, custom_data=self.settings.custom_data,
            start=self.start_time, collect_errors=self.collect_errors, extra=extra))
        self.total = len(tests)
        self._announce_live_link()

    def _announce_live_link(self) -> None:
        """`pytest-rt: live at <job page>` before the tests run: what people click in CI.

        The receiver names its dashboard in its answers (a receiver without one names
        nothing, and nothing is printed). The run's first answer is waited for at most
        LIVE_LINK_WAIT; failing that, what the same URL announced on an earlier run; and
        failing that, the link comes after the test during which the answer arrives.
        """
        if self.delivery is None:
            return
        dashboard = self.delivery.dashboard(LIVE_LINK_WAIT)
        known = self._known_dashboards()
        if dashboard is None and self.settings.url in known:
            dashboard = known[self.settings.url]
        elif dashboard is None:
            self._awaiting_link = not self.delivery.sender.answered.is_set()
            return
        self._show_link(dashboard, known)

    def _late_link(self) -> None:
        """After a test: the first answer came in since the start; its link, if any."""
        assert self.delivery is not None
        if self.delivery.sender.answered.is_set():
            self._awaiting_link = False
            if self.delivery.sender.dashboard is not None:
                self._show_link(self.delivery.sender.dashboard, self._known_dashboards())

    def _known_dashboards(self) -> dict[str, str]:
        """What receivers announced on earlier runs, by URL (pytest's cache)."""
        cache = getattr(self.config, "cache", None)
        with contextlib.suppress(Exception):  # no cache, or one from elsewhere
            known = cache.get(DASHBOARDS, {}) if cache is not None else {}
            return {str(k): str(v) for k, v in known.items()}
        return {}

    def _show_link(self, dashboard: str, known: dict[str, str]) -> None:
        if not dashboard.startswith(("http://", "https://")):
            return
        cache = getattr(self.config, "cache", None)
        if cache is not None and known.get(self.settings.url) != dashboard:
            with contextlib.suppress(Exception):  # a read-only cache directory
                cache.set(DASHBOARDS, {**known, self.settings.url: dashboard})
        self.dashboard = dashboard
        self.live_url = f"{dashboard}jobs/{urllib.parse.quote(self.job.job_id, safe='')}"
        self._say(f"live at {self.live_url}", yellow=False)

    # -- tests ------------------------------------------------------------------------

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        if nodeid in self.open:
            return  # pytest-rerunfailures' next attempt: still the same test
        self._open(nodeid, self.worker_hint)

    def _open(self, nodeid: str, worker: str | None) -> TestResult:
        if not self.run_started:
            self._start_run([])
        result = self.open[nodeid] = TestResult(nodeid, worker)
        self.started += 1
        ref = self.refs.get(nodeid) or self._ref(nodeid)
        self._emit(events.start_test_item(self.job, ref, worker))
        return result

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = self.open.get(report.nodeid)
        if result is None:  # a report without logstart: xdist's crashed-worker report
            result = self._open(report.nodeid, _worker_of(report))
        if self.distributed and result.worker is None:  # only xdist's reports name one
            result.worker = _worker_of(report)
        outcome = report.outcome
        if outcome != "passed" and str(outcome) == "rerun":  # pytest-rerunfailures' own
            result.add(report)
        else:  # TestResult.add's common case, without the call: three times per test
            result.reports.append(report)
        if report.when not in ("setup", "call", "teardown") and not result.rerun_pending:
            self._close(result)  # a crashed worker sends no logfinish

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        if self._awaiting_link:
            self._late_link()
        result = self.open.get(nodeid)
        if result is None:
            return
        if result.rerun_pending:
            result.next_attempt()
        else:
            self._close(result)

    def _close(self, result: TestResult) -> None:
        del self.open[result.nodeid]
        stop = events.stop_test_item(
            self.job, result, self.refs[result.nodeid], self.limits, self.interrupt_msg,
            capture=self.settings.capture)
        line, outcome, msg = stop
        self.counts[outcome] += 1
        if outcome in protocol.FAILED_OUTCOMES and len(self.failures) < github.MAX_FAILURES:
            self.failures.append((result.nodeid, github.first_line(msg)))
        self._emit(line)

    # -- the end ----------------------------------------------------------------------

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self.interrupt_msg = f"interrupted: {excinfo.exconly()}"

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.delivery is None:
            return
        if not self.run_started:
            self._start_run([])  # collection never finished: the receiver still hears of it
        for result in list(self.open.values()):
            self._close(result)
        not_started = self.total - self.started
        self._emit(events.stop_test_run(
            self.job, exitstatus=int(exitstatus), counts=self.counts, total=self.total,
            started=self.started, start=self.start_time, send_report=self.settings.job_report,
            interrupted=bool(session.shouldstop or session.shouldfail or not_started > 0
                             or exitstatus == pytest.ExitCode.INTERRUPTED),
            collect_errors=self.collect_errors))
        self.report = self.delivery.finish()
        if self._awaiting_link:  # every test was over before the receiver's first answer
            self._late_link()
        self._github_summary()
        if self.settings.job_file is not None:
            try:
                self.settings.job_file.write_text(self.settings.job_id)
            except OSError as exc:
                self._say(f"cannot write {self.settings.job_file}: {exc.strerror}")

    def _github_summary(self) -> None:
        if not self.settings.ci_summary or "GITHUB_STEP_SUMMARY" not in os.environ:
            return
        branch = (self.ci or {}).get("branch")
        title = " · ".join(filter(None, ["pytest-rt", self.settings.project, branch]))
        failed = sum(self.counts[name] for name in protocol.FAILED_OUTCOMES)
        new: set[str] = set()
        if failed and self.dashboard is not None and self.report and not self.report.undelivered:
            new = github.new_failures(self.dashboard, self.job.job_id)
        text = github.markdown(title=title, counts=self.counts, total=self.total,
                               live_url=self.live_url, failures=self.failures, failed=failed,
                               new=new)
        if problem := github.append(text):
            self._say(problem)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.report is None:
            return
        for line in summary_lines(self.settings, self.report):
            terminalreporter.write_line(line)

    def _say(self, text: str, yellow: bool = True) -> None:
        terminal = self.config.pluginmanager.getplugin("terminalreporter")
        if terminal is not None:
            terminal.write_line(f"pytest-rt: {text}", yellow=yellow)
        else:
            print(f"pytest-rt: {text}", file=sys.stderr)

    total: int = 0
    live_url: str | None = None
    dashboard: str | None = None  # the receiver's, as announced: its API is beside it
    _awaiting_link = False  # the first answer was too slow for the start: look after tests
    ci: dict[str, str | None] | None = None


def summary_lines(settings: Settings, report: Report) -> list[str]:
    """The end-of-run summary: one line when all is well."""
    stats = report.stats
    head = f"pytest-rt: job {settings.job_id}: "
    if report.undelivered == 0 and stats.rejected == 0:
        lines = [f"{head}{stats.delivered} events delivered to {settings.display_url}"]
    else:
        lines = [f"{head}{stats.delivered} events delivered, {report.undelivered} not "
                 f"delivered ({stats.retried} requests retried, {stats.rejected} rejected)"
                 f" to {settings.display_url}"]
        if settings.show_errors:
            lines += [f"pytest-rt: {problem}" for problem in stats.problems]
    if settings.show_errors and report.spool_error:
        # Said even when all arrived: this run had no safety net on disk.
        lines.append(f"pytest-rt: {report.spool_error}: events were kept in memory only")
    if report.replay_command:
        lines.append(f"pytest-rt: {report.undelivered - stats.rejected} events spooled; "
                     f"send them with: {report.replay_command}")
    return lines


def _marker_names(item: pytest.Item) -> list[str]:
    """Names of the marks on a test and its parents.

    What iter_markers() yields, without building a node chain per test: this runs
    for every collected test, on the test thread, before the first one starts.
    """
    names: set[str] = set()
    node: Any = item
    while node is not None:
        for mark in node.own_markers:  # (a generator per node costs more than this loop)
            names.add(mark.name)
        node = node.parent
    return sorted(names)


def _worker_of(report: pytest.TestReport) -> str | None:
    node = getattr(report, "node", None)
    gateway = getattr(node, "gateway", None)
    worker = getattr(gateway, "id", None) or getattr(report, "worker_id", None)
    return str(worker) if worker else None


class XdistHooks:
    """Registered only when pytest-xdist is installed, so the plugin works without it."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.descriptions = DescriptionFiles(reporter.job.run_id)

    def close(self) -> None:
        """pytest_unconfigure: every worker is gone; remove what they wrote for us."""
        self.descriptions.close()

    def pytest_configure_node(self, node: Any) -> None:
        self.descriptions.configure(node)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        dsession = session.config.pluginmanager.getplugin("dsession")
        original: Callable[..., None] | None = getattr(dsession, "worker_logstart", None)
        if original is None:
            return
        reporter = self.reporter

        # xdist's logstart hook carries no worker id; its per-worker callback does.
        # DSession looks callbacks up by name on each event, so wrapping it on the
        # instance tells startTestItem which worker runs the test.
        def worker_logstart(node: Any, nodeid: str, location: Any) -> None:
            reporter.worker_hint = getattr(getattr(node, "gateway", None), "id", None)
            try:
                original(node=node, nodeid=nodeid, location=location)
            finally:
                reporter.worker_hint = None

        with contextlib.suppress(AttributeError):
            dsession.worker_logstart = worker_logstart

    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        dsession = self.reporter.config.pluginmanager.getplugin("dsession")
        specs = getattr(getattr(dsession, "nodemanager", None), "specs", None) or []
        # Only the first worker's collection becomes startTestRun; later ones' files
        # are just removed, not read.
        docs = self.descriptions.take(node, wanted=not self.reporter.run_started)
        self.reporter.collected_ids(list(ids), len(specs), docs)
