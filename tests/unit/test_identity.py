"""Who acts: the user from FM_LAB_USER / JUPYTERHUB_USER / the OS, roles, and who may answer."""

from __future__ import annotations

import getpass
import os
import pwd
from typing import Any

import pytest

from fm_lab import identity
from fm_lab.identity import (
    InvalidIdentityError,
    check_name,
    check_names,
    current_roles,
    current_user,
    describe_assignment,
    may_answer,
)


@pytest.fixture(autouse=True)
def _no_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("FM_LAB_USER", "JUPYTERHUB_USER", "FM_LAB_ROLES"):
        monkeypatch.delenv(variable, raising=False)


def test_fm_lab_user_wins_over_jupyterhub_and_the_os(monkeypatch: pytest.MonkeyPatch) -> None:
    assert current_user() == getpass.getuser()
    monkeypatch.setenv("JUPYTERHUB_USER", "hub-ada")
    assert current_user() == "hub-ada"
    monkeypatch.setenv("FM_LAB_USER", "ada@example.org")
    assert current_user() == "ada@example.org"


@pytest.mark.parametrize(("value", "why"), [
    ("", "is empty"),
    ("x" * 129, "longer than 128"),
    ("bob\nadmin", "control"),
    ("bob\x1b[31m", "control"),
    (" bob", "whitespace"),
    ("bob,carol", "comma"),
])
def test_a_bad_user_name_is_refused_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch, value: str, why: str) -> None:
    monkeypatch.setenv("JUPYTERHUB_USER", "fallback")
    monkeypatch.setenv("FM_LAB_USER", value)
    with pytest.raises(InvalidIdentityError, match=why) as raised:
        current_user()
    assert "FM_LAB_USER" in str(raised.value)  # not silently the next variable
    assert "\n" not in str(raised.value)


def _no_login_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(variable, raising=False)
    identity._passwd_name.cache_clear()


def test_the_os_user_falls_back_to_the_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_user(uid: int) -> Any:
        raise KeyError("getpwuid(): uid not found")

    _no_login_variables(monkeypatch)
    monkeypatch.setattr(pwd, "getpwuid", no_user)
    assert current_user() == f"uid-{os.getuid()}"
    identity._passwd_name.cache_clear()


def test_the_password_database_is_read_once_per_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_login_variables(monkeypatch)
    real, calls = pwd.getpwuid, []

    def counted(uid: int) -> Any:
        calls.append(uid)
        return real(uid)

    monkeypatch.setattr(pwd, "getpwuid", counted)
    assert current_user() == current_user() == real(os.getuid()).pw_name
    assert calls == [os.getuid()]  # getpass.getuser() read it on every call
    identity._passwd_name.cache_clear()


def test_roles_are_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    assert current_roles() == frozenset()
    monkeypatch.setenv("FM_LAB_ROLES", " reviewer, admin,,reviewer ")
    assert current_roles() == {"reviewer", "admin"}
    monkeypatch.setenv("FM_LAB_ROLES", "ok,bad\x07")
    with pytest.raises(InvalidIdentityError, match="FM_LAB_ROLES"):
        current_roles()


def test_names_must_be_strings_and_lists_drop_duplicates() -> None:
    with pytest.raises(InvalidIdentityError, match="must be a string"):
        check_name(3, "an assignee")
    assert check_names(["bob", "carol", "bob"], "an assignee") == ["bob", "carol"]


def test_who_may_answer() -> None:
    assert may_answer([], [], "anyone", [])
    assert may_answer(["bob"], [], "bob", [])
    assert not may_answer(["bob"], [], "alice", [])
    assert may_answer(["bob"], ["reviewer"], "alice", ["reviewer"])
    assert not may_answer([], ["reviewer"], "alice", ["admin"])
    assert describe_assignment([], []) == "anyone"
    assert describe_assignment(["bob"], ["reviewer"]) == "bob or role reviewer"
    assert describe_assignment(["bob", "carol"], []) == "bob or carol"
