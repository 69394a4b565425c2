"""A Dask batch on a PostgreSQL store whose URL holds a password: the password never travels
in task arguments; workers fm_lab starts get it in their environment, workers in the batch's
own process open the full URL, and the batch runs against a server that demands it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest

import fm_lab
import fm_lab.batch
from fm_lab.store.errors import StoreError
from fm_lab.store.pg_password import split_password

distributed = pytest.importorskip("distributed")

FLOW = {"id": "secret_batch",
        "inputs": {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}},
        "nodes": {"echo": {"type": "template", "config": {"template": "item {{ inputs.x }}"}}}}
ROLE = "fm_secret"


@pytest.fixture
def secret_url(pg_server: str) -> Iterator[tuple[str, str]]:
    """A store URL of a role the server admits only with its password (scram over the Unix
    socket), on a schema of its own; and the password."""
    password = f"pw-{uuid.uuid4().hex}"
    schema = f"s_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_roles where rolname = %s", [ROLE]).fetchone()
        verb = "alter" if exists else "create"
        conn.execute(f"{verb} role {ROLE} login password '{password}'")
        conn.execute(f"create schema {schema} authorization {ROLE}")
        hba = Path(str(conn.execute("show hba_file").fetchone()[0]))  # type: ignore[index]
        before = hba.read_text()
        hba.write_text(f"local all {ROLE} scram-sha-256\n{before}")
        conn.execute("select pg_reload_conf()")
    public = pg_server.replace("postgresql://postgres:@", f"postgresql://{ROLE}@", 1)
    public += f"&options={quote(f'-csearch_path={schema},public')}"
    deadline = time.monotonic() + 30  # the server reads its new rules (a hang guard)
    while True:
        try:
            psycopg.connect(public).close()
        except psycopg.OperationalError:
            break  # a password is demanded now
        assert time.monotonic() < deadline, "the server did not start demanding a password"
        time.sleep(0.05)
    try:
        yield public.replace(f"{ROLE}@", f"{ROLE}:{quote(password)}@", 1), password
    finally:
        hba.write_text(before)
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute("select pg_reload_conf()")


def test_split_password_keeps_the_rest_of_the_url() -> None:
    assert split_password("postgresql://u:p%40ss@h:5/db?sslmode=require") == (
        "postgresql://u@h:5/db?sslmode=require", "p@ss")
    assert split_password("postgresql://u@h/db?password=zz&options=-csearch_path%3Dx") == (
        "postgresql://u@h/db?options=-csearch_path%3Dx", "zz")
    assert split_password("postgresql:///db") == ("postgresql:///db", None)


@pytest.mark.parametrize("cluster", ["threads", "processes"])
def test_no_task_argument_carries_the_password_and_the_batch_runs(
        secret_url: tuple[str, str], cluster: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url, password = secret_url
    sent: list[str] = []
    submit = distributed.Client.submit

    def recording(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(repr((fn, args, kwargs)))
        return submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(distributed.Client, "submit", recording)
    store = fm_lab.connect(url)
    items = [{"x": i} for i in range(6)]
    if cluster == "threads":  # workers in this process: they open the batch's full URL
        with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                      dashboard_address=":0") as local, \
                distributed.Client(local) as client:
            out = fm_lab.batch.map(FLOW, items, executor=client, store=store)
    else:  # worker processes fm_lab starts: the password is in their environment
        out = fm_lab.batch.map(FLOW, items, executor="dask", store=store)

    assert (out["status"] == "succeeded").all(), out["error"].tolist()
    assert [o["echo"] for o in out["outputs"]] == [f"item {i}" for i in range(6)]
    assert len(sent) == 6 and not [s for s in sent if password in s]
    assert all(split_password(url)[0] in s for s in sent)  # the URL, without its password
    assert fm_lab.sql("select count(*) as n from runs", store=store)["n"][0] == 6
    store.close()


def test_a_worker_without_the_password_is_told_where_to_put_it(
        secret_url: tuple[str, str]) -> None:
    public = split_password(secret_url[0])[0]
    with pytest.raises(StoreError) as caught:
        fm_lab.connect(public)
    message = str(caught.value)
    assert "PGPASSWORD" in message and "\n" not in message and secret_url[1] not in message
