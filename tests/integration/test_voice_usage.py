"""Voice calls in ``usage()`` on both stores (DuckDB and PostgreSQL): the audio seconds and
characters of ``speech`` and ``transcription`` spans are read from their attributes."""

from __future__ import annotations

import pytest

import fm_lab
from fm_lab.llm import script_transcription
from fm_lab.llm.voice_offline import tone
from fm_lab.spec import Workflow

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)
TEXT = "Two tickets to Porto."


def test_usage_counts_voice_seconds_and_characters(store):
    clerk = script_transcription("usage-clerk", {tone(TEXT): TEXT})
    run = fm_lab.run(Workflow.from_dict({
        "id": "voice_usage",
        "nodes": {"say": {"type": "speak", "config": {"text": TEXT, "model": "offline/tone"}},
                  "hear": {"type": "transcribe", "config": {"audio": "{{ nodes.say.output }}",
                                                             "model": clerk}}},
        "edges": ["say -> hear"]}), {}, store=store)
    assert run.status == "succeeded", run.error
    rows = fm_lab.usage(by=["model"], store=store).set_index("model")
    seconds = len(TEXT) * 0.06
    assert rows.loc["offline/tone", "calls"] == 1
    assert rows.loc["offline/tone", "characters"] == len(TEXT)
    assert rows.loc["offline/tone", "audio_seconds"] == pytest.approx(seconds, abs=1e-3)
    assert rows.loc[clerk, "audio_seconds"] == pytest.approx(seconds, abs=1e-3)
    assert rows["cost_usd"].sum() == 0 and not rows["priced"].any()
