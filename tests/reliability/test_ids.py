"""Run ids: one safe character set, and every file named after a run stays in its folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fm_lab
from fm_lab.engine.api import new_run_id
from fm_lab.engine.bodies import child_run_id
from fm_lab.store.ids import InvalidIdError, RunIdInUseError, id_path, validate_run_id

FLOW = {"id": "ids", "nodes": {"a": {"type": "template", "config": {"template": "hi"}}}}


@pytest.mark.parametrize("run_id", ["r1", "nightly.2026-11-24", "A_b-c.9", "0" * 200,
                                    "0193a1b2c3d4e5f6.9a8b7c6d5e.0011223344"])
def test_safe_ids_pass(run_id):
    assert validate_run_id(run_id) == run_id


@pytest.mark.parametrize("run_id", ["", "../../x", "..", "a..b", ".hidden", "-flag", "a/b",
                                    "a\\b", "a b", "a\x00b", "é", "0" * 201, None, 3])
def test_unsafe_ids_are_refused(run_id):
    with pytest.raises(InvalidIdError, match="is not allowed"):
        validate_run_id(run_id)


def test_child_run_ids_are_safe():
    parent = new_run_id()
    child = child_run_id(parent, "loop[3]/sub")
    assert validate_run_id(child_run_id(child, "x/y")).startswith(parent + ".")


@settings(max_examples=300, deadline=None, database=None)
@given(name=st.text(max_size=40), suffix=st.sampled_from(["", ".journal", ".cancel"]))
def test_a_path_from_an_id_never_leaves_its_folder(tmp_path_factory, name, suffix):
    folder = Path("/srv/store.duckdb.journal")
    try:
        path = id_path(folder, name, suffix)
    except InvalidIdError:
        return
    assert path.parent == folder
    assert Path(*path.parts).resolve().parent == folder.resolve()


def test_the_store_refuses_journals_outside_its_folder(tmp_path):
    store = fm_lab.Store(tmp_path / "s.duckdb")
    for bad in ("../../x", "../x", "/tmp/x", ""):
        with pytest.raises(InvalidIdError):
            store.open_journal(bad)
        with pytest.raises(InvalidIdError):
            store.cancel_path(bad)
    journal = store.open_journal("fine.1")
    assert journal is not None
    assert journal.path.parent == store.journal_dir
    journal.close(remove=True)


def test_run_with_a_bad_id_stores_nothing(tmp_path):
    store = fm_lab.Store(tmp_path / "deep" / "s.duckdb")
    for bad in ("", "../../x", "a/b"):
        with pytest.raises(InvalidIdError):
            fm_lab.run(FLOW, run_id=bad, store=store)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["deep", "s.duckdb.journal"]


def test_entry_points_check_the_id(tmp_path):
    store = fm_lab.Store(tmp_path / "s.duckdb")
    for call in (lambda: fm_lab.get_run("../x", store=store),
                 lambda: fm_lab.resume("../x", store=store),
                 lambda: fm_lab.cancel("../x", store=store)):
        with pytest.raises(InvalidIdError):
            call()


def test_a_run_id_in_use_is_a_clear_error(tmp_path):
    store = fm_lab.Store(tmp_path / "s.duckdb")
    fm_lab.run(FLOW, run_id="taken", store=store)
    with pytest.raises(RunIdInUseError, match="already names a succeeded run"):
        fm_lab.run(FLOW, run_id="taken", store=store)
