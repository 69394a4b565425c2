"""Who is acting: the user name and roles of this process (trusted-environment identity).

fm_lab does not authenticate anyone. The user is whoever the process environment says it is:
``FM_LAB_USER``, else ``JUPYTERHUB_USER`` (JupyterHub sets it in each user's server), else the
operating-system user. Roles come from ``FM_LAB_ROLES`` (a comma list: ``reviewer,admin``).
Whoever controls a kernel's environment therefore chooses its identity: this names who did
what among people who trust one another's setup (a team's JupyterHub, where the hub sets the
environment), it is no protection against a user who sets ``FM_LAB_USER`` to someone else.

>>> current_user()  # with FM_LAB_USER=ada in the environment  # doctest: +SKIP
'ada'
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable

USER_VARIABLES = ("FM_LAB_USER", "JUPYTERHUB_USER")
ROLES_VARIABLE = "FM_LAB_ROLES"
MAX_NAME_LENGTH = 128


class InvalidIdentityError(ValueError):
    """A user or role name that cannot name anyone (empty, too long, control characters)."""


def check_name(value: object, what: str = "user name") -> str:
    """``value`` as a user or role name, or :class:`InvalidIdentityError` saying why not: a
    string of 1 to 128 printable characters without a comma or surrounding whitespace.

    >>> check_name("bob")
    'bob'
    """
    if not isinstance(value, str):
        raise InvalidIdentityError(f"{what} must be a string, not {type(value).__name__}")
    if not value:
        raise InvalidIdentityError(f"{what} is empty")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidIdentityError(
            f"{what} {value[:20]!r}... is longer than {MAX_NAME_LENGTH} characters")
    if not value.isprintable():
        raise InvalidIdentityError(
            f"{what} {value!r} contains control or other unprintable characters")
    if value != value.strip():
        raise InvalidIdentityError(f"{what} {value!r} starts or ends with whitespace")
    if "," in value:
        raise InvalidIdentityError(f"{what} {value!r} contains a comma")
    return value


def check_names(values: Iterable[object], what: str) -> list[str]:
    """Each of ``values`` checked with :func:`check_name`, duplicates dropped, order kept."""
    return list(dict.fromkeys(check_name(value, what) for value in values))


def current_user() -> str:
    """This process's user: ``FM_LAB_USER``, else ``JUPYTERHUB_USER``, else the OS user.

    A set but invalid variable raises :class:`InvalidIdentityError` naming it (it is never
    skipped for the next one: a typo must not turn someone into someone else)."""
    for variable in USER_VARIABLES:
        value = os.environ.get(variable)
        if value is not None:
            return check_name(value, f"{variable}")
    try:
        name = _os_user()
    except (KeyError, OSError):  # a uid without a passwd entry (some containers)
        name = f"uid-{os.getuid()}"
    return check_name(name, "the operating-system user name")


def _os_user() -> str:
    """``getpass.getuser()``, the password database read once per uid: each run asks, and
    the lookup took ~0.07 ms of a run's start."""
    for variable in ("LOGNAME", "USER", "LNAME", "USERNAME"):  # getpass's, in its order
        if value := os.environ.get(variable):
            return value
    return _passwd_name(os.getuid())


@functools.lru_cache(maxsize=8)
def _passwd_name(uid: int) -> str:
    import pwd

    return pwd.getpwuid(uid).pw_name


def current_roles() -> frozenset[str]:
    """This process's roles, from ``FM_LAB_ROLES`` (comma-separated; blanks ignored)."""
    value = os.environ.get(ROLES_VARIABLE, "")
    parts = [part.strip() for part in value.split(",")]
    return frozenset(check_names((p for p in parts if p), f"a role in {ROLES_VARIABLE}"))


def may_answer(assignees: Iterable[str], roles: Iterable[str], user: str,
               user_roles: Iterable[str]) -> bool:
    """Whether ``user`` (holding ``user_roles``) may answer a suspension assigned to
    ``assignees`` and ``roles``: named, holding one of the roles, or nobody is assigned.

    >>> may_answer(["bob"], [], "bob", [])
    True
    >>> may_answer(["bob"], ["admin"], "alice", ["reviewer"])
    False
    """
    names, wanted = set(assignees), set(roles)
    if not names and not wanted:
        return True
    return user in names or bool(wanted & set(user_roles))


def describe_assignment(assignees: Iterable[str], roles: Iterable[str]) -> str:
    """Who may answer, in words: ``bob, carol or role reviewer``; ``anyone`` if unassigned."""
    parts = [*assignees, *(f"role {role}" for role in roles)]
    if not parts:
        return "anyone"
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} or {parts[-1]}"
