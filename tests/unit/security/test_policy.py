"""Choosing the execution policy: argument, enclosing run, environment, stored run, identity
hook, store default."""

from __future__ import annotations

import pytest

from fm_lab.security.policy import (
    Policy,
    PolicySettingError,
    current_policy,
    resolve_policy,
    store_default,
    using_policy,
)


class TeamStore:
    supports = frozenset({"runs", "team"})


class DeclaringStore:
    supports = frozenset({"runs"})
    default_policy = "restricted"


class PersonalStore:
    supports = frozenset({"runs", "sql", "journal"})


def test_the_store_decides_the_default():
    assert store_default(PersonalStore()) == "trusted"
    assert store_default(TeamStore()) == "restricted"
    assert store_default(DeclaringStore()) == "restricted"
    assert store_default(None) == "trusted"
    assert resolve_policy(store=TeamStore()).describe() == "restricted (store default)"


def test_an_argument_wins_and_takes_the_allow_lists_of_the_environment(monkeypatch):
    monkeypatch.setenv("FM_LAB_POLICY", "restricted")
    monkeypatch.setenv("FM_LAB_ALLOW", "mypkg.*, other.mod ,")
    monkeypatch.setenv("FM_LAB_HTTP_ALLOW", "10.0.0.0/8,intranet")
    chosen = resolve_policy("trusted", store=TeamStore())
    assert chosen.mode == "trusted" and chosen.source == "argument"
    assert chosen.allow == ("mypkg.*", "other.mod")
    assert chosen.http_allow == ("10.0.0.0/8", "intranet")
    given = Policy("restricted")
    assert resolve_policy(given) is given


def test_fm_lab_policy_is_read(monkeypatch):
    monkeypatch.setenv("FM_LAB_POLICY", "Restricted")
    assert resolve_policy(store=PersonalStore()).describe() == "restricted (FM_LAB_POLICY)"
    assert current_policy().mode == "restricted"
    monkeypatch.setenv("FM_LAB_POLICY", "trusted")
    assert resolve_policy(store=TeamStore()).mode == "trusted"
    assert resolve_policy(stored="restricted").mode == "trusted"  # the operator said so


def test_a_bad_setting_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("FM_LAB_POLICY", "lax")
    with pytest.raises(PolicySettingError, match="FM_LAB_POLICY='lax' is not a policy: use "
                       "trusted or restricted"):
        resolve_policy()
    with pytest.raises(PolicySettingError, match="policy='open' is not a policy"):
        resolve_policy("open")


def test_a_run_inside_a_run_keeps_its_policy():
    outer = Policy("restricted", source="argument")
    assert current_policy().mode == "trusted"
    with using_policy(outer):
        assert current_policy() is outer
        assert resolve_policy(store=PersonalStore()) is outer
        assert resolve_policy("trusted").mode == "trusted"  # said explicitly by trusted code
    assert current_policy().mode == "trusted"


def test_a_stored_restricted_run_and_another_identitys_workflow_are_restricted():
    assert resolve_policy(stored="restricted", store=PersonalStore()).mode == "restricted"
    assert resolve_policy(stored="trusted", store=PersonalStore()).mode == "trusted"
    assert resolve_policy(saved_by="bob", user="alice").describe() == "restricted (saved by bob)"
    assert resolve_policy(saved_by="bob", user=None).mode == "restricted"
    assert resolve_policy(saved_by="alice", user="alice").mode == "trusted"
    with using_policy(Policy("trusted")):  # inside a trusted run: still restricted
        assert resolve_policy(saved_by="bob", user="alice").mode == "restricted"


def test_module_patterns_are_globs():
    chosen = Policy("restricted", allow=("mypkg.*", "tools"))
    assert chosen.allows_module("mypkg.sub.mod") and chosen.allows_module("tools")
    assert not chosen.allows_module("mypkg") and not chosen.allows_module("toolsx")
    assert not chosen.allows_module("os")
