"""Classifying node errors: kind, domain, retryable."""

from __future__ import annotations

import asyncio

import httpx
import jinja2
import pytest
from pydantic import BaseModel, ValidationError

from fm_lab.engine.errors import NodeError, RunFailedError, StateValidationError, classify
from fm_lab.spec import ValidationIssue, WorkflowValidationError


def http_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat")
    response = httpx.Response(status, request=request)
    return httpx.HTTPStatusError(f"status {status}", request=request, response=response)


def pydantic_error() -> ValidationError:
    class Model(BaseModel):
        x: int

    with pytest.raises(ValidationError) as info:
        Model.model_validate({"x": "not a number"})
    return info.value


def raised(exc: BaseException) -> BaseException:
    """``exc`` with a traceback, as the engine sees it."""
    try:
        raise exc
    except BaseException as caught:
        return caught


def kind_of(exc: BaseException, node_type: str = "code") -> tuple[str, bool]:
    info = classify(exc, node_type)
    return info["kind"], info["retryable"]


def test_timeouts_are_retryable():
    assert kind_of(TimeoutError()) == ("timeout", True)
    with pytest.raises(TimeoutError) as info:
        asyncio.run(asyncio.wait_for(asyncio.sleep(10), timeout=0.001))
    assert kind_of(info.value) == ("timeout", True)


def test_pydantic_validation_errors():
    assert kind_of(pydantic_error()) == ("validation", False)


def test_template_and_workflow_validation_errors():
    assert kind_of(jinja2.UndefinedError("'x' is undefined")) == ("validation", False)
    issue = ValidationIssue("inputs.a", "bad")
    assert kind_of(WorkflowValidationError([issue])) == ("validation", False)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_http_server_errors_and_rate_limits_are_retryable_provider_errors(status):
    assert kind_of(http_error(status)) == ("provider", True)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_http_client_errors_are_not_provider_errors(status):
    kind, retryable = kind_of(http_error(status))
    assert kind != "provider"
    assert retryable is False


def test_transport_errors_are_retryable_provider_errors():
    request = httpx.Request("GET", "http://127.0.0.1:9/")
    assert kind_of(httpx.ConnectError("refused", request=request)) == ("provider", True)


def test_node_error_default_is_a_user_error():
    info = classify(NodeError("bad argument"), "code")
    assert (info["kind"], info["retryable"], info["domain"]) == ("user", False, "code")


@pytest.mark.parametrize(
    ("kind", "retryable"),
    [("user", False), ("validation", False), ("provider", True), ("timeout", True),
     ("system", True)],
)
def test_node_error_kinds_set_the_default_retryable(kind, retryable):
    assert kind_of(NodeError("x", kind=kind)) == (kind, retryable)


def test_node_error_explicit_retryable_and_domain_win():
    info = classify(NodeError("quota", kind="provider", retryable=False, domain="llm"), "agent")
    assert (info["kind"], info["retryable"], info["domain"]) == ("provider", False, "llm")
    info = classify(NodeError("flaky", kind="user", retryable=True), "code")
    assert (info["kind"], info["retryable"], info["domain"]) == ("user", True, "code")


def test_state_validation_error():
    info = classify(StateValidationError("state.count: not an integer"), "set_state")
    assert (info["kind"], info["retryable"], info["domain"]) == ("validation", False, "state")
    assert info["type"] == "StateValidationError"


def test_plain_exceptions_are_user_errors():
    assert kind_of(ValueError("bad")) == ("user", False)
    assert kind_of(KeyError("k")) == ("user", False)
    assert kind_of(FileNotFoundError("gone.txt")) == ("user", False)


def test_os_errors_are_retryable_system_errors():
    assert kind_of(ConnectionResetError("reset")) == ("system", True)
    assert kind_of(OSError("disk")) == ("system", True)


def test_stored_description():
    info = classify(raised(ValueError("bad value")), "template")
    assert set(info) == {"kind", "domain", "retryable", "type", "message", "traceback"}
    assert info["domain"] == "template"
    assert info["type"] == "ValueError"
    assert info["message"] == "bad value"
    assert "raise exc" in info["traceback"]
    assert info["traceback"].rstrip().endswith("ValueError: bad value")


def test_message_falls_back_to_the_type_name():
    assert classify(TimeoutError(), "code")["message"] == "TimeoutError"


def test_node_error_is_an_exception_with_its_message():
    err = NodeError("quota exceeded", kind="provider", retryable=True, domain="llm")
    assert str(err) == "quota exceeded"
    assert (err.kind, err.retryable, err.domain) == ("provider", True, "llm")
    assert issubclass(StateValidationError, NodeError)
    assert issubclass(RunFailedError, RuntimeError)
