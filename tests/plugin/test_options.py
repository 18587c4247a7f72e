"""Every option's spellings come from one table; the README's options table is that table."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_rt.settings import OPTIONS, readme_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_options_table_is_the_one_the_code_makes():
    text = README.read_text(encoding="utf-8")
    assert readme_table() in text, (
        "README.md's options table differs from pytest_rt.settings.OPTIONS; paste this:\n"
        + readme_table())


def test_every_flag_of_the_table_is_registered_with_pytest(pytester):
    result = pytester.runpytest("--help")
    out = result.stdout.str()
    for option in OPTIONS:
        for flag in (*option.flags, option.negative):
            if flag:
                assert flag in out, flag


# For each option read from the environment: a value, and what Settings makes of it.
FROM_ENV = {
    "rt_url": ("http://127.0.0.1:9/from-env", "url", "http://127.0.0.1:9/from-env"),
    "rt_env": ("staging", "env", "staging"),
    "rt_job_id": ("job-from-env", "job_id", "job-from-env"),
    "rt_project": ("shop", "project", "shop"),
    "rt_shards": ("3", "shards", 3),
    "rt_flush_timeout": ("7", "flush_timeout", 7.0),
    "rt_spool": ("/tmp/rt-spool-from-env", "spool_dir", "/tmp/rt-spool-from-env"),
    "rt_token": ("tok-from-env", "token", "tok-from-env"),
}


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.env], ids=lambda o: o.dest)
def test_each_environment_variable_of_the_table_is_read(pytester, monkeypatch, option):
    value, attribute, expected = FROM_ENV[option.dest]  # a new variable needs its case here
    monkeypatch.setenv(option.env, value)
    if option.dest == "rt_shards":
        monkeypatch.setenv("PYTEST_RT_JOB_ID", "shared")
    pytester.makeconftest(f"""
from pytest_rt.settings import resolve

def pytest_configure(config):
    value = getattr(resolve(config), {attribute!r})
    print("RESOLVED", repr(str(value) if {attribute!r} == "spool_dir" else value))
""")
    result = pytester.runpytest("-s", "--co", "-q")
    result.stdout.fnmatch_lines([f"RESOLVED {expected!r}"])
