"""Store settings: an operator allow-lists modules and hosts, or sets the default policy, once
for everyone on a store; each change is checked whole, logged, and seen by the next run."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import fm_lab
from fm_lab import cli
from fm_lab.security.policy import Policy, capped, resolve_policy
from fm_lab.store.settings import SettingError


def code(function: str) -> dict[str, Any]:
    return {"type": "code", "config": {"function": function}}


@pytest.fixture(autouse=True)
def admin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings of a shared store are changed by an admin (one test says otherwise)."""
    monkeypatch.setenv("FM_LAB_ROLES", "admin")


def setting_rows(store: Any) -> list[tuple[str, Any, Any]]:
    frame = fm_lab.audit(action="store.setting", store=store)
    return [(row.path, row.before, row.after) for row in frame.itertuples()]


def test_an_allow_listed_module_in_the_store_settings_runs_restricted(each_store, canary):
    flow = {"id": "allowed", "nodes": {"fine": code(canary.touch)}}
    with pytest.raises(fm_lab.WorkflowValidationError, match=r"the store's policy\.allow"):
        fm_lab.run(flow, store=each_store, policy="restricted")
    assert canary.untouched()

    before = fm_lab.set_store_setting("policy.allow", f"{canary.module}, other.*",
                                      store=each_store)
    assert before is None
    assert fm_lab.store_settings(each_store) == {"policy.allow": [canary.module, "other.*"]}
    run = fm_lab.run(flow, store=each_store, policy="restricted")
    assert run.status == "succeeded" and run.outputs == {"fine": "touched"}

    fm_lab.set_store_setting("policy.allow", None, store=each_store)
    with pytest.raises(fm_lab.WorkflowValidationError):
        fm_lab.run(flow, store=each_store, policy="restricted")
    assert setting_rows(each_store) == [
        ("policy.allow", None, [canary.module, "other.*"]),
        ("policy.allow", [canary.module, "other.*"], None),
    ]
    fm_lab.audit(verify=True, store=each_store)  # the chain holds


@pytest.mark.parametrize(("key", "value", "message"), [
    ("policy.allwo", ["x"], "no store setting 'policy.allwo'; known: policy.allow, "
                            "policy.http_allow, policy.default"),
    ("policy.allow", ["ok.*", "os; rm -rf /"], "policy.allow entries are module patterns"),
    ("policy.allow", {"a": 1}, "policy.allow takes a list of strings"),
    ("policy.http_allow", ["10.0.0.0/33"], "is not a network"),
    ("policy.default", "paranoid", "policy.default is trusted or restricted, not 'paranoid'"),
])
def test_a_bad_setting_is_refused_whole_and_changes_nothing(each_store, key, value, message):
    fm_lab.set_store_setting("policy.allow", ["keep.*"], store=each_store)
    with pytest.raises(SettingError, match=re.escape(message)):
        fm_lab.set_store_setting(key, value, store=each_store)
    assert fm_lab.store_settings(each_store) == {"policy.allow": ["keep.*"]}
    assert len(setting_rows(each_store)) == 1


def test_the_default_policy_and_http_allow_come_from_the_store(each_store):
    fm_lab.set_store_setting("policy.default", "restricted", store=each_store)
    fm_lab.set_store_setting("policy.http_allow", ["10.1.0.0/16", "intranet.example"],
                             store=each_store)
    chosen = resolve_policy(store=each_store)
    assert chosen.mode == "restricted" and chosen.source == "store default"
    assert chosen.http_allow == ("10.1.0.0/16", "intranet.example")
    run = fm_lab.run({"id": "d", "nodes": {"cwd": code("os:getcwd")}}, store=each_store,
                     policy="trusted")  # an explicit choice still wins
    assert run.status == "succeeded" and run.policy == "trusted"
    with pytest.raises(fm_lab.WorkflowValidationError, match="'os:getcwd' is not allowed"):
        fm_lab.run({"id": "d", "nodes": {"cwd": code("os:getcwd")}}, store=each_store)


