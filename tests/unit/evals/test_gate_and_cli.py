"""The CI gate (``fm-lab eval run FILE --min``, the pytest helper), datasets from files and
their versions, and the built-in scorers."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import fm_lab.evals as ev
from fm_lab.cli import main
from fm_lab.evals.scorers import Case
from fm_lab.memory.embedders import HashingEmbedder
from fm_lab.store.memory_store import MemoryStore

EVAL_FILE = '''
import pandas as pd
import fm_lab.evals as ev

dataset = pd.DataFrame({"x": range(10), "expected": [str(i * 2) for i in range(10)]})
WRONG_FROM = {wrong_from}

def target(x):
    return str(x * 2 if x < WRONG_FROM else 0)

scorers = [ev.exact_match()]
'''


def test_eval_run_passes_then_fails_its_threshold_and_compares_with_the_last(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "gate.duckdb")
    file = tmp_path / "qa_eval.py"
    file.write_text(EVAL_FILE.replace("{wrong_from}", "9"))
    assert main(["--store", store, "eval", "run", str(file), "--min", "exact_match=0.8"]) == 0
    first = capsys.readouterr().out
    assert "no earlier experiment named 'qa_eval'" in first and "FAILED" not in first
    file.write_text(EVAL_FILE.replace("{wrong_from}", "5"))  # a regression: 5 of 10 now wrong
    assert main(["--store", store, "eval", "run", str(file), "--min", "exact_match=0.8"]) == 1
    second = capsys.readouterr().out
    assert "FAILED: exact_match = 0.500 < 0.8" in second
    assert "McNemar exact" in second and "(10 paired rows)" in second
    assert main(["--store", store, "eval", "run", str(file), "--min", "exact"]) == 1
    assert "--min takes scorer=number" in capsys.readouterr().err
    (tmp_path / "rows.jsonl").write_text('{"x": 1, "expected": "2"}\n')
    (tmp_path / "from_file.py").write_text(EVAL_FILE.replace("{wrong_from}", "9").replace(
        "dataset = pd.DataFrame(", 'dataset = "rows.jsonl"\nunused = ('))
    assert main(["--store", store, "eval", "run", str(tmp_path / "from_file.py")]) == 0
    assert "(from_file): 1 rows" in capsys.readouterr().out
    (tmp_path / "empty.py").write_text("x = 1\n")
    assert main(["--store", store, "eval", "run", str(tmp_path / "empty.py")]) == 1
    assert "defines no target, dataset, scorers" in capsys.readouterr().err


def test_assert_scores_names_each_miss() -> None:
    store = MemoryStore()
    data = ev.dataset("gate", pd.DataFrame({"x": [1, 2, 3, 4]}), expected=None, store=store)

    @ev.scorer
    def small(output: int) -> bool:
        return output < 3

    exp = ev.run(lambda x: x, data, [small], store=store)
    ev.assert_scores(exp, min={"small": 0.5})
    with pytest.raises(AssertionError, match=r"small = 0.500 < 0.75"):
        ev.assert_scores(exp, min={"small": 0.75})
    with pytest.raises(AssertionError, match="no scorer 'judge'"):
        ev.assert_scores(exp, min={"judge": 0.1})


def test_datasets_from_csv_and_jsonl_are_versioned(tmp_path: Path) -> None:
    store = MemoryStore()
    csv = tmp_path / "qa.csv"
    pd.DataFrame({"question": ["a?", "b?"], "answer": ["A", "B"], "topic": ["x", "y"]}).to_csv(
        csv, index=False)
    first = ev.dataset("qa", csv, expected="answer", metadata=["topic"], store=store)
    assert first.version == 1 and first.examples[0].inputs == {"question": "a?"}
    assert first.examples[0].expected == "A" and first.examples[1].metadata == {"topic": "y"}
    assert ev.dataset("qa", csv, expected="answer", metadata=["topic"], store=store).version == 1
    lines = tmp_path / "qa.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in [
        {"inputs": {"question": "a?"}, "expected": "A", "metadata": {"topic": "x"}},
        {"inputs": {"question": "c?"}, "expected": "C"}]))
    second = ev.dataset("qa", lines, store=store)
    assert second.version == 2 and second.df["question"].tolist() == ["a?", "c?"]
    # an example keeps its id across versions (from its inputs), so experiments pair
    assert second.examples[0].example_id == first.examples[0].example_id
    assert ev.dataset("qa", version=1, store=store).df["question"].tolist() == ["a?", "b?"]
    assert ev.datasets(store=store)["version"].tolist() == [1, 2]
    with pytest.raises(ev.DatasetError, match="no dataset 'nope'"):
        ev.dataset("nope", store=store)
    with pytest.raises(ev.DatasetError, match="no column 'missing'"):
        ev.dataset("qa", csv, expected="missing", store=store)


async def verdict(scorer: ev.Scorer, **case: object) -> ev.Score:
    return await scorer.ascore(Case(**case))  # type: ignore[arg-type]


async def test_built_in_scorers() -> None:
    assert (await verdict(ev.exact_match(ignore_case=True), output=" Paris", expected="paris")
            ).passed
    assert not (await verdict(ev.exact_match(), output="Lyon", expected="Paris")).passed
    assert (await verdict(ev.contains("refund"), output="A REFUND is due")).passed
    assert (await verdict(ev.regex(r"\d{4}"), output={"year": "in 1999"}, expected=None)).passed
    schema = {"type": "object", "required": ["name"]}
    bad = await verdict(ev.json_valid(schema), output='{"age": 3}')
    assert not bad.passed and "name" in (bad.reason or "")
    assert (await verdict(ev.json_valid(schema), output={"name": "x"})).passed
    assert not (await verdict(ev.json_valid(), output="{nope")).passed
    assert (await verdict(ev.numeric(0.1), output="3.05", expected=3)).passed
    assert not (await verdict(ev.numeric(0.01, relative=True), output=3.1, expected=3)).passed
    similar = await verdict(ev.embedding_similarity(HashingEmbedder(), threshold=0.5),
                            output="the cat sat on the mat", expected="the cat sat on a mat")
    other = await verdict(ev.embedding_similarity(HashingEmbedder()),
                          output="quarterly revenue grew", expected="the cat sat on a mat")
    assert similar.passed and similar.value is not None and other.value is not None
    assert similar.value > other.value
    tools = ev.tool_calls(["search", "answer"], ordered=True)
    assert (await verdict(tools, output=None, tool_calls=["search", "x", "answer"])).passed
    assert not (await verdict(tools, output=None, tool_calls=["answer", "search"])).passed
    assert not (await verdict(ev.cost_budget(0.01), output=None, cost_usd=0.02)).passed
    assert (await verdict(ev.latency_budget(100), output=None, latency_ms=20.0)).passed


async def test_a_failing_scorer_is_a_missing_score_with_its_error() -> None:
    @ev.scorer(name="broken")
    def broken(output: str) -> bool:
        raise RuntimeError("boom")

    found = await verdict(broken, output="x")
    assert found.value is None and "RuntimeError: boom" in (found.reason or "")
    with pytest.raises(TypeError, match="asks for answer"):
        ev.scorer(lambda answer: True)


def test_rows_with_blank_ids_and_repeated_inputs() -> None:
    store = MemoryStore()
    frame = pd.DataFrame({"q": ["a", "b"], "example_id": ["one", None],
                          "source_run_id": [None, float("nan")]})
    data = ev.dataset("ids", frame, expected=None, store=store)
    assert data.examples[0].example_id == "one" and len(data.examples[1].example_id) == 16
    assert [e.source_run_id for e in data.examples] == [None, None]
    with pytest.raises(ev.DatasetError, match="repeats example ids"):
        ev.dataset("twice", pd.DataFrame({"q": ["a", "a"]}), store=store)
