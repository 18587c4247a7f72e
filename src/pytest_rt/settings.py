"""Options, and their resolution into one immutable Settings object.

Every spelling a user may have (command line, environment, ini file, the seed's
conftest.py variables) is read here, once, with the precedence in one place:
command line > environment > ini > conftest.py > default. A bad value raises
``pytest.UsageError`` naming the option, so pytest stops at start-up with one
clear line instead of a traceback.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULT_URL = "http://127.0.0.1:8765/loader"
DEFAULT_FLUSH_TIMEOUT = 10.0
DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_MSG = 20_000
DEFAULT_SPOOL = ".pytest_rt"
MAX_NUMBER = 86_400.0  # a day of seconds; far beyond any sane timeout
JOB_FILE = "testgr_last_job.txt"
_JOB_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_HEADER = re.compile(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]+):\s*(.*)$")


@dataclass(frozen=True)
class Settings:
    """Everything the plugin needs to know, resolved once at start-up."""

    url: str
    env: str | None = None
    show_errors: bool = True
    job_id: str = field(default_factory=lambda: uuid4_text())
    custom_id: str | None = None
    custom_data: dict[str, Any] | None = None
    project: str | None = None  # what the run tests; resolve() defaults it to the rootdir's name
    shards: int | None = None  # CI shards sharing the job: it is finished when all have stopped
    job_report: bool = False
    job_file: Path | None = None
    flush_timeout: float = DEFAULT_FLUSH_TIMEOUT
    timeout: float = DEFAULT_TIMEOUT
    spool_dir: Path = Path(DEFAULT_SPOOL)
    batch: bool | None = None  # None: use batches when the receiver offers them
    token: str | None = field(default=None, repr=False)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    ca_bundle: Path | None = None
    insecure: bool = False
    max_msg: int = DEFAULT_MAX_MSG
    capture: str = "failed"  # whose captured output goes with stopTestItem: failed, all, none
    ci_summary: bool = True  # a Markdown summary for GitHub Actions' job page
    redact: tuple[re.Pattern[str], ...] = ()

    @property
    def display_url(self) -> str:
        """The endpoint with any password removed, fit to print."""
        return redact_url(self.url)


def uuid4_text() -> str:
    """str(uuid.uuid4()), without importing uuid: this module loads with every pytest run."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class Option:
    """One option in all its spellings: addoption, addini, the resolution's lookups and
    the README's options table are all made from OPTIONS (tests/plugin/test_options.py
    fails when the README's table is not the one this makes)."""

    flags: tuple[str, ...]  # the first is the option's name in messages
    dest: str
    meaning: str  # the README's text, and the start of --help's
    metavar: str | None = None  # None: a flag taking no value
    negative: str | None = None  # a second flag storing False in the same dest
    ini: str | None = None
    ini_lines: bool = False  # the ini value is one entry per line
    env: str | None = None
    conftest: str | None = None  # the seed's conftest.py variable
    default: str = ""  # as the README shows it
    repeat: bool = False  # may be given several times

    @property
    def name(self) -> str:
        """How messages name it: the long spelling (--rt-env, not --rte)."""
        long = "--" + self.dest.replace("_", "-")
        return long if long in self.flags else self.flags[0]

    def addoption(self, group: Any) -> None:
        where = [f"env {self.env}"] if self.env else []
        where += [f"ini {self.ini}"] if self.ini else []
        where += [f"conftest {self.conftest}"] if self.conftest else []
        text = self.meaning.replace("`", "") + (f" ({', '.join(where)})" if where else "")
        if self.default:
            text += f". Default: {self.default.replace('`', '')}"
        if self.repeat:
            group.addoption(*self.flags, dest=self.dest, action="append", default=[],
                            metavar=self.metavar, help=text)
        elif self.metavar is not None:
            group.addoption(*self.flags, dest=self.dest, metavar=self.metavar, help=text)
        else:  # a switch: None when not given, so the ini file and conftest.py may decide
            group.addoption(*self.flags, dest=self.dest, action="store_true", default=None,
                            help=text)
        if self.negative:
            group.addoption(self.negative, dest=self.dest, action="store_false",
                            help=f"The opposite of {self.flags[0]}.")

    def readme_row(self) -> str:
        first = f"`{self.flags[0]} {self.metavar}`" if self.metavar else f"`{self.flags[0]}`"
        names = [first] + [f"`{flag}`" for flag in (*self.flags[1:], self.negative) if flag]
        ini = f"`{self.ini}`{' (lines)' if self.ini_lines else ''}" if self.ini else ""
        cells = [", ".join(names), ini, f"`{self.env}`" if self.env else "",
                 f"`{self.conftest}`" if self.conftest else "", self.default, self.meaning]
        return "| " + " | ".join(cells).replace("  ", " ") + " |"


