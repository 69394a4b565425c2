"""The Redactor: secret patterns, secret-named keys, values marked secret, custom patterns and
secrets taken from the environment, masked recursively before anything is stored."""

from __future__ import annotations

import re

import pytest

from fm_lab.tracing import redact
from fm_lab.tracing.redact import MASK, Redactor, Secret

OPENAI_KEY = "sk-proj-Abc123def456GHI789jkl0"
BEARER = "Bearer abcdefgh12345678"


@pytest.fixture(autouse=True)
def fresh_global_redactor(monkeypatch):
    """secret() and redact_pattern() change the process-wide redactor: give each test its own."""
    monkeypatch.setattr(redact, "_REDACTOR", None)


@pytest.mark.parametrize(
    "value",
    [
        OPENAI_KEY,
        "sk-ant-api03-ABCDEFGHIJKLMNOP_qrstuv",
        BEARER,
        "bearer abc.def-ghi_jkl",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_0123456789abcdefghijABCDEFGHIJ",
        "xoxb-1234567890-abcdefghij",
        "AIza" + "B" * 35,
    ],
)
def test_default_patterns_are_masked_inside_text(value):
    masked = Redactor()(f"before {value} after")
    assert value not in masked
    assert masked == f"before {MASK} after"


def test_short_or_plain_words_are_left_alone():
    r = Redactor()
    for text in ("sk-short", "the bearer of news", "AKIA-not-a-key", "hello world"):
        assert r(text) == text


@pytest.mark.parametrize(
    "key",
    ["Authorization", "authorization", "Proxy-Authorization", "Cookie", "COOKIE", "Set-Cookie",
     "X-Api-Key", "api_key", "password", "client_secret", "access_token", "refresh_token"],
)
def test_values_of_secret_named_keys_are_masked_whatever_they_look_like(key):
    out = Redactor()({"headers": {key: "plain-looking-value", "Accept": "text/plain"}})
    assert out == {"headers": {key: MASK, "Accept": "text/plain"}}


def test_empty_values_of_secret_named_keys_stay_empty():
    r = Redactor()
    assert r({"password": "", "api_key": None}) == {"password": "", "api_key": None}


def test_redaction_is_recursive_through_dicts_lists_and_tuples():
    value = {
        "calls": [{"request": {"headers": {"Authorization": BEARER}}},
                  ("text", f"key={OPENAI_KEY}")],
        "n": 3,
        "ok": True,
    }
    out = Redactor()(value)
    assert out == {
        "calls": [{"request": {"headers": {"Authorization": MASK}}}, ["text", f"key={MASK}"]],
        "n": 3,
        "ok": True,
    }
    assert value["calls"][0]["request"]["headers"]["Authorization"] == BEARER  # not mutated


def test_unchanged_values_are_returned_as_is():
    value = {"a": [1, "two", {"b": (3.0, None)}], "c": "plain"}
    assert Redactor()(value) is value


def test_a_value_marked_secret_is_masked_as_a_value_and_inside_text():
    key = redact.secret("my-very-private-key")
    assert isinstance(key, Secret) and key == "my-very-private-key"
    assert "my-very-private-key" not in repr(key)
    r = redact.redactor()
    assert r(key) == MASK
    assert r({"note": f"key is {key}", "list": [str(key)]}) == {
        "note": f"key is {MASK}", "list": [MASK]}


def test_a_secret_instance_is_masked_even_by_a_redactor_that_never_saw_it():
    assert Redactor()(Secret("never-registered-anywhere")) == MASK


def test_too_short_secrets_are_refused():
    with pytest.raises(ValueError, match="shorter than 4"):
        redact.secret("abc")


def test_custom_patterns_are_masked_from_then_on():
    r = redact.redactor()
    assert r("order ACME-123456") == "order ACME-123456"
    redact.redact_pattern(r"ACME-\d{6}")
    assert r("order ACME-123456 and ACME-654321") == f"order {MASK} and {MASK}"


def test_an_invalid_custom_pattern_is_refused_at_once():
    with pytest.raises(re.error):
        redact.redact_pattern("(unclosed")
    assert redact.redactor()("still works") == "still works"


def test_secret_environment_variables_are_masked(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_API_KEY", "svc-9f8e7d6c5b4a3210")
    monkeypatch.setenv("DB_PASSWORD", "correct-horse-battery")
    monkeypatch.setenv("GITHUB_TOKEN", "tok")  # too short to mask safely
    monkeypatch.setenv("MY_SERVICE_URL", "https://svc.example.com/v1")  # not a secret name
    r = Redactor()
    out = r("key svc-9f8e7d6c5b4a3210 pw correct-horse-battery tok at https://svc.example.com/v1")
    assert out == f"key {MASK} pw {MASK} tok at https://svc.example.com/v1"


def test_environment_variables_set_after_the_redactor_was_built_are_not_seen(monkeypatch):
    r = Redactor()
    monkeypatch.setenv("LATE_SERVICE_API_KEY", "late-value-1234567")
    assert r("late-value-1234567") == "late-value-1234567"
    assert Redactor()("late-value-1234567") == MASK


def test_longest_literal_secret_wins_when_one_contains_another():
    r = Redactor()
    r.add_secret("abcd1234")
    r.add_secret("abcd1234-extended")
    assert r("x abcd1234-extended y") == f"x {MASK} y"
