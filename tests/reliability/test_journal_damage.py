"""A damaged or missing journal is found and reported; resuming over it needs ``force``, and
what is intact is kept. A run killed with SIGKILL leaves the journal these tests damage."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

import fm_lab
from fm_lab.store.journal import Journal, JournalDamagedError, scan_journal

pytestmark = pytest.mark.slow

NODES = ["n1", "n2", "n3", "n4", "n5", "n6"]

FUNCTIONS = """
import time
from pathlib import Path


def effect(tag, log):
    with open(log, "a") as fh:
        fh.write(tag + "\\n")
    return tag


def hold(marker, release, log):
    Path(marker).touch()
    while not Path(release).exists():
        time.sleep(0.01)
    return effect("hold", log)
"""

# No periodic ingest happens before the kill (or, with "first", only the first one, which
# stores the run row at once), so the journal alone holds the committed nodes.
RUNNER = """
import sys

import fm_lab
import fm_lab.tracing.recorder as session

path, wf_path, run_id, ingest = sys.argv[1:]
session.INGEST_FIRST_S = 0.0 if ingest == "first" else 1e9
session.INGEST_EVERY_S = 1e9
fm_lab.run(fm_lab.Workflow.from_file(wf_path), store=fm_lab.Store(path), run_id=run_id)
"""


class Killed:
    """A chain n1..n6 -> hold, killed while ``hold`` waits."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.store_path = tmp_path / "fm_lab.duckdb"
        self.log = tmp_path / "effects.log"
        self.marker, self.release = tmp_path / "hold.reached", tmp_path / "hold.release"
        self.run_id = f"dmg-{uuid.uuid4().hex[:8]}"
        self.journal = Path(f"{self.store_path}.journal") / f"{self.run_id}.journal"

    def start_and_kill(self, ingest: str = "none") -> None:
        module = f"dmg_fns_{uuid.uuid4().hex[:8]}"
        (self.tmp_path / f"{module}.py").write_text(textwrap.dedent(FUNCTIONS))
        b = fm_lab.WorkflowBuilder("damaged_chain")
        previous = None
        for tag in NODES:
            node = b.node(tag, "code", function=f"{module}:effect",
                          args={"tag": tag, "log": str(self.log)})
            if previous is not None:
                previous >> node
            previous = node
        held = b.node("hold", "code", function=f"{module}:hold",
                      args={"marker": str(self.marker), "release": str(self.release),
                            "log": str(self.log)})
        previous >> held
        wf_path = self.tmp_path / "chain.flow.json"
        wf_path.write_text(b.build().to_json())
        script = self.tmp_path / "runner.py"
        script.write_text(RUNNER)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(self.tmp_path), os.environ.get("PYTHONPATH", "")) if p)}
        proc = subprocess.Popen([sys.executable, str(script), str(self.store_path),
                                 str(wf_path), self.run_id, ingest], cwd=self.tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            while not self.marker.exists() or (ingest == "first" and not self.stored()):
                assert proc.poll() is None, proc.communicate()[1].decode()
                time.sleep(0.01)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)
        assert self.effects() == NODES
        self.release.touch()  # a resumed hold finishes

    def stored(self) -> bool:
        """The run's row is in the store (its first ingest, on a writer thread, is done)."""
        if not self.store_path.exists():
            return False
        store = fm_lab.Store(self.store_path)
        try:
            return self.run_id in set(store.runs()["run_id"])
        finally:
            store.close()

    def effects(self) -> list[str]:
        return self.log.read_text().split() if self.log.exists() else []

    def lines(self) -> list[bytes]:
        return self.journal.read_bytes().split(b"\n")

    def line_of(self, node: str) -> int:
        """Index of ``node``'s record among the journal's lines."""
        for index, line in enumerate(self.lines()):
            record = json.loads(line[9:]) if line[9:] else {}
            if record.get("k") == "node" and record.get("node") == node:
                return index
        raise AssertionError(f"no record of {node}")

    def rewrite(self, lines: list[bytes]) -> None:
        self.journal.write_bytes(b"\n".join(lines))


@pytest.fixture
def killed(tmp_path, monkeypatch, request) -> Killed:
    monkeypatch.syspath_prepend(str(tmp_path))
    run = Killed(tmp_path)
    run.start_and_kill(getattr(request, "param", "none"))
    return run


def _status(store: fm_lab.Store, run_id: str) -> str:
    return store.run_status(run_id)