OPTIONS = (
    Option(("--rt",), "rt", "enable; without it nothing is sent, no thread starts",
           default="off"),
    Option(("--rt-url", "--rtu"), "rt_url", "endpoint (http or https)", metavar="URL",
           ini="rt_url", env="PYTEST_RT_URL", conftest="endpoint", default=f"`{DEFAULT_URL}`"),
    Option(("--rte", "--rt-env"), "rt_env", "environment name, sent as `env`", metavar="NAME",
           ini="rt_env", env="PYTEST_RT_ENV", default="null"),
    Option(("--rt-show-errors",), "rt_show_errors", "print delivery problems in the summary",
           negative="--rt-no-show-errors", ini="rt_show_errors", conftest="show_errors",
           default="on"),
    Option(("--rt-job-id",), "rt_job_id", "share one job between CI shards", metavar="ID",
           env="PYTEST_RT_JOB_ID", default="a new uuid4"),
    Option(("--rt-project",), "rt_project",
           "the project, to tell jobs apart (sent with the CI build, branch and commit)",
           metavar="NAME", ini="rt_project", env="PYTEST_RT_PROJECT",
           default="the rootdir's name"),
    Option(("--rt-shards",), "rt_shards",
           "with `--rt-job-id`: the job is finished when N shards have stopped", metavar="N",
           env="PYTEST_RT_SHARDS"),
    Option(("--rt-custom-id",), "rt_custom_id", "Testgr's `custom_id`; makes test uuids stable",
           metavar="ID", default="null"),
    Option(("--rt-custom-data",), "rt_custom_data", "a JSON object sent as `custom_data`",
           metavar="JSON", default="null"),
    Option(("--rt-job-report",), "rt_job_report",
           "`send_report: \"1\"` (Testgr e-mails a report)", default="off"),
    Option(("--rt-return-job",), "rt_return_job", f"write the job id to `{JOB_FILE}`",
           default="off"),
    Option(("--rt-job-file",), "rt_job_file", "write the job id to PATH", metavar="PATH"),
    Option(("--rt-flush-timeout",), "rt_flush_timeout", "longest wait for delivery at the end",
           metavar="S", ini="rt_flush_timeout", env="PYTEST_RT_FLUSH_TIMEOUT",
           default=f"{DEFAULT_FLUSH_TIMEOUT:g}"),
    Option(("--rt-timeout",), "rt_timeout", "connect/read timeout of one request",
           metavar="S", ini="rt_timeout", default=f"{DEFAULT_TIMEOUT:g}"),
    Option(("--rt-spool",), "rt_spool", "where undelivered events are kept", metavar="DIR",
           ini="rt_spool", env="PYTEST_RT_SPOOL", default=f"`<rootdir>/{DEFAULT_SPOOL}`"),
    Option(("--rt-batch",), "rt_batch", "force or forbid JSON-array batches",
           negative="--rt-no-batch", default="negotiated"),
    Option(("--rt-token",), "rt_token", "`Authorization: Bearer ...`; never printed",
           metavar="TOKEN", env="PYTEST_RT_TOKEN"),
    Option(("--rt-header",), "rt_header", "extra header, repeatable", metavar="'Name: value'",
           repeat=True),
    Option(("--rt-ca-bundle",), "rt_ca_bundle", "CA bundle for HTTPS", metavar="PATH",
           default="system CAs"),
    Option(("--rt-insecure",), "rt_insecure", "don't verify HTTPS (warns)", default="off"),
    Option(("--rt-max-msg",), "rt_max_msg", "cap on `msg`, characters, with a visible marker",
           metavar="N", ini="rt_max_msg", default=f"{DEFAULT_MAX_MSG}"),
    Option(("--rt-capture",), "rt_capture",
           "send the captured stdout, stderr and log of `failed` tests, `all`, or `none`",
           metavar="WHICH", ini="rt_capture", default="`failed`"),
    Option(("--rt-no-ci-summary",), "rt_no_ci_summary",
           "don't append a summary to GitHub Actions' `GITHUB_STEP_SUMMARY`"),
    Option(("--rt-redact",), "rt_redact", "mask matches in messages, repeatable",
           metavar="REGEX", ini="rt_redact", ini_lines=True, repeat=True),
)
_BY_DEST = {option.dest: option for option in OPTIONS}


