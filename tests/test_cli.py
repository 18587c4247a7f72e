"""The `pytest-rt` command: one parser, a subparser per command, the server imported only
to serve."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pytest_rt.cli import build_parser, main

SERVER_PACKAGES = ("fastapi", "starlette", "uvicorn", "sqlalchemy")


def imports_after(argv: list[str]) -> set[str]:
    """The server's packages imported by ``pytest-rt ARGV`` (run in a fresh process)."""
    code = (
        "import json, sys\n"
        "from pytest_rt.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1])) & set(SERVER_PACKAGES)


@pytest.mark.parametrize("argv", [["replay", "--help"], ["watch", "--help"], ["--version"],
                                  ["serve", "--port", "70000"]])
def test_only_running_the_receiver_imports_the_server(argv: list[str]) -> None:
    assert imports_after(argv) == set()


def test_each_command_is_a_subparser_with_its_own_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["-h"])
    assert exit.value.code == 0
    top = capsys.readouterr().out
    for name in ("serve", "watch", "replay"):
        assert f"    {name}  " in top
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert capsys.readouterr().out.startswith(f"usage: pytest-rt {name} ")


def test_without_a_command_the_help_is_shown_and_the_status_is_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == 2
    assert capsys.readouterr().out.startswith("usage: pytest-rt ")


def test_a_usage_error_names_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        build_parser().parse_args(["watch", "--wait", "soon"])
    assert exit.value.code == 2
    assert "pytest-rt watch: error: argument --wait" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit:
        main(["serve", "--max-body", "0"])
    assert exit.value.code == 2
    assert "pytest-rt serve: error: --max-body" in capsys.readouterr().err
