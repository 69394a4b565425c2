"""The ``http`` node: one HTTP request with retries, size limits and parsed responses.

A workflow step that calls a JSON API::

    nodes:
      lookup:
        type: http
        config:
          method: POST
          url: "https://api.example.com/v1/search"
          headers:
            Authorization: "Bearer {{ inputs.token }}"
          query: {limit: 10}
          json: {q: "{{ inputs.question }}"}
          timeout_s: 10
          max_retries: 3

Its output is ``{"status", "headers", "body", "url", "elapsed_ms", "attempts"}``; later nodes
read e.g. ``{{ nodes.lookup.output.body.results }}``.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import time
from typing import TYPE_CHECKING, Any, Literal, NoReturn
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from fm_lab.exceptions import NodeError
from fm_lab.nodes.base import NodeContext, NodeType
from fm_lab.security.policy import current_policy
from fm_lab.tracing.redact import redactor

if TYPE_CHECKING:  # httpx (with its dependencies, ~17 MB) loads when an http node runs
    import httpx

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
MAX_BACKOFF_S = 30.0
_EXCERPT_BYTES = 300


class HttpConfig(BaseModel):
    # no docstring: the node's description is the schema's (see NodeType.json_schema)
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    method: Method = Field("GET", description="HTTP method.")
    url: str = Field(description="Absolute http:// or https:// URL.")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers.")
    query: dict[str, Any] = Field(
        default_factory=dict,
        description="Query parameters, added to those in the URL (replacing same-named ones); "
        "a list value repeats the parameter.",
    )
    json_body: Any | None = Field(
        None, alias="json", description="JSON request body (exclusive with 'form')."
    )
    form: dict[str, str] | None = Field(
        None, description="Form-encoded request body (exclusive with 'json')."
    )
    timeout_s: float = Field(
        30.0, gt=0, description="Seconds allowed per attempt, reading the whole response included."
    )
    max_retries: int = Field(
        2, ge=0, le=20, description="Retries on 5xx, 429, transport errors and timeouts."
    )
    backoff_s: float = Field(
        0.5, ge=0, description="Wait before the first retry; doubles per retry (at most 30 s)."
    )
    respect_retry_after: bool = Field(
        True, description="Wait as long as a 429/503 response's Retry-After header asks."
    )
    max_retry_after_s: float = Field(
        60.0, ge=0, description="Longest Retry-After wait honoured (longer ones are capped)."
    )
    parse: Literal["auto", "json", "text", "bytes"] = Field(
        "auto", description="Response body: 'auto' is JSON for JSON content types, else text."
    )
    max_bytes: int = Field(
        10_000_000, gt=0, description="Largest response body accepted (after decompression)."
    )
    connection: str | None = Field(
        None, description="A named connection (fm_lab.connections) whose credentials the "
        "request carries; they never enter the run's records."
    )
    raise_for_status: bool = Field(
        True,
        description="Fail on a 4xx/5xx status; when false such responses are the output "
        "(5xx and 429 are still retried first).",
    )

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http:// or https:// URL")
        return value

    @field_validator("query")
    @classmethod
    def _check_query(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, item in value.items():
            items = item if isinstance(item, list | tuple) else [item]
            if any(not isinstance(i, str | int | float | bool | None) for i in items):
                raise ValueError(f"query parameter {key!r} must be a scalar or a list of scalars")
        return value

    @field_validator("form")
    @classmethod
    def _exclusive_bodies(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and info.data.get("json_body") is not None:
            raise ValueError("'json' and 'form' are mutually exclusive: give one request body")
        return value


_REFRESHED = object()


class _TooLargeError(Exception):
    pass


class HttpNode(NodeType):
    """Sends one HTTP request (``httpx``) and outputs the status, headers and parsed body.

    Under the restricted execution policy it connects only to public addresses and those
    ``FM_LAB_HTTP_ALLOW`` names (see :mod:`fm_lab.security.egress`).

    Retries 5xx, 429, transport errors and timeouts itself (``max_retries``, exponential
    ``backoff_s``, ``Retry-After`` honoured); other 4xx fail at once as ``user`` errors.

    Example (YAML)::

        fetch:
          type: http
          config:
            url: "https://api.example.com/items/{{ inputs.id }}"
            headers: {Accept: application/json}
            max_retries: 3

    Output: ``{"status": 200, "headers": {...}, "body": ..., "url": "...", "elapsed_ms": 12.3,
    "attempts": 1}`` — header names lower-case, ``url`` after redirects, ``elapsed_ms`` the
    wall time of the whole call (retries and waits included).
    """
    cacheable = False

    type_name = "http"
    description = "Calls an HTTP endpoint; outputs status, headers and the parsed body."
    Config = HttpConfig

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        import httpx

        from fm_lab.security.egress import client_options

        config = self.config
        assert isinstance(config, HttpConfig)
        refreshed = False  # an OAuth2 connection's token is fetched again after a 401, once
        started = time.monotonic()
        attempts = 0
        timeout = httpx.Timeout(config.timeout_s)
        # under the restricted policy every connection (each redirect hop too) is checked
        async with httpx.AsyncClient(follow_redirects=True, timeout=timeout,
                                     **client_options(current_policy())) as client:
            while True:
                attempts += 1
                last = attempts > config.max_retries
                try:
                    async with asyncio.timeout(config.timeout_s):
                        outcome = await self._attempt(client, config, attempts, last,
                                                      not refreshed)
                except (httpx.TimeoutException, TimeoutError) as exc:
                    if last:
                        raise NodeError(
                            f"{config.method} {config.url} timed out after {config.timeout_s:g} s "
                            f"({attempts} attempt{_s(attempts)}): {type(exc).__name__}",
                            kind="timeout",
                            retryable=True,
                        ) from exc
                    await _wait(ctx, _backoff(config, attempts))
                    continue
                except httpx.TransportError as exc:
                    if last:
                        raise NodeError(
                            f"{config.method} {config.url} failed ({attempts} "
                            f"attempt{_s(attempts)}): {type(exc).__name__}: {exc}",
                            kind="provider",
                            retryable=True,
                        ) from exc
                    await _wait(ctx, _backoff(config, attempts))
                    continue
                except httpx.HTTPError as exc:  # too many redirects, undecodable content, ...
                    raise NodeError(
                        f"{config.method} {config.url} failed: {type(exc).__name__}: {exc}",
                        kind="provider",
                        retryable=False,
                    ) from exc
                if outcome is _REFRESHED:
                    refreshed = True
                    continue
                if isinstance(outcome, float):  # a retryable status: wait, then try again
                    await _wait(ctx, outcome)
                    continue
                assert isinstance(outcome, dict)
                outcome["elapsed_ms"] = round((time.monotonic() - started) * 1000, 3)
                outcome["attempts"] = attempts
                # a server may echo credentials back: mask them before the run records them
                return redactor()(outcome) if config.connection is not None else outcome

    async def _attempt(
        self, client: httpx.AsyncClient, config: HttpConfig, attempt: int, last: bool,
        may_refresh: bool = False,
    ) -> dict[str, Any] | float | object:
        """One request: the output dict, the seconds to wait before retrying, or _REFRESHED
        (a 401 with an OAuth2 connection whose token was dropped: try again at once)."""
        import httpx

        # httpx's params= would replace the URL's own query string: merge it ourselves
        url = httpx.URL(config.url)
        if config.query:
            url = url.copy_merge_params(config.query)
        kwargs: dict[str, Any] = {"headers": config.headers}
        if config.connection is not None:
            kwargs["headers"] = {**config.headers, **await _credentials(config.connection)}
        if config.json_body is not None:
            kwargs["json"] = config.json_body
        elif config.form is not None:
            kwargs["data"] = config.form
        async with client.stream(config.method, url, **kwargs) as response:
            status = response.status_code
            if status == 401 and may_refresh and config.connection is not None \
                    and _forget_token(config.connection):
                return _REFRESHED
            transient = status >= 500 or status == 429
            if transient and not last:
                return _retry_delay(config, response, attempt)
            if status >= 400 and config.raise_for_status:
                excerpt = await _excerpt(response)
                where = f"{config.method} {response.url}"
                if transient:
                    raise NodeError(
                        f"HTTP {status} from {where} after {config.max_retries + 1} "
                        f"attempt{_s(config.max_retries + 1)}: {excerpt}",
                        kind="provider",
                        retryable=True,
                    )
                raise NodeError(
                    f"HTTP {status} from {where}: {excerpt}", kind="user", retryable=False
                )
            try:
                content = await _read(response, config.max_bytes)
            except _TooLargeError as exc:
                raise NodeError(
                    f"response of {config.method} {response.url} is larger than max_bytes="
                    f"{config.max_bytes} ({exc}); raise max_bytes to accept it",
                    kind="user",
                    retryable=False,
                ) from None
            return {
                "status": status,
                "headers": dict(response.headers.items()),  # keys come lower-cased
                "body": _parse(config, response, content),
                "url": str(response.url),
            }


async def _credentials(name: str) -> dict[str, str]:
    """The headers of connection ``name`` (a bad or unknown one fails the node, no retry)."""
    from fm_lab.connections import ConnectionSettingError, get

    try:
        return await get(name).aheaders()
    except ConnectionSettingError as exc:
        raise NodeError(str(exc), kind="user", retryable=False) from None


def _forget_token(name: str) -> bool:
    """Drop connection ``name``'s cached OAuth2 token; whether it has one to refresh."""
    from fm_lab.connections import get

    found = get(name)
    if found.kind != "oauth2_client_credentials":
        return False
    found.invalidate()
    return True


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _retry_delay(config: HttpConfig, response: httpx.Response, attempt: int) -> float:
    """Seconds to wait after a 5xx/429 response: its Retry-After (capped), else backoff."""
    if config.respect_retry_after and response.status_code in (429, 503):
        after = _retry_after(response.headers.get("retry-after"))
        if after is not None:
            return min(after, config.max_retry_after_s)
    return _backoff(config, attempt)


