"""HTTP egress under the restricted policy: every connection an ``http`` node opens (the first
request and each redirect hop alike) resolves its host once, checks every address it got
(:mod:`fm_lab.security.addresses`) and connects to a checked address, so a DNS answer that
changes between the check and the connection (rebinding) cannot slip through. TLS still
verifies the certificate of, and sends SNI and ``Host`` for, the name in the URL.

A refusal raises :class:`EgressRefusedError` before any packet is sent to the address.
Imported when a restricted http node runs (it loads httpx).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from fm_lab.security.addresses import METADATA_HOSTS, Address, Allowance, normal_host
from fm_lab.security.policy import HTTP_ALLOW_ENV, Policy, PolicyError


class EgressRefusedError(PolicyError):
    """An http connection the policy in force does not allow."""


def refusal(host: str, address: str | None, why: str, policy: Policy) -> EgressRefusedError:
    """The one-line error for a refused connection."""
    where = f"host {host!r}" + (f" (address {address}, {why})" if address else f" ({why})")
    return EgressRefusedError(f"http connection to {where} refused by the {policy.mode} policy; "
                              f"allow it in {HTTP_ALLOW_ENV}")


async def checked_addresses(host: str, port: int, policy: Policy) -> list[str]:
    """The addresses of ``host`` that ``policy`` lets a connection reach, resolved once; raises
    :class:`EgressRefusedError` if any of them (or the name itself) is refused."""
    allowance = Allowance.parse(policy.http_allow)
    name = normal_host(host)
    if allowance.allows_host(name):
        return await _resolve(host, port)
    if name in METADATA_HOSTS:
        raise refusal(host, None, "a cloud metadata host", policy)
    found = await _resolve(host, port)
    for text in found:
        why = allowance.problem(_address(text))
        if why is not None:
            raise refusal(host, text, why, policy)
    return found


async def _resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an IP literal: itself, without DNS)."""
    try:
        return [str(ipaddress.ip_address(normal_host(host)))]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from exc
    found = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not found:
        raise httpcore.ConnectError(f"cannot resolve {host!r}: no addresses")
    return found


def _address(text: str) -> Address:
    return ipaddress.ip_address(text.split("%", 1)[0])  # no IPv6 zone id


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network back-end, connecting only to addresses the policy allows."""

    def __init__(self, policy: Policy, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.policy = policy
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve and check ``host``, then connect to its first reachable checked address."""
        async with asyncio.timeout(timeout):
            addresses = await checked_addresses(host, port, self.policy)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(address, port, timeout=timeout,
                                                    local_address=local_address,
                                                    socket_options=socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Refused: a Unix socket is a local service."""
        raise refusal(path, None, "a Unix socket", self.policy)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a :class:`CheckedBackend`. Proxies from the environment are not
    used (a proxy would connect for us, unchecked)."""

    def __init__(self, policy: Policy) -> None:
        super().__init__(trust_env=False)
        limits = httpx.Limits()
        # httpx takes no network back-end, so the pool it made is replaced with one that has
        # ours (tests/unit/security/test_egress.py fails if this stops taking effect)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=CheckedBackend(policy),
        )


def client_options(policy: Policy) -> dict[str, Any]:
    """Extra ``httpx.AsyncClient`` arguments an http node needs under ``policy`` (none when
    it is trusted: everything works as without a policy)."""
    return {"transport": CheckedTransport(policy)} if policy.restricted else {}
