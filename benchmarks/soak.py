"""Soak: SIGKILL a 50-node workflow again and again, resume it, count what ran twice or never.

The workflow (``soak``) has 49 side effects: a chain of 10 ``code`` nodes, a ``foreach`` of 20
items at concurrency 4, a ``parallel`` of 4 branches, a ``subflow`` of 10 chained nodes and a
tail of 5. Each effect sleeps a little, then appends its tag (the execution's path) to a log:
a killed execution leaves no effect, a finished one leaves exactly one line.

Each trial starts the run in a subprocess and SIGKILLs it at a random moment, then resumes it
(``fm_lab.resume`` in a new subprocess) and kills that too, ``--kills`` times, and finally
resumes it to the end. At every kill the committed executions are read from the store (the
dead process's journal is ingested first). Printed per trial and in total:

- ``lost``: effects missing from the finished run (goal 0);
- ``committed repeated``: executions committed before a kill that ran again after it (goal
  0: the guarantee "a committed node is never re-run");
- ``uncommitted re-runs``: executions that finished their effect but were not committed yet
  when the process died, so they ran again (the at-least-once window, per kill);
- whether the outputs equal those of the same workflow run without crashes (the peer, run
  first in the same process, whose wall time is printed beside the soak's).

Usage::

    .venv/bin/python benchmarks/soak.py                 # 20 trials, 3 kills each
    .venv/bin/python benchmarks/soak.py --trials 5 --kills 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import fm_lab

EFFECTS = '''
import time


def effect(tag, log, delay):
    time.sleep(delay)
    with open(log, "a") as fh:
        fh.write(tag + "\\n")
    return tag
'''

RUN = """
import sys
import fm_lab

store, flow, run_id, mode = sys.argv[1:]
store = fm_lab.Store(store)
if mode == "run":
    run = fm_lab.run(fm_lab.Workflow.from_file(flow), store=store, run_id=run_id)
else:
    run = fm_lab.resume(run_id, store=store)
print(run.status)
"""


def _effect(tag: str, log: Path, delay: float) -> dict[str, object]:
    return {"type": "code", "config": {"function": "soak_effects:effect",
                                       "args": {"tag": tag, "log": str(log), "delay": delay}}}


def soak_workflow(log: Path, delay: float) -> dict[str, object]:
    """The 50-node workflow: chain, foreach, parallel, subflow, tail."""
    nodes: dict[str, object] = {f"c{i}": _effect(f"c{i}", log, delay) for i in range(10)}
    edges = [f"c{i} -> c{i + 1}" for i in range(9)]
    nodes["loop"] = {"type": "foreach", "config": {
        "items": list(range(20)), "concurrency": 4,
        "node": _effect("loop[{{ index }}]", log, delay)}}
    nodes["par"] = {"type": "parallel", "config": {"branches": {
        f"b{i}": {"node": _effect(f"par.b{i}", log, delay)} for i in range(4)}}}
    child = {"id": "soak_child",
             "nodes": {f"s{i}": _effect(f"sub/s{i}", log, delay) for i in range(10)},
             "edges": [f"s{i} -> s{i + 1}" for i in range(9)]}
    nodes["sub"] = {"type": "subflow", "config": {"workflow": child}}
    nodes.update({f"t{i}": _effect(f"t{i}", log, delay) for i in range(5)})
    edges += ["c9 -> loop", "c9 -> par", "loop -> sub", "par -> sub", "sub -> t0"]
    edges += [f"t{i} -> t{i + 1}" for i in range(4)]
    return {"id": "soak", "nodes": nodes, "edges": edges,
            "outputs": {"last": "{{ nodes.t4.output }}",
                        "items": "{{ nodes.loop.output.results }}",
                        "branches": "{{ nodes.par.output }}"}}


EXPECTED_TAGS = (
    [f"c{i}" for i in range(10)] + [f"loop[{i}]" for i in range(20)]
    + [f"par.b{i}" for i in range(4)] + [f"sub/s{i}" for i in range(10)]
    + [f"t{i}" for i in range(5)]
)


def committed_tags(store_path: Path, run_id: str) -> set[str]:
    """Executions committed so far (opening the store ingests a dead process's journal)."""
    store = fm_lab.Store(store_path)
    rows = store.sql(
        "select run_id, node_id from node_executions where status = 'succeeded' "
        "and (run_id = ? or run_id like ?)", [run_id, run_id + ".%"])
    store.close()
    return {node if rid == run_id else f"sub/{node}"
            for rid, node in zip(rows["run_id"], rows["node_id"], strict=True)}


def _lines(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


class Trial:
    def __init__(self, folder: Path, flow: Path, log: Path, run_id: str,
                 peer_outputs: str) -> None:
        self.folder, self.flow, self.log, self.run_id = folder, flow, log, run_id
        self.peer_outputs = peer_outputs
        self.store = folder / "soak.duckdb"
        self.script = folder / "soak_run.py"
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)}

    def start(self, mode: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, str(self.script), str(self.store),
                                 str(self.flow), self.run_id, mode], cwd=self.folder,
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def wait_started(self, proc: subprocess.Popen[bytes], before: int) -> None:
        """Until the process has produced its first effect of this segment (imports done)."""
        while len(_lines(self.log)) <= before and proc.poll() is None:
            time.sleep(0.005)


