"""pytest-xdist: one job, one startTestRun from the controller, the worker in item events."""

from __future__ import annotations

import tempfile

import pytest

from pytest_rt import descriptions

pytest.importorskip("xdist")

FIRST = """
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("setup broke")

def test_pass():
    '''A docstring the workers hand to the controller.'''

def test_fail():
    assert False, "it failed"

def test_error(broken):
    pass

def test_skip():
    pytest.skip("not here")

@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False
"""
SECOND = """
def test_one(): pass
def test_two(): pass
def test_three(): pass
"""
ALL = [
    "test_first.py::test_pass", "test_first.py::test_fail", "test_first.py::test_error",
    "test_first.py::test_skip", "test_first.py::test_xfail",
    "test_second.py::test_one", "test_second.py::test_two", "test_second.py::test_three",
]


class Suite:
    def __init__(self, rt, only_xdist):
        self.rt = rt
        self.plugins = only_xdist

    def run(self, *args):
        return self.rt.run(*self.plugins, *args)


@pytest.fixture
def suite(rt, only_xdist):
    rt.pytester.makepyfile(test_first=FIRST, test_second=SECOND)
    return Suite(rt, only_xdist)


def test_with_every_plugin_autoloaded_n_2_is_one_job_with_the_workers_in_item_events(
        rt, stream):
    rt.pytester.makepyfile(test_first=FIRST, test_second=SECOND)
    rt.run("-n", "2").assert_outcomes(passed=4, failed=1, errors=1, skipped=1, xfailed=1)
    s = stream()
    assert sorted(s.tests) == sorted(ALL)
    assert sorted(s.stops) == sorted(ALL)
    assert (s.start["xdist"], s.start["workers"]) == (True, 2)
    for nodeid in ALL:
        assert s.starts[nodeid]["worker"] in ("gw0", "gw1"), s.starts[nodeid]
        assert s.stops[nodeid]["worker"] == s.starts[nodeid]["worker"]


@pytest.mark.parametrize("args", [
    pytest.param(["-n", "2"], id="-n 2"),
    pytest.param(["-n", "2", "--dist", "loadfile"], id="--dist loadfile"),
])
def test_a_distributed_run_is_one_job_with_one_start_and_one_stop_per_test(suite, stream, args):
    result = suite.run(*args)
    result.assert_outcomes(passed=4, failed=1, errors=1, skipped=1, xfailed=1)
    s = stream()  # exactly one startTestRun and stopTestRun: only the controller sends
    assert sorted(s.tests) == sorted(ALL)
    assert sorted(s.starts) == sorted(ALL)
    assert sorted(s.stops) == sorted(ALL)
    assert s.start["xdist"] is True
    assert s.start["workers"] == 2
    assert s.stop["total"] == len(ALL)
    assert s.stop["counts"] == {"passed": 4, "failed": 1, "error": 1, "skipped": 1,
                                "xfailed": 1, "xpassed": 0, "interrupted": 0, "not_started": 0}
    assert s.stop["exitstatus"] == 1


@pytest.mark.parametrize("args", [
    pytest.param(["-n", "2"], id="-n 2"),
    pytest.param(["-n", "2", "--dist", "loadfile"], id="--dist loadfile"),
])
def test_item_events_name_the_worker_that_ran_the_test(suite, stream, args):
    suite.run(*args)
    s = stream()
    for nodeid in ALL:
        assert s.starts[nodeid]["worker"] in ("gw0", "gw1"), s.starts[nodeid]
        assert s.stops[nodeid]["worker"] == s.starts[nodeid]["worker"]
    if "loadfile" in args:  # a file's tests all go to one worker
        for file in ("test_first.py", "test_second.py"):
            workers = {s.starts[n]["worker"] for n in ALL if n.startswith(file)}
            assert len(workers) == 1, (file, workers)


def test_statuses_and_msgs_under_xdist_are_those_of_a_plain_run(suite, stream):
    suite.run("-n", "2")
    s = stream()
    assert [(s.stops[n]["status"], s.stops[n]["outcome"]) for n in ALL[:5]] == [
        ("passed", "passed"), ("failed", "failed"), ("error", "error"),
        ("skipped", "skipped"), ("skipped", "xfailed")]
    assert "it failed" in s.stops["test_first.py::test_fail"]["msg"]
    assert s.stops["test_first.py::test_fail"]["when"] == "call"
    assert "setup broke" in s.stops["test_first.py::test_error"]["msg"]
    assert s.stops["test_first.py::test_error"]["when"] == "setup"
    assert s.stops["test_first.py::test_skip"]["msg"] == "not here"
    assert s.stops["test_first.py::test_xfail"]["msg"] == "known"
    # xdist's "[gw0] linux -- Python ..." line is terminal decoration, not the failure
    for nodeid in ("test_first.py::test_fail", "test_first.py::test_error"):
        assert " -- Python " not in s.stops[nodeid]["msg"].splitlines()[0]