def add_options(parser: pytest.Parser) -> None:
    """Register the command-line options and ini values."""
    group = parser.getgroup("pytest-rt", "stream results live over HTTP (pytest-rt)")
    for option in OPTIONS:
        option.addoption(group)
        if option.ini:
            text = f"pytest-rt: {option.meaning.replace('`', '')}"
            if option.ini_lines:
                parser.addini(option.ini, text, type="linelist")
            else:
                parser.addini(option.ini, text)


def readme_table() -> str:
    """The README's options table, as OPTIONS says it."""
    head = ["| command line | ini | environment | conftest.py | default | meaning |",
            "|---|---|---|---|---|---|"]
    return "\n".join(head + [option.readme_row() for option in OPTIONS])


class _Sources:
    """Looks a value up in each place a user may have put it, in precedence order."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.conftest = _seed_conftest_values(config)

    def get(self, dest: str) -> tuple[Any, str] | None:
        """Return (value, where it came from) or None when nowhere set."""
        option = _BY_DEST[dest]
        value = self.config.getoption(dest)
        if value is not None:
            return value, option.name
        if option.env and os.environ.get(option.env):
            return os.environ[option.env], option.env
        if option.ini:
            ini_value = self.config.getini(option.ini)
            if ini_value not in ("", None, []):
                return ini_value, f"ini {option.ini}"
        if option.conftest and option.conftest in self.conftest:
            return self.conftest[option.conftest], f"conftest.py {option.conftest}"
        return None


def _seed_conftest_values(config: pytest.Config) -> dict[str, Any]:
    """The seed's `endpoint` and `show_errors` from the conftest.py loaded at start-up.

    The nearest conftest.py to the rootdir that defines them wins.
    """
    conftests: list[ModuleType] = [
        plugin for plugin in config.pluginmanager.get_plugins()
        if isinstance(plugin, ModuleType)
        and os.path.basename(getattr(plugin, "__file__", None) or "") == "conftest.py"
    ]
    conftests.sort(key=lambda mod: len(Path(mod.__file__ or "").parts))
    found: dict[str, Any] = {}
    for mod in conftests:
        for name, kinds in (("endpoint", (str,)), ("show_errors", (bool, int, str))):
            value = getattr(mod, name, None)
            # Only the seed's plain values: a fixture called `endpoint` is not one.
            if name not in found and isinstance(value, kinds):
                found[name] = value
    return found


def _usage(option: str, value: object, why: str) -> pytest.UsageError:
    return pytest.UsageError(f"pytest-rt: {option}: {why} (got {value!r})")


def _url(value: object, where: str) -> str:
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _usage(where, redact_url(text), "must be an http:// or https:// URL")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise _usage(where, redact_url(text), "has an invalid port") from None
    if any(c.isspace() or ord(c) < 32 or ord(c) > 126 for c in text):
        # Sent as-is on the request line: a space would make every event a 400.
        raise _usage(where, redact_url(text), "must be percent-encoded (no spaces or "
                     "non-ASCII characters)")
    return text


def _bool(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise _usage(where, value, "must be true or false")


def _number(value: object, where: str, *, low: float, integer: bool = False,
            high: float = MAX_NUMBER) -> float:
    try:
        number = int(str(value)) if integer else float(str(value))
    except ValueError:
        raise _usage(where, value, "must be a number") from None
    if not number >= low:  # also rejects NaN
        raise _usage(where, value, f"must be at least {low:g}")
    if number > high:  # also rejects inf: sleeps and timeouts overflow
        raise _usage(where, value, f"must be at most {high:g}")
    return number


def _custom_data(value: object, where: str) -> dict[str, Any]:
    try:
        data = json.loads(str(value))
    except json.JSONDecodeError as exc:
        raise _usage(where, value, f"is not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise _usage(where, value, "must be a JSON object, like {\"key\": \"value\"}")
    return data


def parse_headers(values: list[str], option: str = "--rt-header") -> tuple[tuple[str, str], ...]:
    """'Name: value' strings as (name, value) pairs; UsageError naming the option."""
    headers: list[tuple[str, str]] = []
    for raw in values:
        match = _HEADER.match(raw)
        if not match or any(c in raw for c in "\r\n\0"):
            # Nothing of the value is echoed: a header often carries a secret.
            raise pytest.UsageError(
                f"pytest-rt: {option}: the {len(headers) + 1}. header must look like "
                "'Name: value' on one line (not shown: it may hold a secret)"
            )
        headers.append((match.group(1), match.group(2)))
    return tuple(headers)


def _patterns(values: list[str], where: str) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for raw in values:
        try:
            compiled.append(re.compile(raw))
        except re.error as exc:
            raise _usage(where, raw, f"is not a valid regular expression ({exc})") from None
    return tuple(compiled)


Resolved = dict[str, Any]  # Settings' fields, by name, as a part of resolve() finds them


def resolve(config: pytest.Config) -> Settings:
    """Resolve every option into Settings; raise pytest.UsageError on a bad value."""
    src = _Sources(config)
    kw: Resolved = {}
    for part in (_where, _identity, _delivery, _security, _messages):
        kw.update(part(src))
    return Settings(**kw)



def _where(src: _Sources) -> Resolved:
    """Where events go, and whether problems are shown."""
    out: Resolved = {}
    found = src.get("rt_url")
    out["url"] = _url(found[0], found[1]) if found else DEFAULT_URL
    if found := src.get("rt_show_errors"):
        out["show_errors"] = _bool(*found)
    return out


def _identity(src: _Sources) -> Resolved:
    """What the job is: its id, names, data, shards, and where its id is written."""
    config = src.config
    out: Resolved = {}
    if found := src.get("rt_env"):
        out["env"] = str(found[0])
    if found := src.get("rt_job_id"):
        if not _JOB_ID.match(str(found[0])):
            raise _usage(found[1], found[0], "must be 1-128 letters, digits or . _ : -")
        out["job_id"] = str(found[0])
    if found := src.get("rt_custom_id"):
        out["custom_id"] = str(found[0])
    found = src.get("rt_project")
    out["project"] = str(found[0]).strip()[:200] if found else config.rootpath.name
    if found := src.get("rt_shards"):
        out["shards"] = int(_number(*found, low=1, integer=True, high=10_000))
        if "job_id" not in out:  # each shard would start a job of its own
            raise _usage(found[1], found[0], "needs --rt-job-id (or PYTEST_RT_JOB_ID) "
                         "shared by the shards")
    if found := src.get("rt_custom_data"):
        out["custom_data"] = _custom_data(*found)
    out["job_report"] = bool(config.getoption("rt_job_report"))
    if config.getoption("rt_job_file"):
        out["job_file"] = Path(config.getoption("rt_job_file"))
    elif config.getoption("rt_return_job"):
        out["job_file"] = Path(JOB_FILE)
    return out


def _delivery(src: _Sources) -> Resolved:
    """How long to wait, where to keep what waits, how to send."""
    config = src.config
    out: Resolved = {"batch": config.getoption("rt_batch")}
    if found := src.get("rt_flush_timeout"):
        out["flush_timeout"] = _number(*found, low=0)
    if found := src.get("rt_timeout"):
        out["timeout"] = _number(*found, low=0.05)
    if found := src.get("rt_spool"):
        out["spool_dir"] = Path(os.path.expanduser(str(found[0])))
    else:
        out["spool_dir"] = config.rootpath / DEFAULT_SPOOL
    return out


def _security(src: _Sources) -> Resolved:
    """Credentials, headers and TLS; secrets are never shown in a message."""
    config = src.config
    out: Resolved = {}
    if found := src.get("rt_token"):
        # A token read from a file or a secret store often ends in a newline.
        token = str(found[0]).strip()
        if any(c in token for c in "\r\n\0"):
            raise pytest.UsageError(f"pytest-rt: {found[1]}: the token contains a line break "
                                    "(not shown: it is a secret)")
        out["token"] = token
    out["headers"] = parse_headers(config.getoption("rt_header"))
    if found := src.get("rt_ca_bundle"):
        path = Path(str(found[0]))
        if not path.is_file():
            raise _usage(found[1], str(path), "is not a file")
        out["ca_bundle"] = path
    out["insecure"] = bool(config.getoption("rt_insecure"))
    return out


def _messages(src: _Sources) -> Resolved:
    """What leaves the process of a test's text, and the summaries."""
    config = src.config
    out: Resolved = {"ci_summary": not config.getoption("rt_no_ci_summary")}
    if found := src.get("rt_max_msg"):
        out["max_msg"] = int(_number(*found, low=100, integer=True, high=10**9))
    if found := src.get("rt_capture"):
        if str(found[0]).strip() not in ("failed", "all", "none"):
            raise _usage(found[1], found[0], "must be one of failed, all, none")
        out["capture"] = str(found[0]).strip()
    redact = list(config.getoption("rt_redact")) or list(config.getini("rt_redact"))
    out["redact"] = _patterns(redact, "--rt-redact")
    return out
