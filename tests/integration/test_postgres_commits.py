"""How a PostgreSQL store's commits go to the server: a batch the run holds part of stores only
the rest, a retried batch stores nothing twice (store/pg_commit.py); a run's start of a known
workflow version goes in one round trip with its audit entry hashed by the server, the chain
intact (store/pg_start.py); a general-path transaction sent in a pipeline leaves nothing when
a statement fails or the block raises (store/pg_sql.py); the pool hands out the connection
returned last (store/pg_pool.py); a new run is taken with its start and given up with its end,
commits between go to the lock session while it is free (store/pg_locks.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from tests.unit.engine.test_engine_on_stores import CHAIN

import fm_lab
from fm_lab.spec.models import Workflow
from fm_lab.store import Store, open_store, pg_pool, pg_start
from fm_lab.store.audit import verify
from fm_lab.store.pg_journal import LeaseMissingError
from fm_lab.store.pg_pool import MostRecentFirst
from fm_lab.store.pg_sql import pipelined_transaction

pytestmark = pytest.mark.slow



@pytest.fixture
def store(pg_url: str) -> Iterator[Any]:
    made = open_store(pg_url)
    yield made
    made.close()


def _node(seq: int, name: str, status: str, output: Any, span: str) -> dict[str, Any]:
    return {"k": "node", "seq": seq, "node": name, "type": "template", "status": status,
            "attempts": 1, "input": {}, "output": output, "started": 1.0e9, "ended": 1.0e9 + 1,
            "span": span, "trace": "0" * 32, "pspan": None, "entity": name}


def _count(store: Any, sql: str, params: list[Any]) -> int:
    return int(store.sql(sql, params).iloc[0, 0])


def test_a_batch_the_run_holds_part_of_stores_only_the_rest_once(store: Any) -> None:
    run = fm_lab.run(CHAIN, {"n": 1}, store=store)
    stored = store.load_run(run.run_id).journal_seq
    batch = [_node(stored, "a", "failed", "old", "s-a"),  # at journal_seq: stored already
             _node(stored + 1, "extra", "succeeded", "new", "s-extra")]
    for _ in range(2):  # the second time, as a commit retried after its reply was lost
        store.ingest(run.run_id, batch)
        loaded = store.load_run(run.run_id)
        assert loaded.journal_seq == stored + 1
        assert loaded.nodes["a"]["status"] == "succeeded"
        assert loaded.nodes["extra"]["output"] == "new"
        for table, column, value in (("node_executions", "node_id", "extra"),
                                     ("spans", "span_id", "s-extra"),
                                     ("spans", "span_id", "s-a")):
            expected = 0 if value == "s-a" else 1
            assert _count(store, f"select count(*) from {table} where run_id = ? "
                          f"and {column} = ?", [run.run_id, value]) == expected


def test_a_whole_batch_after_journal_seq_goes_in_one_statement_and_a_retry_adds_nothing(
        store: Any) -> None:
    run = fm_lab.run(CHAIN, {"n": 2}, store=store)
    stored = store.load_run(run.run_id).journal_seq
    batch = [_node(stored + 1, "c", "succeeded", 1, "s-c"),
             _node(stored + 2, "d", "succeeded", 2, "s-d")]
    statements: list[str] = []
    with store.hold(), store.connection() as con:
        con.raw.add_notice_handler(lambda _: None)
        original = psycopg.Cursor.execute

        def spy(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            statements.append(str(query))
            return original(cursor, query, *args, **kwargs)

        psycopg.Cursor.execute = spy  # type: ignore[method-assign]
        try:
            store.ingest(run.run_id, batch)
            store.ingest(run.run_id, batch)
        finally:
            psycopg.Cursor.execute = original  # type: ignore[method-assign]
    assert len(statements) == 2 and all(s.startswith("with r as") for s in statements)
    assert _count(store, "select count(*) from node_executions where run_id = ? and "
                  "node_id in ('c', 'd')", [run.run_id]) == 2
    assert _count(store, "select count(*) from spans where run_id = ? and span_id in "
                  "('s-c', 's-d')", [run.run_id]) == 2
    assert store.load_run(run.run_id).journal_seq == stored + 2


def test_a_pipelined_transaction_leaves_nothing_when_a_statement_fails_or_the_block_raises(
        store: Any) -> None:
    with store.connection() as con:
        raw = con.raw
        raw.execute("create table kept (x int)")
        with pytest.raises(psycopg.errors.DivisionByZero), pipelined_transaction(raw):
            raw.execute("insert into kept values (1)")
            raw.execute("select 1 / 0")
            raw.execute("insert into kept values (2)")
        assert raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with pytest.raises(RuntimeError, match="block"), pipelined_transaction(raw):
            raw.execute("insert into kept values (3)")
            raise RuntimeError("the block failed")
        assert raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with pipelined_transaction(raw):
            raw.execute("insert into kept values (4)")
            read = raw.execute("select count(*) from kept")
            assert read.fetchone() == (1,)  # the block's own write, before its commit
        assert raw.execute("select array_agg(x) from kept").fetchone() == ([4],)
        with pytest.raises(RuntimeError), raw.transaction():  # inside the caller's own
            with pipelined_transaction(raw):
                raw.execute("insert into kept values (5)")
            assert raw.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
            raise RuntimeError("the caller's transaction fails after the block")
        assert raw.execute("select array_agg(x) from kept").fetchone() == ([4],)


def test_the_pool_hands_out_the_connection_returned_last(store: Any) -> None:
    def backend() -> int:
        with store.connection() as con:
            return int(con.raw.info.backend_pid)

    assert isinstance(store._pool_now()._pool, MostRecentFirst)
    inside = threading.Event()
    leave = threading.Event()
    pids: dict[str, int] = {}

    def hold_one() -> None:
        with store.connection() as con:
            pids["other"] = int(con.raw.info.backend_pid)
            inside.set()
            leave.wait(600)  # a hang guard, not a timing assertion

    worker = threading.Thread(target=hold_one)
    worker.start()
    assert inside.wait(600)
    pids["mine"] = backend()  # the pool opens a second connection beside the held one
    leave.set()
    worker.join(600)
    assert pids["mine"] != pids["other"]
    # both are idle now; the one returned last (the worker's) comes first, again and again
    assert [backend() for _ in range(5)] == [pids["other"]] * 5


def _spy_starts(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    taken: list[bool] = []
    original = pg_start.commit

    def spy(*args: Any, **kwargs: Any) -> bool:
        taken.append(original(*args, **kwargs))
        return taken[-1]

    monkeypatch.setattr(pg_start, "commit", spy)
    return taken


def test_a_start_of_a_known_version_takes_one_trip_and_logs_as_the_general_path(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = _spy_starts(monkeypatch)
    monkeypatch.setenv("FM_LAB_USER", "zoë.ünal")  # hashed by the server as UTF-8
    first = fm_lab.run(CHAIN, {"n": 1}, store=store)  # a new version: the general path
    assert taken == []
    later = [fm_lab.run(CHAIN, {"n": n}, store=store) for n in range(2, 5)]
    assert taken == [True, True, True]
    rows = store.audit_rows()
    assert verify(rows) == []
    starts = [r for r in rows if r["action"] == "run.start"]
    assert [r["run_id"] for r in starts] == [first.run_id] + [r.run_id for r in later]
    assert {r["after"] for r in starts} == {starts[0]["after"]}  # same version, same hash
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert {r["actor"] for r in starts} == {"zoë.ünal"}
    for run in later:
        loaded = store.load_run(run.run_id)
        assert loaded.status == "succeeded"
    assert store.runs()["workflow_version"].tolist() == [1] * 4


def test_a_retried_start_stores_one_run_and_one_entry(store: Any) -> None:
    fm_lab.run(CHAIN, {"n": 1}, store=store)  # the version is known from here on
    workflow = Workflow.from_dict(CHAIN)
    record = {**Store.start_record("retried", workflow, {"n": 2}), "seq": 1, "by": "ann"}
    store.locks.acquire("retried")
    try:
        for _ in range(2):  # the second time, as a start whose reply was lost
            store.ingest("retried", [record], lease=store.locks.session_pid())
    finally:
        store.locks.release("retried")
    assert _count(store, "select count(*) from runs where run_id = ?", ["retried"]) == 1
    assert _count(store, "select count(*) from audit_log where run_id = ?", ["retried"]) == 1
    assert verify(store.audit_rows()) == []


def test_a_start_without_the_lease_stores_nothing(store: Any) -> None:
    fm_lab.run(CHAIN, {"n": 1}, store=store)
    record = {**Store.start_record("unleased", Workflow.from_dict(CHAIN), {}), "seq": 1,
              "by": "ann"}
    entries = len(store.audit_rows())
    with pytest.raises(LeaseMissingError):  # no session of this process holds the run
        store.ingest("unleased", [record], lease=store.locks.session_pid() or 1)
    assert _count(store, "select count(*) from runs where run_id = ?", ["unleased"]) == 0
    assert len(store.audit_rows()) == entries


def test_starts_from_many_threads_at_once_keep_the_chain_whole(store: Any) -> None:
    fm_lab.run(CHAIN, {"n": 0}, store=store)
    errors: list[BaseException] = []

    def runs(worker: int) -> None:
        try:
            for n in range(8):
                fm_lab.run(CHAIN, {"n": worker * 100 + n}, store=store)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=runs, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)  # a hang guard, not a timing assertion
    assert errors == []
    rows = store.audit_rows()
    assert verify(rows) == [] and len(rows) == 1 + 6 * 8
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))


def test_a_version_from_a_rolled_back_ingest_is_not_remembered(pg_url: str) -> None:
    """A held connection outlives a failed ingest: the version its rolled-back transaction
    stored must not reach the store's cache through the next committed ingest."""
    mine, theirs = open_store(pg_url), open_store(pg_url)
    first = {"id": "first", "nodes": {"a": {"type": "template", "config": {"template": "A"}}}}
    other = {"id": "other", "nodes": {"a": {"type": "template", "config": {"template": "O"}}}}

    def start(run_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {**Store.start_record(run_id, Workflow.from_dict(spec), {}), "seq": 1,
                "by": "ann"}

    try:
        with mine.hold():
            mine.locks.acquire("r1")
            refused = {"k": "node", "seq": 2, "node": "a\x00", "type": "template",
                       "status": "succeeded", "attempts": 1, "input": {}, "output": 1,
                       "started": 1e9, "ended": 1e9 + 1}  # a NUL the server refuses
            with pytest.raises(Exception):  # noqa: B017 - rolled back: nothing of r1 stored
                mine.ingest("r1", [start("r1", first), refused],
                            lease=mine.locks.session_pid())
            mine.locks.acquire("r2")  # a later ingest on the same held connection commits
            mine.ingest("r2", [start("r2", other)], lease=mine.locks.session_pid())
        changed = {**first, "nodes": {"a": {"type": "template", "config": {"template": "B"}}}}
        fm_lab.run(changed, {}, store=theirs)  # other content of "first" becomes version 1
        run = fm_lab.run(first, {}, store=mine)
        row = mine.sql("select r.workflow_hash, w.hash from runs r join workflows w on "
                       "w.workflow_id = r.workflow_id and w.version = r.workflow_version "
                       "where r.run_id = ?", [run.run_id]).iloc[0]
        assert row.iloc[0] == row.iloc[1]  # the run's version holds the run's content
    finally:
        mine.close()
        theirs.close()


def test_a_connection_a_server_ended_while_idle_is_replaced_before_use(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """One connection does the work while the others sit idle; a server's idle limit (here
    ``idle_session_timeout``, as a bouncer's or a firewall's) ends them, and the next burst of
    concurrent work must not be handed a dead one."""
    from urllib.parse import quote

    monkeypatch.setattr(pg_pool, "CHECK_IDLE_S", 0.2)
    url = pg_url.replace("options=", "options=" + quote("-c idle_session_timeout=3000 "), 1)
    store = open_store(url)
    errors: list[str] = []

    def one(barrier: threading.Barrier) -> None:
        try:
            with store.connection() as con:
                barrier.wait(600)  # both connections out at once: a hang guard only
                con.raw.execute("select 1").fetchone()
        except Exception as exc:  # reported below
            errors.append(f"{type(exc).__name__}: {exc}")
            barrier.abort()

    def burst() -> None:
        barrier = threading.Barrier(2)
        workers = [threading.Thread(target=one, args=(barrier,)) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(600)

    try:
        burst()  # the pool holds two connections now
        ended = store.sql("select count(*) from pg_stat_activity").iloc[0, 0]
        deadline = time.monotonic() + 600  # the server ends the idle one: wait for it
        while store.sql("select count(*) from pg_stat_activity").iloc[0, 0] >= ended:
            assert time.monotonic() < deadline, "the server never ended the idle session"
            time.sleep(0.1)
        burst()
        assert errors == []
    finally:
        store.close()


HOSTILE = ["O'Brien \"q\" \\ back", "zoë\u2028line\u2029sep", "emoji 🎉 \U0001d518", "x" * 20000,
           "%s %(run)s {}", "tab\tnl\ncr\r", "\u00e9" * 3000, "\x7f\x01ctl", "\ufeffbom"]


def test_one_trip_starts_hash_hostile_actors_and_run_ids_as_the_chain_does(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server hashes what Python would: quotes, backslashes, placeholders, line and
    paragraph separators, astral characters, control characters, a BOM, 20,000 characters."""
    taken = _spy_starts(monkeypatch)
    fm_lab.run(CHAIN, {"n": 0}, store=store)  # the version is known from here on
    for i, actor in enumerate(HOSTILE):
        run_id = f"r'un\"{i}\\é"
        record = {**Store.start_record(run_id, Workflow.from_dict(CHAIN), {"v": actor}),
                  "seq": 1, "by": actor, "created": 1.0e9 + i + 0.1234567}
        store.locks.acquire(run_id)
        try:
            store.ingest(run_id, [record], lease=store.locks.session_pid())
        finally:
            store.locks.release(run_id)
    assert taken == [True] * len(HOSTILE)
    rows = store.audit_rows()
    assert verify(rows) == []
    assert [r["actor"] for r in rows if r["action"] == "run.start"][1:] == HOSTILE


def _lock_statements(store: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements of ``store``'s lock session that take or give up a run on their own
    (not riding on a commit)."""
    from fm_lab.store import pg_locks

    seen: list[str] = []
    original = psycopg.Connection.execute

    def spy(conn: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if query in (pg_locks._TAKE, pg_locks._GIVE_UP) and conn is store.locks._conn:
            seen.append("take" if query == pg_locks._TAKE else "give up")
        return original(conn, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", spy)
    return seen


def test_a_new_run_is_taken_with_its_start_and_given_up_with_its_end(
        store: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    gate, entered = threading.Event(), threading.Event()

    @fm_lab.register_function(name="pg_commits_gate")
    def wait_at_gate(x: int) -> int:
        entered.set()
        gate.wait(600)  # a hang guard, not a timing assertion
        return x

    gated = {"id": "gated", "nodes": {
        "a": {"type": "code", "config": {"function": "pg_commits_gate", "args": {"x": 1}}},
        "b": {"type": "code", "config": {"function": "pg_commits_gate", "args": {"x": 2}}}},
        "edges": [{"source": "a", "target": "b"}]}
    gate.set()
    fm_lab.run(gated, store=store)  # its version is known from here on
    gate.clear()
    entered.clear()
    lone = _lock_statements(store, monkeypatch)
    done: list[Any] = []
    runner = threading.Thread(target=lambda: done.append(fm_lab.run(gated, store=store)))
    runner.start()
    try:
        assert entered.wait(600)
        live = store.runs().query("status == 'running'")["run_id"].tolist()
        assert len(live) == 1
        other = open_store(pg_url)  # another process's view: the run is held meanwhile
        try:
            assert other.run_is_live(live[0])
        finally:
            other.close()
    finally:
        gate.set()
        runner.join(600)
    assert done and done[0].status == "succeeded" and done[0].run_id == live[0]
    assert lone == []  # no round trip of its own to take the run or to give it up
    assert not store.locks.holds(live[0])
    after = open_store(pg_url)
    try:
        after.locks.acquire(live[0])  # given up: anyone may take it now
        after.locks.release(live[0])
    finally:
        after.close()
    assert verify(store.audit_rows()) == []


@pytest.mark.parametrize("version_known", [True, False])
def test_a_new_run_whose_id_another_process_takes_meanwhile_is_refused_with_nothing_stored(
        store: Any, pg_url: str, version_known: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from fm_lab.engine import api
    from fm_lab.store.journal import RunLockedError

    if version_known:
        fm_lab.run(CHAIN, {"n": 1}, store=store)
    entries = len(store.audit_rows())
    other = open_store(pg_url)
    checked = api._check_new_run_id

    def then_taken(target: Any, run_id: str) -> None:  # the id was free when checked
        checked(target, run_id)
        other.locks.acquire(run_id)

    try:
        with monkeypatch.context() as patched:
            patched.setattr(api, "_check_new_run_id", then_taken)
            with pytest.raises(RunLockedError, match=r"run contested .* is locked by another"):
                fm_lab.run(CHAIN, {"n": 2}, run_id="contested", store=store)
        assert _count(store, "select count(*) from runs where run_id = ?", ["contested"]) == 0
        assert len(store.audit_rows()) == entries
        assert not store.locks.holds("contested")
        other.locks.release("contested")
        run = fm_lab.run(CHAIN, {"n": 3}, run_id="contested", store=store)
        assert run.status == "succeeded" and not other.run_is_live("contested")
    finally:
        other.close()


def test_a_take_whose_write_fails_gives_the_lock_back(store: Any, pg_url: str) -> None:
    from fm_lab.store.pg_locks import TAKING

    def take_then_fail(session: Any) -> bool:
        session.execute(f"select {TAKING}", ["doomed", "doomed"])
        session.execute("select 1 / 0")  # the server refuses the write after the take
        return True

    with pytest.raises(psycopg.errors.DivisionByZero):
        store.locks.take_with("doomed", take_then_fail)
    assert not store.locks.holds("doomed")
    other = open_store(pg_url)
    try:
        other.locks.acquire("doomed")  # not left locked by the failed take
        other.locks.release("doomed")
    finally:
        other.close()


def test_a_commit_goes_to_a_pooled_connection_while_the_lock_session_is_busy(
        store: Any) -> None:
    run = fm_lab.run(CHAIN, {"n": 1}, store=store)
    seq = store.load_run(run.run_id).journal_seq
    store.locks.acquire(run.run_id)
    try:
        busy, free = threading.Event(), threading.Event()

        def another_commit(session: Any) -> bool:  # holds the session meanwhile
            busy.set()
            free.wait(600)
            return False

        holder = threading.Thread(target=store.locks.write_held,
                                  args=(run.run_id, another_commit))
        holder.start()
        assert busy.wait(600)
        try:  # not waited for: the caller takes a pooled connection
            assert not store.ingest_held(run.run_id, [_node(seq + 1, "x", "succeeded", 1,
                                                            "s-x")])
        finally:
            free.set()
            holder.join(600)
        assert store.ingest_held(run.run_id, [_node(seq + 1, "x", "succeeded", 1, "s-x")])
    finally:
        store.locks.release(run.run_id)
    assert store.load_run(run.run_id).nodes["x"]["output"] == 1
    assert not store.ingest_held(run.run_id, [_node(seq + 2, "y", "succeeded", 2, "s-y")])


def test_the_lock_session_commits_as_the_stores_connections_do(pg_url: str) -> None:
    quick = open_store(pg_url, durability="process")
    try:
        run = fm_lab.run(CHAIN, {"n": 1}, store=quick)
        assert run.status == "succeeded"
        session = quick.locks._connection()
        assert session.execute("show synchronous_commit").fetchone() == ("off",)
    finally:
        quick.close()


def _start_of(run_id: str) -> dict[str, Any]:
    return {**Store.start_record(run_id, Workflow.from_dict(CHAIN), {"n": 1}), "seq": 1,
            "by": "ann"}


def test_a_second_new_run_of_one_id_in_one_process_is_refused_and_frees_nothing(
        store: Any, pg_url: str) -> None:
    from fm_lab.store.journal import RunLockedError

    fm_lab.run(CHAIN, {"n": 0}, store=store)  # the version is known: one-trip starts
    first = store.open_journal("twice", new=True)
    first.append(_start_of("twice"))
    first.commit()
    second = store.open_journal("twice", new=True)
    second.append(_start_of("twice"))
    with pytest.raises(RunLockedError, match=r"run twice .* is locked"):
        second.commit()
    second.close()
    other = open_store(pg_url)
    try:
        assert other.run_is_live("twice")  # still the first journal's
        first.close()
        assert not other.run_is_live("twice")
    finally:
        other.close()


def test_a_commit_beside_a_busy_lock_session_does_not_wait_for_it(store: Any) -> None:
    run = fm_lab.run(CHAIN, {"n": 1}, store=store)
    seq = store.load_run(run.run_id).journal_seq
    journal = store.open_journal(run.run_id)  # held by this process, as a resume holds it
    try:
        busy, free = threading.Event(), threading.Event()
        gave_up_waiting: list[bool] = []

        def another_commit(session: Any) -> bool:  # holds the session meanwhile
            busy.set()
            gave_up_waiting.append(not free.wait(120))  # a hang guard, not a timing assert
            return False

        holder = threading.Thread(target=store.locks.write_held,
                                  args=("someone-else", another_commit))
        store.locks._held.add("someone-else")
        holder.start()
        assert busy.wait(600)
        journal.append(_node(seq + 1, "beside", "succeeded", 7, "s-beside"))
        journal.commit()  # on a pooled connection, with the lease check
        free.set()
        holder.join(600)
        assert gave_up_waiting == [False]
    finally:
        store.locks._held.discard("someone-else")
        journal.close()
    assert store.load_run(run.run_id).nodes["beside"]["output"] == 7


def test_an_interrupted_take_gives_the_lock_back(store: Any, pg_url: str) -> None:
    from fm_lab.store.pg_locks import TAKING

    def take_then_interrupt(session: Any) -> bool:
        session.execute(f"select {TAKING}", ["stopped", "stopped"])
        raise KeyboardInterrupt  # Ctrl-C while the start's round trip was under way

    with pytest.raises(KeyboardInterrupt):
        store.locks.take_with("stopped", take_then_interrupt)
    assert not store.locks.holds("stopped") and not store.run_is_live("stopped")
    other = open_store(pg_url)
    try:
        assert not other.run_is_live("stopped")
    finally:
        other.close()


def test_a_lost_reply_to_the_ends_commit_still_ends_the_run_as_stored(
        store: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from fm_lab.store import pg_commit

    fm_lab.run(CHAIN, {"n": 0}, store=store)
    real = pg_commit.commit
    lost: list[int] = []

    def reply_lost(conn: Any, run_id: str, records: Any, lease: Any, give_up: bool = False,
                   **more: Any) -> bool:
        stored = real(conn, run_id, records, lease, give_up, **more)
        if give_up and not lost:  # stored and given up; then the session ends unanswered
            lost.append(conn.info.backend_pid)
            with psycopg.connect(pg_url, autocommit=True) as admin:
                admin.execute("select pg_terminate_backend(%s)", [lost[0]])
            conn.execute("select 1")  # raises: the connection is gone
        return stored

    monkeypatch.setattr(pg_commit, "commit", reply_lost)
    run = fm_lab.run(CHAIN, {"n": 5}, store=store)
    assert lost and run.status == "succeeded"
    assert store.load_run(run.run_id).status == "succeeded"
    assert not store.run_is_live(run.run_id) and not store.locks.holds(run.run_id)


def test_a_node_stored_by_its_commit_is_the_record_as_it_was_queued_in_both_tables(
        store: Any) -> None:
    """The journal makes a node's rows as it queues the record: a payload changed before the
    commit (a listener holding the output) changes neither node_executions nor spans."""
    run = fm_lab.run(CHAIN, {"n": 1}, store=store)
    seq = store.load_run(run.run_id).journal_seq
    journal = store.open_journal(run.run_id)
    try:
        output = {"v": "queued"}
        record = _node(seq + 1, "x", "succeeded", output, "s" * 16)
        assert journal.append(record) is None  # no text kept: its rows are
        output["v"] = "changed later"
        journal.commit()
    finally:
        journal.close()
    stored = store.sql("select output from node_executions where run_id = ? and node_id = 'x'",
                       [run.run_id]).iloc[0, 0]
    span = store.sql("select output from spans where span_id = ?", ["s" * 16]).iloc[0, 0]
    assert stored == span == '{"v":"queued"}'


@pytest.mark.parametrize("version_known", [True, False])
def test_a_new_run_whose_id_another_run_took_meanwhile_is_refused_and_the_other_kept(
        store: Any, pg_url: str, version_known: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between fm_lab.run(run_id=...)'s check that the id is free and its start, another
    process starts and finishes a run under that id: the start is refused (before, it was
    taken for a retry of its own and every later commit for one too: stored nothing, said
    nothing)."""
    from fm_lab.engine import api
    from fm_lab.store.ids import RunIdInUseError

    if version_known:
        fm_lab.run(CHAIN, {"n": 1}, store=store)
    other = open_store(pg_url)
    checked, raced = api._check_new_run_id, []

    def then_taken(target: Any, run_id: str) -> None:  # free when checked, then taken
        checked(target, run_id)
        if target is store:  # not the other process's own check
            raced.append(fm_lab.run(CHAIN, {"n": 7}, run_id=run_id, store=other))

    try:
        with monkeypatch.context() as patched:
            patched.setattr(api, "_check_new_run_id", then_taken)
            with pytest.raises(RunIdInUseError, match="run id 'raced' was taken by another"):
                fm_lab.run(CHAIN, {"n": 2}, run_id="raced", store=store)
        assert raced[0].status == "succeeded"
        kept = store.load_run("raced")
        assert kept.status == "succeeded" and kept.nodes["b"]["output"] == "x7y"
        starts = [r for r in store.audit_rows() if r["run_id"] == "raced"]
        assert [r["action"] for r in starts] == ["run.start"]
        assert not store.locks.holds("raced") and not other.run_is_live("raced")
        assert verify(store.audit_rows()) == []
    finally:
        other.close()
