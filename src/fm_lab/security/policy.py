"""The execution policy: ``trusted`` (a workflow may do anything its user can, like a notebook)
or ``restricted`` (it may only name registered functions, entry points and allow-listed modules,
and its ``http`` nodes may not reach internal addresses).

The policy of a run is chosen once, when it starts (:func:`resolve_policy`), and is in force for
everything the run does through a context variable (:func:`using_policy`,
:func:`current_policy`): validation, node bodies, child runs and the functions they resolve.
"""

from __future__ import annotations

import contextlib
import contextvars
import fnmatch
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast

from fm_lab.exceptions import NodeError

Mode = Literal["trusted", "restricted"]
MODES: Final = ("trusted", "restricted")
TEAM: Final = "team"  # a store capability (``supports``): shared by a team, restricted by default

POLICY_ENV: Final = "FM_LAB_POLICY"
ALLOW_ENV: Final = "FM_LAB_ALLOW"
HTTP_ALLOW_ENV: Final = "FM_LAB_HTTP_ALLOW"
POLICY_HELP: Final = ("execution policy (default: $FM_LAB_POLICY, else the store's: trusted for a "
                      "DuckDB file, restricted on Dask workers); restricted allows only "
                      "registered, entry-point and allow-listed ($FM_LAB_ALLOW, the store's "
                      "policy.allow) functions and no internal addresses")