def test_the_controller_lists_the_tests_from_the_workers_collection(suite, stream):
    suite.run("-n", "2")
    entries = stream().entries
    assert entries["test_first.py::test_pass"]["location"] == "test_pass"
    assert entries["test_first.py::test_pass"]["file"] == "test_first.py"
    # The controller imports no test module: its workers give the docstrings, no marks.
    assert entries["test_first.py::test_pass"]["description"] == (
        "A docstring the workers hand to the controller.")
    assert entries["test_first.py::test_fail"]["description"] is None
    assert entries["test_first.py::test_xfail"]["markers"] == []


def test_a_selection_under_xdist_lists_only_the_selected_tests(suite, stream):
    suite.run("-n", "2", "-k", "second")
    s = stream()
    assert s.tests == ALL[5:]  # a worker's collection, in its order
    assert sorted(s.stops) == sorted(ALL[5:])


def test_n_0_runs_without_workers(suite, stream):
    suite.run("-n", "0").assert_outcomes(passed=4, failed=1, errors=1, skipped=1, xfailed=1)
    s = stream()
    assert s.tests == ALL
    assert s.start["xdist"] is False
    assert s.start["workers"] == 0
    assert {e["worker"] for e in s.events if "worker" in e} == {None}
    assert s.entries["test_first.py::test_pass"]["description"] == (
        "A docstring the workers hand to the controller.")