def test_the_environment_and_store_allow_lists_add_up(each_store, monkeypatch):
    monkeypatch.setenv("FM_LAB_ALLOW", "from_env.*")
    fm_lab.set_store_setting("policy.allow", ["from_store.*", "from_env.*"], store=each_store)
    assert resolve_policy("restricted", store=each_store).allow == ("from_env.*",
                                                                   "from_store.*")


def test_a_shared_store_needs_the_admin_role(pg_url, monkeypatch):
    store = fm_lab.connect(pg_url)
    try:
        monkeypatch.setenv("FM_LAB_USER", "mallory")
        monkeypatch.setenv("FM_LAB_ROLES", "reviewer")
        with pytest.raises(SettingError, match=r"mallory may not change .* needs the 'admin' "
                                               r"role .* nothing was changed"):
            fm_lab.set_store_setting("policy.allow", ["evil.*"], store=store)
        assert fm_lab.store_settings(store) == {} and setting_rows(store) == []
        monkeypatch.setenv("FM_LAB_USER", "olga")
        monkeypatch.setenv("FM_LAB_ROLES", "admin")
        fm_lab.set_store_setting("policy.allow", ["team_tools.*"], store=store)
        other = fm_lab.connect(pg_url)  # another kernel sees it on its next fresh read
        try:
            assert fm_lab.store_settings(other) == {"policy.allow": ["team_tools.*"]}
            assert fm_lab.audit(action="store.setting", store=other)["actor"].tolist() == [
                "olga"]
        finally:
            other.close()
    finally:
        store.close()


def test_a_hand_edited_bad_value_is_ignored_not_trusted(pg_url):
    import psycopg

    store = fm_lab.connect(pg_url)
    try:
        fm_lab.store_settings(store)  # makes the tables
        with store.connection() as con:
            con.execute("insert into store_settings values ('policy.allow', ?, 'x', now())",
                        [json.dumps(["ok.*", "bad pattern!"])])
            con.execute("insert into store_settings values ('policy.default', ?, 'x', now())",
                        ["not json"])
        assert fm_lab.store_settings(store) == {}
    finally:
        store.close()
    del psycopg


