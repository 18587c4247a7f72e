"""Where a run comes from: the CI build and the git checkout, for telling jobs apart.

Read once at the start of a run from the environment the CI system sets, and
from the files of the checkout's `.git` (no `git` process is started). Only
names, numbers and URLs are read, each from a variable the CI documents for
exactly that; credentials in a URL are removed. Pure but for reading
`os.environ`-like mappings and a few small files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pytest_rt.protocol import CI_FIELDS

FIELDS = CI_FIELDS
_PULL = re.compile(r"refs/pull/(\d+)/")
_MAX = 500  # characters of any one value


def detect(environ: Mapping[str, str], rootdir: Path) -> dict[str, str | None]:
    """The `ci` object of startTestRun: every field of FIELDS, None where unknown."""
    info: dict[str, str | None] = dict.fromkeys(FIELDS)
    for test, read in _PROVIDERS:
        if environ.get(test):
            info.update(read(environ))
            break
    git = _git(rootdir)
    for key in ("branch", "commit"):
        if not info[key]:
            info[key] = git.get(key)
    if info["provider"] is None and any(git.values()):
        info["provider"] = "git"
    return {key: _clean(key, value) for key, value in info.items()}


def _clean(key: str, value: str | None) -> str | None:
    if not value or value.lower() in ("false", "null", "none"):
        return None
    value = value.strip()[:_MAX]
    if key in ("build_url", "repository") and "@" in value:
        parts = urlsplit(value)  # https://user:token@host/... -> https://host/...
        if parts.netloc and "@" in parts.netloc:
            netloc = parts.netloc.rpartition("@")[2]
            value = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return value or None


def _github(env: Mapping[str, str]) -> dict[str, str | None]:
    server = env.get("GITHUB_SERVER_URL", "https://github.com")
    repo = env.get("GITHUB_REPOSITORY")
    run = env.get("GITHUB_RUN_ID")
    pull = _PULL.match(env.get("GITHUB_REF", ""))
    return {"provider": "github", "repository": repo,
            "branch": env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME"),
            "commit": env.get("GITHUB_SHA"), "pull_request": pull.group(1) if pull else None,
            "build": env.get("GITHUB_RUN_NUMBER"),
            "build_url": f"{server}/{repo}/actions/runs/{run}" if repo and run else None}


def _gitlab(env: Mapping[str, str]) -> dict[str, str | None]:
    return {"provider": "gitlab", "repository": env.get("CI_PROJECT_PATH"),
            "branch": (env.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME")
                       or env.get("CI_COMMIT_BRANCH") or env.get("CI_COMMIT_REF_NAME")),
            "commit": env.get("CI_COMMIT_SHA"), "pull_request": env.get("CI_MERGE_REQUEST_IID"),
            "build": env.get("CI_PIPELINE_IID") or env.get("CI_PIPELINE_ID"),
            "build_url": env.get("CI_PIPELINE_URL") or env.get("CI_JOB_URL")}


def _jenkins(env: Mapping[str, str]) -> dict[str, str | None]:
    branch = env.get("CHANGE_BRANCH") or env.get("BRANCH_NAME") or env.get("GIT_BRANCH")
    if branch and branch.startswith("origin/"):
        branch = branch.removeprefix("origin/")
    return {"provider": "jenkins", "repository": env.get("JOB_NAME"), "branch": branch,
            "commit": env.get("GIT_COMMIT"), "pull_request": env.get("CHANGE_ID"),
            "build": env.get("BUILD_NUMBER"), "build_url": env.get("BUILD_URL")}


def _circleci(env: Mapping[str, str]) -> dict[str, str | None]:
    user, name = env.get("CIRCLE_PROJECT_USERNAME"), env.get("CIRCLE_PROJECT_REPONAME")
    pull = env.get("CIRCLE_PR_NUMBER") or (env.get("CIRCLE_PULL_REQUEST") or "").rpartition(
        "/")[2]
    return {"provider": "circleci", "repository": f"{user}/{name}" if user and name else name,
            "branch": env.get("CIRCLE_BRANCH"), "commit": env.get("CIRCLE_SHA1"),
            "pull_request": pull or None, "build": env.get("CIRCLE_BUILD_NUM"),
            "build_url": env.get("CIRCLE_BUILD_URL")}


def _buildkite(env: Mapping[str, str]) -> dict[str, str | None]:
    return {"provider": "buildkite",
            "repository": env.get("BUILDKITE_PIPELINE_SLUG") or env.get("BUILDKITE_REPO"),
            "branch": env.get("BUILDKITE_BRANCH"), "commit": env.get("BUILDKITE_COMMIT"),
            "pull_request": env.get("BUILDKITE_PULL_REQUEST"),
            "build": env.get("BUILDKITE_BUILD_NUMBER"), "build_url": env.get("BUILDKITE_BUILD_URL")}


def _azure(env: Mapping[str, str]) -> dict[str, str | None]:
    collection, project = env.get("SYSTEM_COLLECTIONURI"), env.get("SYSTEM_TEAMPROJECT")
    build_id = env.get("BUILD_BUILDID")
    url = (f"{collection}{project}/_build/results?buildId={build_id}"
           if collection and project and build_id else None)
    branch = env.get("SYSTEM_PULLREQUEST_SOURCEBRANCH") or env.get("BUILD_SOURCEBRANCH")
    return {"provider": "azure", "repository": env.get("BUILD_REPOSITORY_NAME"),
            "branch": branch.removeprefix("refs/heads/") if branch else None,
            "commit": env.get("BUILD_SOURCEVERSION"),
            "pull_request": (env.get("SYSTEM_PULLREQUEST_PULLREQUESTNUMBER")
                             or env.get("SYSTEM_PULLREQUEST_PULLREQUESTID")),
            "build": env.get("BUILD_BUILDNUMBER"), "build_url": url}


# (the variable that says "this is that CI", how to read it), first match wins.
_PROVIDERS: tuple[tuple[str, Callable[[Mapping[str, str]], dict[str, str | None]]], ...] = (
    ("GITHUB_ACTIONS", _github),
    ("GITLAB_CI", _gitlab),
    ("BUILDKITE", _buildkite),
    ("CIRCLECI", _circleci),
    ("TF_BUILD", _azure),
    ("JENKINS_URL", _jenkins),
)


def _git(rootdir: Path) -> dict[str, str | None]:
    """Branch and commit of the checkout holding rootdir, from .git's files."""
    try:
        gitdir = _gitdir(rootdir)
        if gitdir is None:
            return {}
        head = (gitdir / "HEAD").read_text(errors="replace").strip()
        if not head.startswith("ref: "):
            return {"branch": None, "commit": head or None}  # a detached HEAD
        ref = head[5:].strip()
        branch = ref.removeprefix("refs/heads/")
        return {"branch": branch, "commit": _resolve(gitdir, ref)}
    except OSError:
        return {}


def _gitdir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        dotgit = folder / ".git"
        if dotgit.is_dir():
            return dotgit
        if dotgit.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = dotgit.read_text(errors="replace").strip()
            if text.startswith("gitdir: "):
                return (folder / text[8:]).resolve()
    return None


def _resolve(gitdir: Path, ref: str) -> str | None:
    common = gitdir
    commondir = gitdir / "commondir"  # worktrees keep their refs in the main .git
    if commondir.is_file():
        common = (gitdir / commondir.read_text().strip()).resolve()
    for base in (gitdir, common):
        loose = base / ref
        if loose.is_file():
            return loose.read_text(errors="replace").strip() or None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(errors="replace").splitlines():
            sha, _, name = line.partition(" ")
            if name == ref:
                return sha
    return None  # a new branch without a commit yet

