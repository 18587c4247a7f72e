"""Every place a setting can come from, their precedence, and every bad value."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

ROUTES = ("cli", "env", "ini", "conftest")


class Places:
    """Puts one URL in each named place: command line, environment, ini file, conftest.py."""

    def __init__(self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pytester = pytester
        self.monkeypatch = monkeypatch
        monkeypatch.delenv("PYTEST_RT_URL", raising=False)

    def put(self, urls: dict[str, str]) -> list[str]:
        """Return the command-line arguments; write the rest where it goes."""
        if "env" in urls:
            self.monkeypatch.setenv("PYTEST_RT_URL", urls["env"])
        if "ini" in urls:
            self.pytester.makeini(f"[pytest]\nrt_url = {urls['ini']}\n")
        if "conftest" in urls:
            self.pytester.makeconftest(f"endpoint = {urls['conftest']!r}\n")
        return ["--rt-url", urls["cli"]] if "cli" in urls else []


@pytest.fixture
def places(pytester, monkeypatch):
    return Places(pytester, monkeypatch)


@pytest.mark.parametrize("route", ROUTES)
def test_the_endpoint_can_come_from_each_route(pytester, run_bare, places, receiver, stream,
                                               route):
    pytester.makepyfile(test_one="def test_ok(): pass\n")
    result = run_bare(*places.put({route: receiver.url}))
    assert result.ret == 0
    assert len(stream().stops) == 1
    result.stdout.fnmatch_lines([f"pytest-rt: job *: 4 events delivered to {receiver.url}"])


def test_the_endpoint_option_has_the_upstream_alias_rtu(pytester, run_bare, receiver, stream):
    pytester.makepyfile(test_one="def test_ok(): pass\n")
    run_bare("--rtu", receiver.url)
    assert len(stream().stops) == 1


@pytest.mark.parametrize(("winner", "loser"), [
    (ROUTES[i], ROUTES[j]) for i in range(len(ROUTES)) for j in range(i + 1, len(ROUTES))])
def test_the_endpoint_is_taken_from_the_first_of_cli_env_ini_conftest(
        pytester, run_bare, places, receiver, stream, dead_url, winner, loser):
    pytester.makepyfile(test_one="def test_ok(): pass\n")
    result = run_bare(*places.put({winner: receiver.url, loser: dead_url}))
    assert len(stream().stops) == 1
    assert dead_url not in result.stdout.str()


def test_without_any_endpoint_the_default_is_the_local_pytest_rt_serve(pytester, monkeypatch,
                                                                        default_port_refused):
    monkeypatch.delenv("PYTEST_RT_URL", raising=False)
    pytester.makepyfile(test_one="def test_ok(): pass\n")
    result = pytester.runpytest("--rt", "--rt-spool", str(pytester.path / ".spool"),
                                "--rt-flush-timeout", "0", "--rt-no-show-errors")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["pytest-rt: job *http://127.0.0.1:8765/loader*"])


@pytest.mark.parametrize("where", ["in-process", "subprocess"])
def test_the_tests_never_reach_the_default_receiver(pytester, monkeypatch, default_port_refused,
                                                   spare, where):
    """tests/port_guard: whatever a run is told, port 8765 (where ./scripts/demo leaves its
    receiver) refuses it, in this process and in the pytests it starts."""
    monkeypatch.delenv("PYTEST_RT_URL", raising=False)
    pytester.makepyfile(test_one="def test_ok(): pass\n")
    run = pytester.runpytest if where == "in-process" else pytester.runpytest_subprocess
    result = run("--rt", "--rt-spool", str(pytester.path / ".spool"), "--rt-flush-timeout", "1",
                 "-p", "no:cacheprovider", *spare)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["pytest-rt: cannot reach http://127.0.0.1:8765/loader: "
                                 "connection refused"])
    log = Path(os.environ["PYTEST_RT_TEST_GUARD_LOG"]).read_text()
    assert ":8765 " in log


def test_the_seeds_conftest_endpoint_is_read_from_the_rootdir_conftest(pytester, run_bare,
                                                                       receiver, stream):
    pytester.makeconftest(f"pytest_plugins = 'pytest_rt'\nendpoint = {receiver.url!r}\n"
                          "show_errors = True\n")
    pytester.makepyfile(test_one="def test_ok(): pass\n")
    assert run_bare().ret == 0
    assert len(stream().stops) == 1


# -- env ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("setup", "args", "expected"), [
    pytest.param({}, [], None, id="unset"),
    pytest.param({}, ["--rte", "DEV"], "DEV", id="--rte"),
    pytest.param({}, ["--rt-env", "DEV"], "DEV", id="--rt-env"),
    pytest.param({"ini": "STAGE"}, [], "STAGE", id="ini"),
    pytest.param({"env": "PROD"}, [], "PROD", id="env"),
    pytest.param({"ini": "STAGE", "env": "PROD"}, ["--rte=DEV"], "DEV", id="cli-beats-env-ini"),
    pytest.param({"ini": "STAGE", "env": "PROD"}, [], "PROD", id="env-beats-ini"),
])
def test_the_environment_name_is_sent_as_env(rt, stream, monkeypatch, setup, args, expected):
    monkeypatch.delenv("PYTEST_RT_ENV", raising=False)
    if "env" in setup:
        monkeypatch.setenv("PYTEST_RT_ENV", setup["env"])
    if "ini" in setup:
        rt.pytester.makeini(f"[pytest]\nrt_env = {setup['ini']}\n")
    rt.pytester.makepyfile(test_one="def test_ok(): pass\n")
    rt.run(*args)
    assert stream().start["env"] == expected


# -- show_errors ---------------------------------------------------------------------------

@pytest.mark.parametrize(("conftest", "ini", "args", "shown"), [
    pytest.param(None, None, [], True, id="default"),
    pytest.param("False", None, [], False, id="conftest-false"),
    pytest.param("True", None, [], True, id="conftest-true"),
    pytest.param(None, "false", [], False, id="ini-false"),
    pytest.param("False", "true", [], True, id="ini-beats-conftest"),
    pytest.param(None, None, ["--rt-no-show-errors"], False, id="cli-false"),
    pytest.param(None, "false", ["--rt-show-errors"], True, id="cli-beats-ini"),
])
def test_show_errors_decides_whether_delivery_problems_are_printed(
        pytester, run_bare, dead_url, conftest, ini, args, shown):
    if conftest is not None:
        pytester.makeconftest(f"show_errors = {conftest}\n")
    if ini is not None:
        pytester.makeini(f"[pytest]\nrt_show_errors = {ini}\n")
    pytester.makepyfile(test_one="def test_ok(): pass\n")
    result = run_bare("--rt-url", dead_url, "--rt-flush-timeout", "0.5", *args)
    assert result.ret == 0
    problem = f"pytest-rt: cannot reach {dead_url}*"
    if shown:
        result.stdout.fnmatch_lines([problem])
    else:
        result.stdout.no_fnmatch_line(problem)
    # The summary line is printed either way.
    result.stdout.fnmatch_lines([f"pytest-rt: job *not delivered* to {dead_url}"])


# -- job id, custom id, custom data, report ------------------------------------------------

def test_each_run_gets_a_fresh_uuid4_job_id(rt, receiver):
    rt.pytester.makepyfile(test_one="def test_ok(): pass\n")
    rt.run()
    rt.run()
    jobs = list(dict.fromkeys(e["job_id"] for e in receiver.events))
    assert len(jobs) == 2
    for job in jobs:
        assert uuid.UUID(job).version == 4
        assert str(uuid.UUID(job)) == job


@pytest.mark.parametrize(("env", "args", "expected"), [
    pytest.param(None, ["--rt-job-id", "ci-1234.shard:2"], "ci-1234.shard:2", id="cli"),
    pytest.param("from-env", [], "from-env", id="env"),
    pytest.param("from-env", ["--rt-job-id", "from-cli"], "from-cli", id="cli-beats-env"),
])
def test_the_job_id_can_be_set_so_that_shards_share_a_job(rt, stream, monkeypatch, env, args,
                                                          expected):
    monkeypatch.delenv("PYTEST_RT_JOB_ID", raising=False)
    if env:
        monkeypatch.setenv("PYTEST_RT_JOB_ID", env)
    rt.pytester.makepyfile(test_one="def test_ok(): pass\n")
    result = rt.run(*args)
    assert {e["job_id"] for e in stream().events} == {expected}
    result.stdout.fnmatch_lines([f"pytest-rt: job {expected}: *"])


def test_custom_id_is_null_unless_set(rt, stream):
    rt.pytester.makepyfile(test_one="def test_ok(): pass\n")
    rt.run()
    assert {e["custom_id"] for e in stream().events} == {None}


def test_custom_id_is_on_every_event_and_makes_test_uuids_stable(rt, receiver, stream):
    rt.pytester.makepyfile(test_one="def test_a(): pass\ndef test_b(): pass\n")
    rt.run("--rt-custom-id", "nightly")
    first = list(receiver.events)
    receiver.events.clear()
    rt.run("--rt-custom-id", "nightly")
    one, two = stream(first), stream()
    assert {e["custom_id"] for e in one.events + two.events} == {"nightly"}
    assert one.entries.keys() == two.entries.keys()
    for nodeid, entry in one.entries.items():
        assert entry["uuid"] == two.entries[nodeid]["uuid"]  # stable per test
        assert entry["uuid"].isdigit() and len(entry["uuid"]) <= 31  # as upstream made them
    assert len({entry["uuid"] for entry in one.entries.values()}) == 2  # unique per test
    assert one.start["job_id"] != two.start["job_id"]


def test_without_custom_id_test_uuids_differ_between_runs(rt, receiver):
    rt.pytester.makepyfile(test_one="def test_a(): pass\n")
    rt.run()
    rt.run()
    uuids = [e["tests"][0]["uuid"] for e in receiver.of_type("startTestRun")]
    assert len(set(uuids)) == 2


def test_custom_data_is_sent_in_start_test_run(rt, stream):
    rt.pytester.makepyfile(test_one="def test_ok(): pass\n")
    rt.run("--rt-custom-data", '{"build": 7, "branch": "main", "tags": ["a"]}')
    assert stream().start["custom_data"] == {"build": 7, "branch": "main", "tags": ["a"]}


def test_custom_data_is_null_unless_set(rt, stream):
    rt.pytester.makepyfile(test_one="def test_ok(): pass\n")
    rt.run()
    assert stream().start["custom_data"] is None


@pytest.mark.parametrize(("args", "expected"), [([], "0"), (["--rt-job-report"], "1")])
def test_send_report_is_1_only_with_rt_job_report(rt, stream, args, expected):
    rt.pytester.makepyfile(test_one="def test_ok(): pass\n")
    rt.run(*args)
    assert stream().stop["send_report"] == expected


def test_rt_return_job_writes_the_job_id_to_testgr_last_job_txt(rt, stream):
    rt.pytester.makepyfile(test_one="def test_ok(): pass\n")
    rt.run("--rt-return-job")
    job_id = stream().start["job_id"]
    assert (rt.pytester.path / "testgr_last_job.txt").read_text() == job_id


def test_rt_job_file_writes_the_job_id_to_another_path(rt, stream):
    rt.pytester.makepyfile(test_one="def test_ok(): pass\n")
    rt.run("--rt-job-file", "job.id", "--rt-job-id", "my-job")
    assert (rt.pytester.path / "job.id").read_text() == "my-job"
    assert not (rt.pytester.path / "testgr_last_job.txt").exists()


def test_no_job_file_is_written_unless_asked(rt, stream):
    rt.pytester.makepyfile(test_one="def test_ok(): pass\n")
    rt.run()
    assert not (rt.pytester.path / "testgr_last_job.txt").exists()


# -- bad values ----------------------------------------------------------------------------

BAD_OPTIONS = [
    ("--rt-url", "ftp://x"),
    ("--rtu", "localhost:8765"),
    ("--rt-url", "http://host:99999/loader"),
    ("--rt-custom-data", "[1]"),
    ("--rt-custom-data", "nope"),
    ("--rt-job-id", "a/b"),
    ("--rt-flush-timeout", "abc"),
    ("--rt-timeout", "-1"),
    ("--rt-max-msg", "lots"),
    ("--rt-redact", "("),
    ("--rt-ca-bundle", "no-such-file.pem"),
]


def assert_usage_error(result: pytest.RunResult, *names: str) -> None:
    """pytest stopped at start-up with one message naming the option and the value."""
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    errors = [line for line in result.stderr.lines if line.startswith("ERROR: pytest-rt:")]
    assert len(errors) == 1, output
    for name in names:
        assert name in errors[0], (name, errors[0])
    assert "Traceback" not in output
    assert "INTERNALERROR" not in output


@pytest.mark.parametrize(("option", "value"), BAD_OPTIONS)
def test_a_bad_option_value_is_a_usage_error_naming_option_and_value(rt, receiver, option,
                                                                      value):
    rt.pytester.makepyfile(test_one="def test_ok(): pass\n")
    result = rt.run(option, value)
    assert_usage_error(result, option.replace("--rtu", "--rt-url"), value)
    assert receiver.requests == 0


def test_a_header_without_a_colon_is_a_usage_error_that_does_not_echo_it(rt, receiver):
    rt.pytester.makepyfile(test_one="def test_ok(): pass\n")
    result = rt.run("--rt-header", "Authorization Bearer s3cret")
    assert_usage_error(result, "--rt-header", "Name: value")
    assert "s3cret" not in result.stdout.str() + result.stderr.str()
    assert receiver.requests == 0


@pytest.mark.parametrize(("ini", "value"), [
    ("rt_flush_timeout", "abc"),
    ("rt_url", "ftp://x"),
    ("rt_show_errors", "maybe"),
    ("rt_timeout", "soon"),
    ("rt_max_msg", "-5"),
])
def test_a_bad_ini_value_is_a_usage_error_naming_it(pytester, receiver, ini, value):
    pytester.makeini(f"[pytest]\n{ini} = {value}\n")
    pytester.makepyfile(test_one="def test_ok(): pass\n")
    args = ["--rt"] if ini == "rt_url" else ["--rt", "--rt-url", receiver.url]
    result = pytester.runpytest(*args)
    assert_usage_error(result, f"ini {ini}", value)
    assert receiver.requests == 0


@pytest.mark.parametrize(("env", "value"), [
    ("PYTEST_RT_URL", "ftp://x"),
    ("PYTEST_RT_JOB_ID", "a b"),
    ("PYTEST_RT_FLUSH_TIMEOUT", "abc"),
])
def test_a_bad_environment_variable_is_a_usage_error_naming_it(pytester, monkeypatch, env,
                                                                value):
    monkeypatch.setenv(env, value)
    pytester.makepyfile(test_one="def test_ok(): pass\n")
    assert_usage_error(pytester.runpytest("--rt"), env, value)


@pytest.mark.parametrize(("name", "value"), [
    ("endpoint", "'127.0.0.1:8765/loader'"),
    ("show_errors", "'maybe'"),
])
def test_a_bad_seed_conftest_value_is_a_usage_error_naming_it(pytester, name, value):
    pytester.makeconftest(f"{name} = {value}\n")
    pytester.makepyfile(test_one="def test_ok(): pass\n")
    assert_usage_error(pytester.runpytest("--rt", "--rt-flush-timeout", "0"),
                       f"conftest.py {name}", value.strip("'"))


def test_a_bad_url_with_a_password_is_reported_without_the_password(rt):
    rt.pytester.makepyfile(test_one="def test_ok(): pass\n")
    result = rt.run("--rt-url", "ftp://user:s3cret@example.com/loader")
    assert_usage_error(result, "--rt-url")
    assert "s3cret" not in result.stdout.str() + result.stderr.str()


def test_bad_values_are_ignored_without_rt(pytester, receiver):
    pytester.makeini("[pytest]\nrt_flush_timeout = abc\n")
    pytester.makepyfile(test_one="def test_ok(): pass\n")
    result = pytester.runpytest("--rt-url", "ftp://x", "--rt-custom-data", "[1]")
    assert result.ret == 0
    assert receiver.requests == 0