def test_a_flipped_bit_is_reported_and_force_keeps_the_records_after_it(killed, caplog):
    lines = killed.lines()
    index = killed.line_of("n3")
    flipped = bytearray(lines[index])
    flipped[len(flipped) // 2] ^= 0x04
    lines[index] = bytes(flipped)
    killed.rewrite(lines)
    damaged = killed.journal.read_bytes()

    with caplog.at_level(logging.WARNING, logger="fm_lab"):
        store = fm_lab.Store(killed.store_path)  # opening does not ingest a damaged journal
    assert "is damaged" in caplog.text
    assert killed.run_id not in set(store.runs()["run_id"])
    with pytest.raises(JournalDamagedError, match=r"checksum mismatch \(record \d+ lost\)"):
        fm_lab.resume(killed.run_id, store=store)
    assert killed.journal.read_bytes() == damaged  # refused: nothing changed
    assert killed.effects() == NODES
    assert killed.run_id not in set(store.runs()["run_id"])

    run = fm_lab.resume(killed.run_id, store=store, force=True)
    assert run.status == "succeeded", run.error
    # only n3, whose record was destroyed, runs again; n4..n6 were read after the damage.
    # n3 and hold are both ready at the resume, so they run in either order
    effects = killed.effects()
    assert effects[:len(NODES)] == NODES and sorted(effects[len(NODES):]) == ["hold", "n3"]
    kept = list(killed.journal.parent.glob(f"{killed.run_id}.journal-damaged-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == damaged


def test_appended_garbage_is_reported_and_nothing_reruns_with_force(killed):
    with killed.journal.open("ab") as handle:
        handle.write(b"this is not a journal record\n")
    store = fm_lab.Store(killed.store_path)
    with pytest.raises(JournalDamagedError, match="not a journal record"):
        fm_lab.resume(killed.run_id, store=store)
    run = fm_lab.resume(killed.run_id, store=store, force=True)
    assert run.status == "succeeded"
    assert killed.effects() == [*NODES, "hold"]


@pytest.mark.parametrize("killed", ["first"], indirect=True)
def test_a_deleted_journal_is_reported(killed):
    killed.journal.unlink()
    store = fm_lab.Store(killed.store_path)
    assert _status(store, killed.run_id) == "running"  # the first ingest stored the run
    with pytest.raises(JournalDamagedError, match="is missing"):
        fm_lab.resume(killed.run_id, store=store)
    assert not killed.journal.exists()  # the refused resume leaves no empty journal behind
    assert killed.effects() == NODES
    run = fm_lab.resume(killed.run_id, store=store, force=True)
    assert run.status == "succeeded"
    assert killed.effects()[len(NODES):] == [*NODES, "hold"]  # everything again, as warned


def test_a_torn_last_record_is_dropped_with_a_warning(killed, caplog):
    lines = killed.lines()
    index = killed.line_of("n6")
    assert lines[index + 1:] == [b""]  # n6 is the last record
    killed.journal.write_bytes(b"\n".join(lines[:index]) + b"\n" + lines[index][:40])
    with caplog.at_level(logging.WARNING, logger="fm_lab"):
        run = fm_lab.resume(killed.run_id, store=fm_lab.Store(killed.store_path))
    assert run.status == "succeeded"
    assert "torn" in caplog.text
    assert killed.effects() == [*NODES, "n6", "hold"]


def test_the_cli_says_what_is_damaged_in_one_line(killed, capsys):
    with killed.journal.open("ab") as handle:
        handle.write(b"0000abcd {}\n")
    from fm_lab.cli import main

    assert main(["--store", str(killed.store_path), "resume", killed.run_id]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "journal is damaged" in err and "--force" in err
    assert main(["--store", str(killed.store_path), "resume", killed.run_id, "--force"]) == 0


@pytest.mark.parametrize("killed", ["first"], indirect=True)
def test_recover_leaves_a_damaged_run_for_a_person(killed, caplog):
    with killed.journal.open("ab") as handle:
        handle.write(b"garbage\n")
    store = fm_lab.Store(killed.store_path)
    with caplog.at_level(logging.WARNING, logger="fm_lab"):
        assert fm_lab.recover(store=store) == []
    assert "force=True" in caplog.text
    assert _status(store, killed.run_id) == "running"
    assert killed.effects() == NODES


def test_damage_in_records_already_stored_loses_nothing(tmp_path):
    """The scan tells what damage may have destroyed; records the store has are not lost."""
    path = tmp_path / "r.journal"
    journal = Journal(path)
    for seq in range(1, 7):
        journal.append({"k": "node", "seq": seq, "node": f"n{seq}"})
    journal.commit()
    journal.close()
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"n3", b"n9")  # seq 3: checksum mismatch
    del lines[4]  # seq 5: gone
    path.write_bytes(b"\n".join(lines))
    scan = scan_journal(path)
    assert [r["seq"] for r in scan.records] == [1, 2, 4, 6]
    assert [(d.first, d.last) for d in scan.damage] == [(3, 3), (5, 5)]
    assert [d.first for d in scan.losses(stored_seq=4)] == [5]
    assert scan.losses(stored_seq=6) == []
    assert not scan.torn_tail
