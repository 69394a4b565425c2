"""``fm_lab.traces`` in pages, by offset and by cursor: a total order (ties on the start time
broken by span id), so consecutive pages neither overlap nor skip, on both SQL stores."""

from __future__ import annotations

import datetime as dt
import json

import pytest

import fm_lab

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)

FANOUT = {
    "id": "fanout",
    "nodes": {"loop": {"type": "foreach", "config": {
        "items": list(range(12)),
        "node": {"type": "template", "config": {"template": "{{ item }}"}}}}},
}


@pytest.fixture
def spans(store) -> list[str]:
    """Span ids of two runs, newest first; half of them share one start time (ties)."""
    for _ in range(2):
        assert fm_lab.run(fm_lab.Workflow.from_dict(FANOUT), store=store).status == "succeeded"
    tied = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with store.connection() as con:
        con.execute("update spans set started_at = ? where kind = 'item'", [tied])
    every = fm_lab.traces(limit=None, store=store)
    assert len(every) >= 28 and (every["started_at"] == tied).sum() == 24
    return every["span_id"].tolist()


def test_offset_pages_cover_every_span_once_in_order(store, spans):
    pages = [fm_lab.traces(limit=5, offset=start, store=store)["span_id"].tolist()
             for start in range(0, len(spans) + 5, 5)]

    assert [s for page in pages for s in page] == spans
    assert all(len(page) == 5 for page in pages[:-2])


def test_cursor_pages_cover_every_span_once_in_order(store, spans):
    seen: list[str] = []
    cursor = None
    for _ in range(len(spans)):
        page = fm_lab.traces(limit=7, cursor=cursor, store=store)
        seen += page["span_id"].tolist()
        cursor = page.attrs["next_cursor"]
        if cursor is None:
            break

    assert seen == spans


def test_a_cursor_stays_put_while_new_spans_arrive(store, spans):
    first = fm_lab.traces(limit=10, store=store)
    fm_lab.run(fm_lab.Workflow.from_dict(FANOUT), store=store)  # newer spans on top

    second = fm_lab.traces(limit=10, cursor=first.attrs["next_cursor"], store=store)

    assert second["span_id"].tolist() == spans[10:20]


def test_filters_apply_to_pages_and_bad_paging_is_refused(store, spans):
    items = fm_lab.traces(kind="item", limit=None, store=store)["span_id"].tolist()
    page = fm_lab.traces(kind="item", limit=10, store=store)
    rest = fm_lab.traces(kind="item", limit=None, cursor=page.attrs["next_cursor"], store=store)

    assert page["span_id"].tolist() + rest["span_id"].tolist() == items
    assert rest.attrs["next_cursor"] is None
    with pytest.raises(ValueError, match="not a cursor of fm_lab"):
        fm_lab.traces(cursor="nonsense", store=store)
    with pytest.raises(ValueError, match="offset >= 0"):
        fm_lab.traces(offset=-1, store=store)


def test_the_command_pages_with_a_cursor(store, store_path, spans, capsys):
    from fm_lab.cli import main

    assert main(["--store", str(store_path), "traces", "--limit", "10", "--json"]) == 0
    captured = capsys.readouterr()
    first = [row["span_id"] for row in json.loads(captured.out)]
    cursor = captured.err.split("--cursor ")[1].strip()
    assert main(["--store", str(store_path), "traces", "--limit", "10", "--json",
                 "--cursor", cursor]) == 0
    second = [row["span_id"] for row in json.loads(capsys.readouterr().out)]
    assert first + second == spans[:20]
