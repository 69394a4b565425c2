"""A connection in use: the headers it adds to requests, and OAuth2 client-credentials tokens
fetched and refreshed as they expire. Every secret value (and every token fetched) is handed
to the tracing redactor, so it is masked wherever fm_lab stores or exports anything."""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from fm_lab.connections.store import ConnectionSettingError
from fm_lab.tracing.redact import redactor

Kind = Literal["bearer", "api_key", "basic", "oauth2_client_credentials"]
KINDS: tuple[Kind, ...] = ("bearer", "api_key", "basic", "oauth2_client_credentials")
SECRETS: dict[str, tuple[str, ...]] = {  # the secret fields each kind needs
    "bearer": ("token",), "api_key": ("token",), "basic": ("password",),
    "oauth2_client_credentials": ("client_secret",)}
PUBLIC: dict[str, tuple[str, ...]] = {  # the public fields each kind needs
    "bearer": (), "api_key": (), "basic": ("username",),
    "oauth2_client_credentials": ("token_url", "client_id")}
OPTIONAL = ("header", "scope", "audience")
REFRESH_MARGIN_S = 30.0
"""A token is fetched again this long before it expires (so it never expires in flight)."""


def guard(value: str) -> str:
    """Hand ``value`` to the redactor (it is masked from now on) and return it."""
    if len(value) < 4:
        raise ConnectionSettingError("a secret shorter than 4 characters cannot be masked "
                                     "safely; refusing it")
    redactor().add_secret(value)
    return value


@dataclass
class Connection:
    """A named credential: ``headers()`` are what a request using it carries."""

    name: str
    kind: Kind
    fields: dict[str, str]
    stored: str
    _secrets: dict[str, str] = field(repr=False)
    _token: str | None = field(default=None, repr=False)
    _expires: float = field(default=0.0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        for value in self._secrets.values():
            guard(value)
        if self.kind == "basic":  # the header's encoded form is a secret too
            pair = f"{self.fields['username']}:{self._secrets['password']}".encode()
            self._secrets["basic"] = guard(base64.b64encode(pair).decode())

    def describe(self) -> dict[str, Any]:
        """Name, kind, where it is stored and its public fields (never a secret)."""
        return {"name": self.name, "kind": self.kind, "stored": self.stored, **self.fields}

    def headers(self) -> dict[str, str]:
        """The request headers that authenticate with this connection (an OAuth2 token is
        fetched first when there is none or it is about to expire)."""
        if self.kind == "oauth2_client_credentials":
            return {"Authorization": f"Bearer {self._current_token()}"}
        return self._static_headers()

    async def aheaders(self) -> dict[str, str]:
        """:meth:`headers` without blocking the event loop (a token fetch runs on a thread)."""
        if self.kind != "oauth2_client_credentials" or self._fresh():
            return self.headers()
        import asyncio  # here, not at import: `fm-lab --help` builds this module's parser

        return await asyncio.to_thread(self.headers)

    def invalidate(self) -> None:
        """Forget the cached OAuth2 token (after a 401): the next use fetches a new one."""
        with self._lock:
            self._token, self._expires = None, 0.0

    def _static_headers(self) -> dict[str, str]:
        if self.kind == "bearer":
            return {"Authorization": f"Bearer {self._secrets['token']}"}
        if self.kind == "api_key":
            return {self.fields.get("header") or "X-API-Key": self._secrets["token"]}
        return {"Authorization": f"Basic {self._secrets['basic']}"}

    def _fresh(self) -> bool:
        return self._token is not None and time.time() < self._expires - REFRESH_MARGIN_S

    def _current_token(self) -> str:
        with self._lock:
            if not self._fresh():
                self._token, self._expires = self._fetch_token()
            assert self._token is not None
            return self._token

    def _fetch_token(self) -> tuple[str, float]:
        import httpx

        url = self.fields["token_url"]
        form = {"grant_type": "client_credentials"}
        for key in ("scope", "audience"):
            if self.fields.get(key):
                form[key] = self.fields[key]
        try:
            response = httpx.post(url, data=form, timeout=30.0,
                                  auth=(self.fields["client_id"], self._secrets["client_secret"]))
        except httpx.HTTPError as exc:
            raise ConnectionSettingError(f"connection {self.name!r}: token endpoint {url} "
                                         f"failed: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            excerpt = redactor().text(" ".join(response.text[:200].split()))
            raise ConnectionSettingError(f"connection {self.name!r}: token endpoint {url} "
                                         f"answered {response.status_code}: {excerpt}")
        try:
            body = response.json()
            token = str(body["access_token"])
        except (ValueError, KeyError, TypeError):
            raise ConnectionSettingError(f"connection {self.name!r}: token endpoint {url} sent "
                                         "no access_token") from None
        lifetime = float(body.get("expires_in") or 3600)
        return guard(token), time.time() + lifetime