class PolicyError(NodeError):
    """Something the policy in force does not permit (raised before anything is done)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="user", retryable=False, domain="policy")


class PolicySettingError(ValueError):
    """A policy setting (argument or environment variable) that is not a policy."""


@dataclass(frozen=True)
class Policy:
    """A policy: its ``mode``, the module patterns ``allow`` lets workflows import
    (``mypkg.*``) and the hosts or networks ``http_allow`` lets restricted ``http`` nodes reach
    (``10.1.2.3``, ``10.0.0.0/8``, ``intranet.example``). ``source`` says where the mode came
    from (shown with it).

    >>> Policy("restricted", allow=("mypkg.*",)).allows_module("mypkg.tools")
    True
    """

    mode: Mode
    allow: tuple[str, ...] = ()
    http_allow: tuple[str, ...] = ()
    source: str = field(default="default", compare=False)

    @property
    def restricted(self) -> bool:
        return self.mode == "restricted"

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        """What validation depends on (plans are cached per key)."""
        return self.mode, self.allow

    def allows_module(self, module: str) -> bool:
        """Whether ``module`` matches one of the ``allow`` patterns (``fnmatch`` globs)."""
        return any(fnmatch.fnmatchcase(module, pattern) for pattern in self.allow)

    def describe(self) -> str:
        """One line: the mode and where it came from (``restricted (FM_LAB_POLICY)``)."""
        return f"{self.mode} ({self.source})"

    def __str__(self) -> str:
        return self.mode


def parse_mode(value: str, setting: str) -> Mode:
    """``value`` as a mode, or :class:`PolicySettingError` naming ``setting``."""
    mode = value.strip().lower()
    if mode not in MODES:
        raise PolicySettingError(f"{setting}={value!r} is not a policy: use trusted or restricted")
    return cast(Mode, mode)


def env_list(name: str) -> tuple[str, ...]:
    """A comma-separated environment variable as a tuple of its non-empty items."""
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


def policy(mode: Mode | str, source: str = "argument",
           settings: dict[str, Any] | None = None) -> Policy:
    """A policy of ``mode`` with the allow-lists of the environment (``FM_LAB_ALLOW``,
    ``FM_LAB_HTTP_ALLOW``) and of the store's ``settings`` (``policy.allow``,
    ``policy.http_allow``: :mod:`fm_lab.store.settings`)."""
    settings = settings or {}
    return Policy(parse_mode(mode, "policy"),
                  _joined(env_list(ALLOW_ENV), settings.get("policy.allow")),
                  _joined(env_list(HTTP_ALLOW_ENV), settings.get("policy.http_allow")),
                  source)


def _joined(first: tuple[str, ...], more: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*first, *(more or ())]))


def store_settings(store: Any) -> dict[str, Any]:
    """The settings of ``store`` (an empty dict for None or a store without settings)."""
    read = getattr(store, "settings", None)
    return dict(read()) if callable(read) else {}


def store_default(store: Any, settings: dict[str, Any] | None = None) -> Mode:
    """The default mode of runs on ``store``: its ``policy.default`` setting, else its
    ``default_policy`` attribute, else ``restricted`` for a store whose ``supports`` has
    ``team``, else ``trusted``."""
    chosen = (settings or {}).get("policy.default")
    if chosen is not None:
        return parse_mode(str(chosen), "the store's policy.default setting")
    declared = getattr(store, "default_policy", None)
    if declared is not None:
        return parse_mode(str(declared), f"{type(store).__name__}.default_policy")
    return "restricted" if TEAM in getattr(store, "supports", frozenset()) else "trusted"


def resolve_policy(
    explicit: Policy | str | None = None,
    *,
    store: Any = None,
    stored: str | None = None,
    saved_by: str | None = None,
    user: str | None = None,
    worker: bool = False,
) -> Policy:
    """The policy a run starts with, first of:

    1. ``explicit`` (an argument, ``--policy``);
    2. ``restricted`` when the workflow was ``saved_by`` another identity than ``user``
       (unknown ``user``: another), even inside a trusted run;
    3. the policy of the run this one starts inside (a child run never loosens it);
    4. ``$FM_LAB_POLICY``;
    5. ``restricted`` when the run continues a run ``stored`` as restricted (a resume);
    6. ``restricted`` for runs on ``worker`` processes (batch sweeps on Dask);
    7. the store's default (:func:`store_default`).

    The allow-lists are the environment's and the store's settings'.
    """
    if isinstance(explicit, Policy):
        return explicit
    if explicit is None and saved_by is None:
        enclosing = _CURRENT.get()
        if enclosing is not None:
            return enclosing
    settings = store_settings(store)
    if explicit is not None:
        return policy(explicit, "argument", settings)
    if saved_by is not None and saved_by != user:
        # a subflow naming a stored workflow passes who saved its newest version and who runs
        # it (engine.bodies.stored_policy)
        return policy("restricted", f"saved by {saved_by}", settings)
    enclosing = _CURRENT.get()
    if enclosing is not None:
        return enclosing
    from_env = os.environ.get(POLICY_ENV, "").strip()
    if from_env:
        return policy(parse_mode(from_env, POLICY_ENV), POLICY_ENV, settings)
    if stored == "restricted":
        return policy("restricted", "the stored run", settings)
    if worker:
        return policy("restricted", "worker default", settings)
    mode = store_default(store, settings)
    return policy(mode, "store default" if store is not None else "default", settings)


def capped(submitted: Policy | None, ceiling: Mode | None = None) -> Policy:
    """The policy a worker runs submitted work under: ``submitted`` (None: ``restricted``),
    but never ``trusted`` when the worker's ``ceiling`` (default: its own
    ``$FM_LAB_POLICY``, when set) is ``restricted``: what arrives with the work cannot loosen
    what the worker's operator set."""
    if submitted is None:
        return policy("restricted", "worker default")
    source = "the worker's ceiling"
    if ceiling is None:
        own = os.environ.get(POLICY_ENV, "").strip()
        ceiling, source = (parse_mode(own, POLICY_ENV) if own else None), f"worker {POLICY_ENV}"
    if submitted.mode == "trusted" and ceiling == "restricted":
        return Policy("restricted", submitted.allow, submitted.http_allow, source)
    return submitted


_CURRENT: contextvars.ContextVar[Policy | None] = contextvars.ContextVar(
    "fm_lab_policy", default=None)


def current_policy() -> Policy:
    """The policy in force: the running run's, else what the environment says
    (``$FM_LAB_POLICY``, default ``trusted``)."""
    found = _CURRENT.get()
    if found is not None:
        return found
    from_env = os.environ.get(POLICY_ENV, "").strip()
    return policy(parse_mode(from_env, POLICY_ENV) if from_env else "trusted",
                  POLICY_ENV if from_env else "default")


@contextlib.contextmanager
def using_policy(chosen: Policy | None) -> Iterator[Policy]:
    """Make ``chosen`` the policy in force inside the block (None: leave it as it is)."""
    if chosen is None:
        yield current_policy()
        return
    token = _CURRENT.set(chosen)
    try:
        yield chosen
    finally:
        _CURRENT.reset(token)