def run_trial(trial: Trial, kills: int, window_s: float, rng: random.Random) -> dict[str, int]:
    """Start, kill and resume until the run ends; count what each kill cost."""
    repeated = uncommitted = done_kills = 0
    mode = "run"
    last_kill: tuple[int, set[str], set[str]] | None = None  # log length, committed, seen
    while True:
        before = len(_lines(trial.log))
        proc = trial.start(mode)
        killed = False
        if done_kills < kills:
            trial.wait_started(proc, before)
            time.sleep(rng.uniform(0.0, window_s))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
        _out, err = proc.communicate()
        lines = _lines(trial.log)
        if last_kill is not None:  # what the segment after the last kill ran again
            at, committed, seen = last_kill
            segment = lines[at:]
            repeated += sum(1 for tag in segment if tag in committed)
            uncommitted += sum(1 for tag in segment if tag in seen and tag not in committed)
        if not killed:
            if proc.returncode != 0:
                raise RuntimeError(err.decode())
            break
        done_kills += 1
        last_kill = (len(lines), committed_tags(trial.store, trial.run_id), set(lines))
        mode = "resume"
    final = fm_lab.get_run(trial.run_id, store=fm_lab.Store(trial.store))
    counts = Counter(_lines(trial.log))
    return {
        "kills": done_kills,
        "status_ok": int(final.status == "succeeded"),
        "lost": sum(1 for tag in EXPECTED_TAGS if counts[tag] == 0),
        "committed_repeated": repeated,
        "uncommitted_reruns": uncommitted,
        "same_outputs": int(json.dumps(final.outputs, sort_keys=True) == trial.peer_outputs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--kills", type=int, default=3, help="kills per trial")
    parser.add_argument("--delay", type=float, default=0.01, help="seconds each effect takes")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="fm_lab_soak_") as tmp:
        root = Path(tmp)
        (root / "soak_effects.py").write_text(EFFECTS)
        sys.path.insert(0, str(root))
        # the peer: the same workflow, no crash, in this process
        log = root / "peer.log"
        flow = root / "peer.flow.json"
        flow.write_text(json.dumps(soak_workflow(log, args.delay)))
        for attempt in ("warm-up", "peer"):  # the first run pays imports and a cold disk
            log.unlink(missing_ok=True)
            started = time.perf_counter()
            peer = fm_lab.run(fm_lab.Workflow.from_file(flow),
                              store=fm_lab.Store(root / f"{attempt}.duckdb"))
            peer_s = time.perf_counter() - started
        peer_outputs = json.dumps(peer.outputs, sort_keys=True)
        assert sorted(_lines(log)) == sorted(EXPECTED_TAGS), "the peer run is not complete"
        print(f"peer (no crash, in process): {peer.status}, {len(EXPECTED_TAGS)} effects, "
              f"{peer_s:.2f} s")
        totals = Counter[str]()
        started = time.perf_counter()
        for number in range(args.trials):
            folder = root / f"t{number}"
            folder.mkdir()
            (folder / "soak_effects.py").write_text(EFFECTS)
            (folder / "soak_run.py").write_text(RUN)
            log = folder / "effects.log"
            flow = folder / "soak.flow.json"
            flow.write_text(json.dumps(soak_workflow(log, args.delay)))
            trial = Trial(folder, flow, log, f"soak-{number}", peer_outputs)
            result = run_trial(trial, args.kills, peer_s, rng)
            totals.update(result)
            same = bool(result["same_outputs"])
            print(f"trial {number:3d}: kills {result['kills']}, lost {result['lost']}, "
                  f"committed repeated {result['committed_repeated']}, uncommitted re-runs "
                  f"{result['uncommitted_reruns']}, outputs equal to the peer's: {same}")
        kills = max(totals["kills"], 1)
        print(f"\n{args.trials} trials, {totals['kills']} kills in "
              f"{time.perf_counter() - started:.0f} s")
        print(f"finished and succeeded:        {totals['status_ok']}/{args.trials}")
        print(f"outputs equal to the peer's:   {totals['same_outputs']}/{args.trials}")
        print(f"lost effects:                  {totals['lost']}")
        print(f"committed work repeated:       {totals['committed_repeated']}")
        print(f"uncommitted re-runs per kill:  {totals['uncommitted_reruns'] / kills:.2f}")


if __name__ == "__main__":
    main()
