"""Settings for every test: no network for litellm's price table, the default store in a
temporary folder; a fixture that scans files for leaked secrets."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(autouse=True)
def _default_store_in_tmp(tmp_path_factory, monkeypatch):
    """Standalone agent and LLM calls record their traces in the default store: keep it out
    of the working directory (a test that connects one still gets that one)."""
    home = tmp_path_factory.getbasetemp() / "fm_lab_home"
    monkeypatch.setenv("FM_LAB_HOME", str(home))


@pytest.fixture
def files_containing():
    """``scan(paths, *needles)``: the files under ``paths`` (files or folders) whose raw bytes
    contain one of the needles (a leak check that reads what is on disk, not a query)."""
    def scan(paths, *needles):
        found = []
        for root in map(Path, paths):
            files = [root] if root.is_file() else sorted(p for p in root.rglob("*")
                                                         if p.is_file())
            for path in files:
                data = path.read_bytes()
                if any(n.encode() in data for n in needles):
                    found.append(str(path))
        return found
    return scan
