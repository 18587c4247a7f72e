from __future__ import annotations

import time

import pytest


@pytest.mark.parametrize("name", ["alice", "bob", "carol", "dave", "eve", "mallory"])
def test_signup(name: str) -> None:
    time.sleep(0.25)
    assert name.isalpha()


def test_password_policy() -> None:
    time.sleep(0.3)
    password = "hunter2"
    assert len(password) >= 8, f"password {password!r} is too short"


@pytest.fixture
def session():
    yield {"user": "alice"}
    time.sleep(0.1)
    raise RuntimeError("session store refused to close the session")


def test_logout(session: dict[str, str]) -> None:
    """Passes, but its teardown fails: reported as an error."""
    time.sleep(0.2)
    assert session["user"] == "alice"
