"""Temporal clients, one per (address, namespace) and event loop, with a one-line error when
the server does not answer."""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from temporalio.client import Client

    from fm_lab.temporal.ids import Target

_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], Client]] = (
    weakref.WeakKeyDictionary())


class TemporalSetupError(RuntimeError):
    """Temporal cannot be used as asked (a user error: ``fm-lab`` prints one line)."""


class TemporalUnavailableError(TemporalSetupError, ConnectionError):
    """The Temporal server at the given address did not answer."""


async def connect(target: Target) -> Client:
    """A client of ``target``'s server and namespace (cached for this event loop)."""
    from temporalio.client import Client

    clients = _CLIENTS.setdefault(asyncio.get_running_loop(), {})
    key = (target.address, target.namespace)
    client = clients.get(key)
    if client is None:
        try:
            client = await Client.connect(target.address, namespace=target.namespace)
        except Exception as exc:
            raise TemporalUnavailableError(
                f"Temporal is not reachable at {target.address} (namespace "
                f"{target.namespace!r}): {str(exc).splitlines()[0] if str(exc) else exc!r}"
            ) from None
        clients[key] = client
    return client


__all__ = ["TemporalSetupError", "TemporalUnavailableError", "connect"]
