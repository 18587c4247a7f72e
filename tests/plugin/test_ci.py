"""Jobs a team can tell apart: the project, the CI build and the checkout in startTestRun."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pytest_rt import ci

PROVIDER_FLAGS = ("GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "CIRCLECI", "TF_BUILD",
                  "JENKINS_URL")


def test_the_fields_are_the_ones_the_stream_check_expects(rt, receiver):
    rt.pytester.makepyfile("def test_a():\n    pass\n")
    rt.run().assert_outcomes(passed=1)
    assert tuple(receiver.events[0]["ci"]) == ci.FIELDS


@pytest.mark.parametrize(("environ", "expected"), [
    ({"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/shop", "GITHUB_REF_NAME": "main",
      "GITHUB_SHA": "abc123", "GITHUB_RUN_NUMBER": "42", "GITHUB_RUN_ID": "9001",
      "GITHUB_REF": "refs/heads/main", "GITHUB_SERVER_URL": "https://github.example"},
     {"provider": "github", "repository": "acme/shop", "branch": "main", "commit": "abc123",
      "pull_request": None, "build": "42",
      "build_url": "https://github.example/acme/shop/actions/runs/9001"}),
    ({"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/shop", "GITHUB_HEAD_REF": "fix-it",
      "GITHUB_REF_NAME": "7/merge", "GITHUB_REF": "refs/pull/7/merge", "GITHUB_SHA": "def"},
     {"provider": "github", "branch": "fix-it", "pull_request": "7"}),
    ({"GITLAB_CI": "true", "CI_PROJECT_PATH": "group/app", "CI_COMMIT_REF_NAME": "dev",
      "CI_COMMIT_SHA": "0ff1ce", "CI_MERGE_REQUEST_IID": "12", "CI_PIPELINE_IID": "310",
      "CI_PIPELINE_URL": "https://gitlab.example/group/app/-/pipelines/5"},
     {"provider": "gitlab", "repository": "group/app", "branch": "dev", "commit": "0ff1ce",
      "pull_request": "12", "build": "310",
      "build_url": "https://gitlab.example/group/app/-/pipelines/5"}),
    ({"JENKINS_URL": "https://ci.example/", "JOB_NAME": "app/main", "GIT_BRANCH": "origin/main",
      "GIT_COMMIT": "f00", "BUILD_NUMBER": "8", "BUILD_URL": "https://ci.example/job/app/8/"},
     {"provider": "jenkins", "repository": "app/main", "branch": "main", "commit": "f00",
      "build": "8", "build_url": "https://ci.example/job/app/8/"}),
    ({"CIRCLECI": "true", "CIRCLE_PROJECT_USERNAME": "acme", "CIRCLE_PROJECT_REPONAME": "shop",
      "CIRCLE_BRANCH": "b", "CIRCLE_SHA1": "c1", "CIRCLE_BUILD_NUM": "77",
      "CIRCLE_PULL_REQUEST": "https://github.com/acme/shop/pull/5"},
     {"provider": "circleci", "repository": "acme/shop", "branch": "b", "commit": "c1",
      "pull_request": "5", "build": "77"}),
    ({"BUILDKITE": "true", "BUILDKITE_PIPELINE_SLUG": "shop", "BUILDKITE_BRANCH": "b",
      "BUILDKITE_COMMIT": "bk", "BUILDKITE_PULL_REQUEST": "false",
      "BUILDKITE_BUILD_NUMBER": "3"},
     {"provider": "buildkite", "repository": "shop", "pull_request": None, "build": "3"}),
    ({"TF_BUILD": "True", "BUILD_REPOSITORY_NAME": "shop",
      "BUILD_SOURCEBRANCH": "refs/heads/release", "BUILD_SOURCEVERSION": "az",
      "BUILD_BUILDNUMBER": "20261130.1", "BUILD_BUILDID": "55",
      "SYSTEM_COLLECTIONURI": "https://dev.azure.example/org/", "SYSTEM_TEAMPROJECT": "P"},
     {"provider": "azure", "branch": "release", "commit": "az", "build": "20261130.1",
      "build_url": "https://dev.azure.example/org/P/_build/results?buildId=55"}),
])
def test_each_ci_is_read_from_the_variables_it_documents(tmp_path, environ, expected):
    found = ci.detect(environ, tmp_path)
    assert set(found) == set(ci.FIELDS)
    assert {key: found[key] for key in expected} == expected


def test_credentials_in_a_url_are_never_sent(tmp_path):
    found = ci.detect({"BUILDKITE": "true", "BUILDKITE_REPO": "https://bot:s3cret@git.example/r",
                       "BUILDKITE_BUILD_URL": "https://u:tok@bk.example/b/1"}, tmp_path)
    assert found["repository"] == "https://git.example/r"
    assert found["build_url"] == "https://bk.example/b/1"
    assert "s3cret" not in str(found) and "tok" not in str(found)


def test_outside_ci_and_git_everything_is_null(tmp_path):
    assert ci.detect({}, tmp_path) == dict.fromkeys(ci.FIELDS)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "feature/x")
    (repo / "a.txt").write_text("a")
    git(repo, "add", "a.txt")
    git(repo, "commit", "-q", "-m", "a")
    return repo


def test_a_plain_checkout_gives_branch_and_commit_as_git_says(checkout):
    sub = checkout / "tests" / "deep"
    sub.mkdir(parents=True)
    found = ci.detect({}, sub)
    assert found["provider"] == "git"
    assert found["branch"] == "feature/x"
    assert found["commit"] == git(checkout, "rev-parse", "HEAD")


def test_packed_refs_a_detached_head_and_a_worktree_are_read(checkout, tmp_path):
    head = git(checkout, "rev-parse", "HEAD")
    git(checkout, "pack-refs", "--all")
    assert ci.detect({}, checkout)["commit"] == head
    other = tmp_path / "other"
    git(checkout, "worktree", "add", "-q", "-b", "wt-branch", str(other))
    assert (ci.detect({}, other)["branch"], ci.detect({}, other)["commit"]) == ("wt-branch", head)
    git(checkout, "checkout", "-q", "--detach")
    assert (ci.detect({}, checkout)["branch"], ci.detect({}, checkout)["commit"]) == (None, head)


def test_a_ci_without_a_branch_variable_takes_the_checkouts(checkout):
    found = ci.detect({"JENKINS_URL": "https://ci.example/"}, checkout)
    assert (found["provider"], found["branch"]) == ("jenkins", "feature/x")


# -- in a real run ---------------------------------------------------------------------

@pytest.fixture
def no_ci(monkeypatch):
    for name in PROVIDER_FLAGS + ("PYTEST_RT_PROJECT", "PYTEST_RT_SHARDS", "PYTEST_RT_JOB_ID"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_start_test_run_names_the_project_and_the_ci_build(rt, stream, no_ci):
    no_ci.setenv("GITHUB_ACTIONS", "true")
    no_ci.setenv("GITHUB_REPOSITORY", "acme/shop")
    no_ci.setenv("GITHUB_REF_NAME", "main")
    rt.pytester.makepyfile("def test_a():\n    pass\n")
    rt.run("--rt-project", "shop-api").assert_outcomes(passed=1)
    start = stream().start
    assert start["project"] == "shop-api"
    assert (start["ci"]["provider"], start["ci"]["repository"], start["ci"]["branch"]) == (
        "github", "acme/shop", "main")
    assert start["shards"] is None


def test_the_project_defaults_to_the_rootdir_and_comes_from_the_ini_file(rt, receiver, stream,
                                                                       no_ci):
    rt.pytester.makepyfile("def test_a():\n    pass\n")
    rt.run().assert_outcomes(passed=1)
    assert stream().start["project"] == rt.pytester.path.name
    receiver.events.clear()
    rt.pytester.makeini("[pytest]\nrt_project = from-ini\n")
    rt.run().assert_outcomes(passed=1)
    assert stream().start["project"] == "from-ini"


def test_shards_are_sent_with_a_shared_job_id(rt, stream, no_ci):
    rt.pytester.makepyfile("def test_a():\n    pass\n")
    rt.run("--rt-job-id", "build-77", "--rt-shards", "3").assert_outcomes(passed=1)
    start = stream().start
    assert (start["job_id"], start["shards"]) == ("build-77", 3)


@pytest.mark.parametrize(("args", "says"), [
    (["--rt-shards", "3"], "--rt-shards: needs --rt-job-id"),
    (["--rt-job-id", "j", "--rt-shards", "0"], "--rt-shards: must be at least 1"),
    (["--rt-job-id", "j", "--rt-shards", "two"], "--rt-shards: must be a number"),
])
def test_a_bad_shard_count_stops_pytest_naming_the_option(rt, no_ci, args, says):
    rt.pytester.makepyfile("def test_a():\n    pass\n")
    result = rt.run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{says}*"])