def test_the_plugin_works_without_xdist_loaded(rt, stream, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    rt.pytester.makepyfile(test_first=FIRST, test_second=SECOND)
    result = rt.run("-p", "pytest_rt", "-p", "no:xdist")
    result.assert_outcomes(passed=4, failed=1, errors=1, skipped=1, xfailed=1)
    s = stream()
    assert s.tests == ALL
    assert s.start["xdist"] is False
    assert {e["worker"] for e in s.events if "worker" in e} == {None}


def test_x_under_xdist_still_ends_the_run_with_counts(suite, stream):
    result = suite.run("-n", "2", "-x")
    s = stream()
    assert s.stop["exitstatus"] == result.ret != 0
    assert s.stop["interrupted"] is True
    counts = s.stop["counts"]
    assert sum(counts.values()) == len(ALL)
    assert counts["not_started"] == len(ALL) - len(s.starts)


def test_a_test_whose_worker_crashed_is_stopped_as_interrupted_and_the_run_goes_on(rt, stream,
                                                                                  only_xdist):
    rt.pytester.makepyfile(test_one="""
        import os

        def test_crash():
            os._exit(3)

        def test_a(): pass
        def test_b(): pass
    """)
    result = rt.run(*only_xdist, "-n", "2")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    s = stream()
    crash = s.stops["test_one.py::test_crash"]
    assert crash["status"] == "error"
    assert crash["outcome"] == "interrupted"
    assert crash["when"] is None
    assert "crashed" in crash["msg"]
    assert crash["worker"] in ("gw0", "gw1")
    assert s.stops["test_one.py::test_a"]["status"] == "passed"
    assert s.stops["test_one.py::test_b"]["status"] == "passed"
    assert s.stop["counts"]["interrupted"] == 1
    assert s.stop["counts"]["passed"] == 2


def test_a_collection_error_on_the_workers_reaches_the_receiver_once(rt, stream, only_xdist):
    rt.pytester.makepyfile(test_good="def test_ok(): pass\n",
                           test_broken="import no_such_module_for_pytest_rt\n")
    result = rt.run(*only_xdist, "-n", "2")
    s = stream()
    assert [e["nodeid"] for e in s.start["collect_errors"]] == ["test_broken.py"]
    assert [e["nodeid"] for e in s.stop["collect_errors"]] == ["test_broken.py"]
    assert "no_such_module_for_pytest_rt" in s.stop["collect_errors"][0]["msg"]
    assert s.stop["exitstatus"] == result.ret != 0


DOCSTRINGS = '''
import pytest

def test_plain():
    """One line."""

def test_multi_line():
    """First line.

    More text,
        indented further.
    """

def test_without_docstring():
    pass

def test_empty_docstring():
    """   """

@pytest.mark.parametrize("n", [1, 2])
def test_parametrized(n):
    """Parametrized: één docstring, "quoted", \\\\backslash."""

class TestGroup:
    def test_method(self):
        """A method's docstring."""

    @pytest.mark.parametrize("x", ["a", "b"])
    def test_parametrized_method(self, x):
        """
        Starts on the second line.
        """
'''
DESCRIPTIONS = {
    "test_docs.py::test_plain": "One line.",
    "test_docs.py::test_multi_line": "First line.\n\nMore text,\n    indented further.",
    "test_docs.py::test_without_docstring": None,
    "test_docs.py::test_empty_docstring": "",
    "test_docs.py::test_parametrized[1]": 'Parametrized: één docstring, "quoted", \\backslash.',
    "test_docs.py::test_parametrized[2]": 'Parametrized: één docstring, "quoted", \\backslash.',
    "test_docs.py::TestGroup::test_method": "A method's docstring.",
    "test_docs.py::TestGroup::test_parametrized_method[a]": "Starts on the second line.",
    "test_docs.py::TestGroup::test_parametrized_method[b]": "Starts on the second line.",
}


def descriptions_by_run(receiver, stream):
    """{run_id: {nodeid: description}} of each run the receiver heard, in the order they ran."""
    runs = {}
    for event in receiver.events:
        runs.setdefault(event["run_id"], []).append(event)
    return {run_id: {nodeid: entry["description"] for nodeid, entry in stream(evs).entries.items()}
            for run_id, evs in runs.items()}


def test_a_serial_and_a_distributed_run_send_the_same_descriptions(rt, only_xdist, receiver,
                                                                   stream):
    rt.pytester.makepyfile(test_docs=DOCSTRINGS)
    rt.run(*only_xdist).assert_outcomes(passed=9)
    rt.run(*only_xdist, "-n", "2").assert_outcomes(passed=9)
    serial, distributed = descriptions_by_run(receiver, stream).values()
    assert serial == DESCRIPTIONS
    assert distributed == serial


@pytest.mark.parametrize("args", [
    pytest.param(["-n", "2"], id="-n 2"),
    pytest.param(["-n", "2", "--dist", "loadfile"], id="--dist loadfile"),
    pytest.param(["-n", "1", "-k", "method"], id="one worker, a selection"),
])
def test_every_distribution_sends_each_tests_docstring_as_a_plain_run_does(rt, only_xdist,
                                                                          stream, args):
    rt.pytester.makepyfile(test_docs=DOCSTRINGS)
    rt.run(*only_xdist, *args)
    s = stream()
    assert s.start["xdist"] is True
    assert {n: e["description"] for n, e in s.entries.items()} == {
        n: d for n, d in DESCRIPTIONS.items() if "-k" not in args or "method" in n}


def test_a_distributed_run_leaves_no_description_file_behind(rt, only_xdist, stream,
                                                            monkeypatch):
    temp = rt.pytester.path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where the controller makes its dir
    rt.pytester.makepyfile(test_docs=DOCSTRINGS)
    rt.run(*only_xdist, "-n", "2").assert_outcomes(passed=9)
    assert stream().entries["test_docs.py::test_plain"]["description"] == "One line."
    assert list(temp.iterdir()) == []
    assert not (rt.pytester.path / ".spool").exists()


def test_a_worker_file_that_cannot_be_read_gives_null_descriptions_and_the_run_goes_on(
        rt, only_xdist, stream, monkeypatch):
    temp = rt.pytester.path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    # Runs on each worker after pytest-rt wrote its file and before xdist reports the
    # collection (tryfirst, registered before pytest-rt's): the controller finds garbage.
    rt.pytester.makeconftest("""
        import pytest

        @pytest.hookimpl(tryfirst=True)
        def pytest_collection_finish(session):
            path = session.config.workerinput["pytest_rt_descriptions"]
            with open(path, "wb") as f:
                f.write(b"\\xff not what a worker writes")
    """)
    rt.pytester.makepyfile(test_docs=DOCSTRINGS)
    rt.run(*only_xdist, "-n", "2").assert_outcomes(passed=9)
    s = stream()
    assert sorted(s.tests) == sorted(DESCRIPTIONS)
    assert {e["description"] for e in s.start["tests"]} == {None}
    assert list(temp.iterdir()) == []


@pytest.mark.parametrize("content", [
    pytest.param(b"", id="empty"),
    pytest.param(b'{"test_a.py::test_x": "ok"', id="cut short"),
    pytest.param(b"\xff\xfe not utf-8", id="not utf-8"),
    pytest.param(b'["a list"]', id="a list"),
])
def test_a_description_file_that_is_not_what_a_worker_writes_reads_as_none(tmp_path, content):
    path = tmp_path / "1.json"
    path.write_bytes(content)
    assert descriptions.read(path) == {}


def test_a_description_file_keeps_only_string_descriptions(tmp_path):
    path = tmp_path / "1.json"
    descriptions.write(path, {"a.py::test_a": "Doc.", "a.py::test_b": None})
    path.write_text(path.read_text()[:-1] + ', "a.py::test_c": 3}')
    assert descriptions.read(path) == {"a.py::test_a": "Doc."}
    assert [p.name for p in tmp_path.iterdir()] == ["1.json"]  # no temporary file left


def test_a_worker_that_cannot_write_its_file_leaves_nothing_and_raises_nothing(tmp_path):
    descriptions.write(tmp_path / "gone" / "1.json", {"a.py::test_a": "Doc."})
    assert list(tmp_path.iterdir()) == []