def test_cli_sets_shows_and_refuses_settings(tmp_path, capsys):
    path = str(tmp_path / "s.duckdb")
    assert cli.main(["store", "settings", path, "--set", "policy.allow", "a.*, b",
                     "--set", "policy.default", "restricted", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"policy.allow": ["a.*", "b"],
                                                   "policy.default": "restricted"}
    assert cli.main(["store", "settings", path, "--unset", "policy.default",
                     "--set", "policy.default", "sometimes"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == ("fm-lab: error: policy.default is trusted or restricted, "
                           "not 'sometimes'")
    assert cli.main(["store", "settings", path]) == 0  # nothing of the refused call applied
    assert capsys.readouterr().out.splitlines() == ["policy.allow = a.*, b",
                                                    "policy.default = restricted"]


def test_a_worker_caps_what_the_submitter_asks(monkeypatch):
    trusted = Policy("trusted", ("mine.*",), (), "argument")
    monkeypatch.delenv("FM_LAB_POLICY", raising=False)
    assert capped(trusted) == trusted
    assert capped(None).mode == "restricted"
    monkeypatch.setenv("FM_LAB_POLICY", "restricted")
    assert capped(trusted) == Policy("restricted", ("mine.*",), ())
    assert capped(trusted).source == "worker FM_LAB_POLICY"


def test_a_busy_duckdb_file_still_gives_runs_its_settings(tmp_path):
    """Runs read a file store's settings from its copy beside the journals, so a run that
    cannot open the file (another holder) still gets the operator's default, and a copy lost
    or damaged is rewritten from the table by the next writable open."""
    from fm_lab.store import Store

    path = tmp_path / "s.duckdb"
    fm_lab.set_store_setting("policy.default", "restricted", store=Store(path))
    with Store(path, read_only=True).hold():  # the file is busy
        busy = Store(path, lock_timeout_s=0.05)
        assert resolve_policy(store=busy).mode == "restricted"
        run = fm_lab.run({"id": "b", "nodes": {"t": {"type": "template", "config": {
            "template": "ok"}}}}, store=busy)
        assert run.policy == "restricted"
    mirror = Store(path).settings_path
    mirror.write_text("{damaged")
    # what the damaged copy said is unknown: nothing it might have allowed is assumed
    assert Store(path, lock_timeout_s=0.05).settings() == {"policy.default": "restricted"}
    fm_lab.set_store_setting("policy.default", None, store=Store(path))
    mirror.write_text("[1, 2]")
    assert Store(path, lock_timeout_s=0.05).settings() == {"policy.default": "restricted"}
    reopened = Store(path)
    reopened.runs()  # a writable open mends the copy
    assert reopened.settings(fresh=True) == {}


def test_a_crash_between_the_table_and_its_copy_never_keeps_a_revoked_allowance(
        tmp_path, monkeypatch):
    """Revoking an allow-listed module on a DuckDB file: the process dies after the table's
    commit, before its copy is rewritten. Runs read the copy, which meanwhile allows only what
    the old and the new settings both allow; the next writable open makes it the table's."""
    from fm_lab.store import Store
    from fm_lab.store.duckdb_store import Store as DuckDBStore

    path = tmp_path / "s.duckdb"
    fm_lab.set_store_setting("policy.allow", ["team_tools.*", "evil.*"], store=Store(path))
    fm_lab.set_store_setting("policy.default", "trusted", store=Store(path))

    def crash(self: Any, con: Any) -> None:
        raise SystemExit("killed between the commit and the copy")

    admin_store = Store(path)
    admin_store.runs()  # opened (and its copy written) before the crash is armed
    monkeypatch.setattr(DuckDBStore, "_mirror_settings", crash)
    with pytest.raises(SystemExit):
        fm_lab.set_store_setting("policy.allow", ["team_tools.*"], store=admin_store)
    with pytest.raises(SystemExit):
        fm_lab.set_store_setting("policy.default", "restricted", store=admin_store)
    monkeypatch.undo()
    admin_store.close()
    table = Store(path, read_only=True).sql("select key, value from store_settings")
    assert dict(zip(table["key"], map(json.loads, table["value"]), strict=True)) == {
        "policy.allow": ["team_tools.*"], "policy.default": "restricted"}
    # the copy runs read: nothing the revocation removed, and restricted while they differed
    assert Store(path, lock_timeout_s=0.05).settings() == {
        "policy.allow": ["team_tools.*"], "policy.default": "restricted"}
    policy = resolve_policy(store=Store(path, lock_timeout_s=0.05))
    assert policy.mode == "restricted" and not policy.allows_module("evil.tools")
    reopened = Store(path)
    reopened.runs()  # a writable open: the copy is the table's again
    assert reopened.settings(fresh=True) == {"policy.allow": ["team_tools.*"],
                                             "policy.default": "restricted"}


def test_a_hand_edited_duckdb_settings_table_is_checked_like_any_change(tmp_path):
    """Someone edits the DuckDB table with SQL: values that fail the checks are ignored (in
    the copy runs read too), good ones count."""
    import duckdb

    from fm_lab.store import Store

    path = tmp_path / "s.duckdb"
    fm_lab.set_store_setting("policy.default", "restricted", store=Store(path))
    Store(path).close()
    con = duckdb.connect(str(path))
    con.execute("insert into store_settings values ('policy.allow', ?, 'x', now())",
                [json.dumps(["ok.*", "bad pattern!"])])
    con.execute("update store_settings set value = '\"sideways\"' "
                "where key = 'policy.default'")
    con.execute("insert into store_settings values ('policy.http_allow', ?, 'x', now())",
                [json.dumps(["10.0.0.0/8"])])
    con.close()
    reopened = Store(path)
    reopened.runs()  # the writable open rewrites the copy from the table, checked
    expected = {"policy.http_allow": ["10.0.0.0/8"]}
    assert reopened.settings(fresh=True) == expected
    assert Store(path, lock_timeout_s=0.05).settings() == expected