def _backoff(config: HttpConfig, attempt: int) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): exponential, capped."""
    return float(min(MAX_BACKOFF_S, config.backoff_s * 2 ** (attempt - 1)))


def _retry_after(value: str | None) -> float | None:
    """A Retry-After header in seconds (delta-seconds or an HTTP-date), or None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - time.time()
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


async def _wait(ctx: NodeContext, seconds: float) -> None:
    """Sleep ``seconds`` unless the run is aborted meanwhile (then fail without retrying)."""
    abort = ctx.abort
    if not abort.is_set() and seconds > 0:
        try:
            await asyncio.wait_for(abort.wait(), timeout=seconds)
        except TimeoutError:
            return
    if abort.is_set():
        raise NodeError("http request aborted: the run is stopping", kind="system", retryable=False)


async def _read(response: httpx.Response, limit: int) -> bytes:
    """The (decoded) body, streamed; raises _TooLargeError once it exceeds ``limit`` bytes."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    declared = response.headers.get("content-length")
    if encoding == "identity" and declared and declared.isdigit() and int(declared) > limit:
        raise _TooLargeError(f"Content-Length is {int(declared)}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise _TooLargeError(f"stopped after reading {size} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _excerpt(response: httpx.Response) -> str:
    """The start of an error response's body, for messages."""
    import httpx

    data = b""
    try:
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) > _EXCERPT_BYTES:
                break
    except httpx.HTTPError:
        pass
    text = data[:_EXCERPT_BYTES].decode(response.encoding or "utf-8", errors="replace")
    text = " ".join(text.split())
    if len(data) > _EXCERPT_BYTES:
        text += " …"
    return text or "(empty body)"


def _is_json(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime in ("application/json", "text/json") or mime.endswith("+json")


def _parse(config: HttpConfig, response: httpx.Response, content: bytes) -> Any:
    mode = config.parse
    if mode == "bytes":
        return content
    if mode == "auto":
        mode = "json" if _is_json(response.headers.get("content-type", "")) else "text"
    if mode == "text":
        return content.decode(response.encoding or "utf-8", errors="replace")
    if not content.strip():
        return None  # HEAD, 204 and other empty bodies
    try:
        return json.loads(content)
    except ValueError as exc:
        _not_json(config, response, content, exc)


def _not_json(
    config: HttpConfig, response: httpx.Response, content: bytes, exc: ValueError
) -> NoReturn:
    excerpt = " ".join(content[:_EXCERPT_BYTES].decode("utf-8", errors="replace").split())
    raise NodeError(
        f"response of {config.method} {response.url} is not JSON ({exc}): {excerpt}",
        kind="validation",
        retryable=False,
    ) from None
