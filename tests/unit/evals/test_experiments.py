"""Experiments: rows as traced runs with scores, resume after an interruption, offline
re-scoring from a cassette, an LLM judge on the offline provider, compare on seeded data,
re-pricing, scoring stored runs."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pandas as pd
import pytest

import fm_lab
import fm_lab.evals as ev
from fm_lab.llm.offline import script
from fm_lab.store.memory_store import MemoryStore
from fm_lab.tracing.pricing import price_of, set_price

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)


def numbers(name: str, store: Any, n: int = 20) -> ev.Dataset:
    frame = pd.DataFrame({"x": list(range(n)), "expected": [str(i * 2) for i in range(n)]})
    return ev.dataset(name, frame, store=store)


def double(x: int, off_by: int = 0) -> str:
    return str(x * 2 + (off_by if x % 4 == 0 else 0))


def test_run_gives_a_row_per_variant_and_example_with_scores_and_traces(store) -> None:
    data = numbers("doubles", store)

    @ev.scorer
    def short(output: str) -> float:
        return 1.0 / len(output)

    exp = ev.run(double, data, [ev.exact_match(), short],
                 variants={"right": {}, "wrong": {"off_by": 1}}, store=store, name="doubling")
    frame = exp.df
    assert len(frame) == 40 and set(frame["variant"]) == {"right", "wrong"}
    right = frame[frame["variant"] == "right"]
    assert right["exact_match"].eq(1.0).all()
    wrong = frame[frame["variant"] == "wrong"]
    assert wrong["exact_match"].tolist() == [0.0 if x % 4 == 0 else 1.0 for x in range(20)]
    assert frame.loc[0, "inputs"] == {"x": 0} and frame.loc[0, "expected"] == "0"
    assert frame["inputs.x"].tolist() == list(range(20)) * 2
    assert frame["short"].notna().all() and frame["trace_id"].notna().all()
    summary = exp.summary().set_index("variant")
    assert summary.loc["wrong", "exact_match"] == pytest.approx(0.75)
    assert "Experiment doubling" in exp._repr_html_()
    # each row is a span (kind eval) with the target's and each scorer's spans under it
    spans = fm_lab.trace(frame.loc[0, "trace_id"], store=store)
    row = spans[spans["span_id"] == frame.loc[0, "span_id"]].iloc[0]
    children = spans[spans["parent_span_id"] == row["span_id"]]
    assert row["kind"] == "eval"
    assert sorted(children["kind"]) == ["scorer", "scorer", "target"]
    assert ev.experiments(store=store)["name"].tolist() == ["doubling"]
    assert ev.load_experiment(exp.experiment_id, store=store).status == "finished"


def test_a_memory_store_keeps_datasets_and_experiments() -> None:
    store = MemoryStore()
    data = numbers("mem", store, n=5)
    assert ev.dataset("mem", store=store).df["x"].tolist() == [0, 1, 2, 3, 4]
    exp = ev.run(double, data, [ev.exact_match()], store=store)
    assert exp.df["exact_match"].eq(1.0).all()


def test_an_interrupted_experiment_resumed_runs_only_the_rest(store) -> None:
    data = numbers("resume", store)
    calls: list[int] = []

    def flaky(x: int) -> str:
        if len(calls) == 7 and not resumed:
            raise KeyboardInterrupt  # the kernel is interrupted mid-experiment
        calls.append(x)
        return str(x * 2)

    resumed = False
    with pytest.raises(KeyboardInterrupt):
        ev.run(flaky, data, [ev.exact_match()], experiment_id="x-resume", concurrency=1,
               store=store)
    stored = ev.load_experiment("x-resume", store=store)
    assert stored.status == "running" and len(stored.df) == 7
    resumed = True
    calls.clear()
    exp = ev.run(flaky, data, [ev.exact_match()], experiment_id="x-resume", store=store)
    assert sorted(calls) == list(range(7, 20))  # the 7 stored rows did not run again
    assert len(exp.df) == 20 and exp.df["position"].is_unique
    assert exp.df["exact_match"].eq(1.0).all() and exp.status == "finished"


def judge_model(seen: list[str]) -> str:
    """An offline judge: score 1 when the OUTPUT block equals the EXPECTED block."""
    def grade(messages: list[dict[str, Any]], tools: Any) -> str:
        text = messages[-1]["content"]
        seen.append(text)
        output = re.search(r"OUTPUT:\n(.*?)\n\n", text, re.S)
        expected = re.search(r"EXPECTED:\n(.*)$", text, re.S)
        same = bool(output and expected and output.group(1) == expected.group(1))
        return json.dumps({"score": 1.0 if same else 0.2,
                           "reason": "matches" if same else "differs"})

    return script("eval-judge", fn=grade)


def test_llm_judge_on_the_offline_provider_gives_score_reason_tokens_and_cost(store) -> None:
    seen: list[str] = []
    model = judge_model(seen)
    set_price(model, input_per_mtok=1.0, output_per_mtok=2.0)
    judge = ev.llm_judge("The output equals the expected answer.", model=model, threshold=0.5)
    exp = ev.run(double, numbers("judged", store, n=4), [judge],
                 variants={"wrong": {"off_by": 1}}, store=store)
    frame = exp.df
    assert frame["judge"].tolist() == [0.2, 1.0, 1.0, 1.0]
    assert frame["judge.reason"].tolist() == ["differs", "matches", "matches", "matches"]
    assert len(seen) == 4 and "RUBRIC:\nThe output equals" in seen[0]
    verdicts = ev.scores(experiment_id=exp.experiment_id, store=store)
    assert (verdicts["input_tokens"] > 0).all() and verdicts["passed"].tolist() == [
        False, True, True, True]
    price = price_of(model)
    assert price is not None
    assert verdicts["cost_usd"].tolist() == pytest.approx(
        (verdicts["input_tokens"] * price.input + verdicts["output_tokens"] * price.output
         ).tolist())
    # the scorer's span carries the judge's tokens; the llm span hangs under it
    spans = fm_lab.trace(frame.loc[0, "trace_id"], store=store)
    scorer_span = spans[spans["span_id"] == verdicts.loc[0, "span_id"]].iloc[0]
    assert scorer_span["kind"] == "scorer"
    assert scorer_span["input_tokens"] == verdicts.loc[0, "input_tokens"]
    llm = spans[spans["parent_span_id"] == scorer_span["span_id"]]
    assert llm["kind"].tolist() == ["llm"]


def test_a_cassette_rescores_an_experiment_with_no_provider_call(store_path, tmp_path) -> None:
    store = fm_lab.Store(store_path)
    seen: list[str] = []
    judge = ev.llm_judge("Equal to expected?", model=judge_model(seen))
    tape = tmp_path / "judge.jsonl"
    exp = ev.run(double, numbers("taped", store, n=6), [judge, ev.exact_match()],
                 variants={"wrong": {"off_by": 1}}, store=store, cassette=tape)
    assert len(seen) == 6
    before = exp.df[["example_id", "judge", "judge.reason"]].copy()
    seen.clear()
    again = exp.rescore([judge], cassette=tape)  # replay: a provider call would raise
    assert seen == []
    pd.testing.assert_frame_equal(again.df[["example_id", "judge", "judge.reason"]], before)
    assert len(ev.scores(experiment_id=exp.experiment_id, scorer="judge", store=store)) == 6
    store.close()


def synthetic(store: Any, n: int = 300) -> ev.Dataset:
    return ev.dataset("synthetic", pd.DataFrame({"i": range(n), "expected": [1] * n}),
                      store=store)


def coin(i: int, accuracy: float, seed: int) -> int:
    """Seeded per (example, seed): right with probability ``accuracy``."""
    return int(random.Random(f"{seed}:{i}").random() < accuracy)


def quality(i: int, shift: float, seed: int) -> float:
    rng = random.Random(f"{seed}:{i}")
    return min(1.0, max(0.0, 0.5 + 0.2 * random.Random(i).gauss() + shift
                        + 0.05 * rng.gauss()))


def test_compare_flags_a_real_difference_and_not_noise() -> None:
    store = MemoryStore()
    data = synthetic(store)

    def target(i: int, accuracy: float, shift: float, seed: int) -> dict[str, float]:
        return {"right": coin(i, accuracy, seed), "quality": quality(i, shift, seed)}

    def right(output: dict[str, float]) -> bool:
        return bool(output["right"])

    def graded(output: dict[str, float]) -> float:
        return output["quality"]

    exp = ev.run(target, data, [right, graded], store=store, variants={
        "base": {"accuracy": 0.70, "shift": 0.0, "seed": 1},
        "same": {"accuracy": 0.70, "shift": 0.0, "seed": 2},  # noise: another draw only
        "better": {"accuracy": 0.85, "shift": 0.04, "seed": 3},
    })
    noise = ev.compare(exp.variant("base"), exp.variant("same"))
    real = ev.compare(exp.variant("base"), exp.variant("better"))
    table = real.table.set_index("metric")
    assert table.loc["right", "test"] == "McNemar exact"
    assert table.loc["graded", "test"] == "paired bootstrap"
    assert set(real.significant) >= {"right", "graded"}
    assert not set(noise.significant) & {"right", "graded"}
    assert table.loc["right", "difference"] > 0 and table.loc["graded", "low"] > 0
    assert len(real.changed("right")) > 0
    assert "<b>base</b> → <b>better</b>" in real._repr_html_()
    import matplotlib

    matplotlib.use("Agg")
    assert len(real.plot_scores().axes) == 2
    assert real.plot_quality_vs_cost("graded").axes[0].get_ylabel() == "graded"


def test_price_as_reprices_recorded_tokens_on_another_model(store) -> None:
    model = script("eval-answerer", default="four")

    def ask(question: str) -> str | None:
        return fm_lab.llm.complete([{"role": "user", "content": question}], model=model).text

    data = ev.dataset("priced", pd.DataFrame({"question": ["2+2?", "two plus two, please?"],
                                              "expected": ["four", "four"]}), store=store)
    exp = ev.run(ask, data, [ev.exact_match()], store=store)
    assert (exp.df["input_tokens"] > 0).all() and exp.df["model"].tolist() == [model] * 2
    same = ev.compare(exp, exp.experiment_id, price_as="gpt-4o-mini", store=store)
    price = price_of("gpt-4o-mini")
    assert price is not None
    expected = float((exp.df["input_tokens"] * price.input
                      + exp.df["output_tokens"] * price.output).mean())
    cost = same.table.set_index("metric").loc["cost_usd"]
    assert cost["a_mean"] == pytest.approx(expected) and expected > 0
    with pytest.raises(LookupError, match="no price known"):
        ev.compare(exp, exp, price_as="no-such-model")


def test_score_samples_stored_runs_and_scores_join_their_traces(store, register) -> None:
    name = register(lambda x: x * 2)
    workflow = {"id": "scored", "nodes": {"calc": {"type": "code", "config": {
        "function": name, "args": {"x": "{{ inputs.x }}"}}}}}
    runs = [fm_lab.run(workflow, {"x": i}, store=store) for i in range(20)]

    @ev.scorer
    def even(output: dict[str, int]) -> bool:
        return output["calc"] % 2 == 0

    found = ev.score(runs=[r.run_id for r in runs], scorers=[even], sample=0.5, seed=7,
                     store=store)
    assert 0 < len(found) < 20 and found["value"].eq(1.0).all()
    stored = ev.scores(scorer="even", store=store)
    assert sorted(stored["run_id"]) == sorted(found["run_id"])
    spans = fm_lab.traces(kind="scorer", store=store)
    joined = stored.merge(spans, on=["trace_id", "span_id"], suffixes=("", "_span"))
    assert len(joined) == len(stored) and set(joined["name"]) == {"even"}
    # production runs become a dataset: their inputs, with what they answered as expected
    data = ev.dataset("from-runs", runs=[r.run_id for r in runs[:3]], store=store)
    assert data.df["x"].tolist() == [0, 1, 2]
    assert data.examples[1].expected == {"calc": 2}


def test_a_workflow_target_runs_through_batch_map_and_resumes(store, register) -> None:
    name = register(lambda x, bump=0: x * 2 + bump)
    workflow = {"id": "wf-eval", "nodes": {"calc": {"type": "code", "config": {
        "function": name, "args": {"x": "{{ inputs.x }}", "bump": "{{ inputs.bump }}"}}}}}
    data = ev.dataset("wf", pd.DataFrame({"x": [1, 2, 3], "expected": [{"calc": 2},
                                                                     {"calc": 4},
                                                                     {"calc": 6}]}),
                      store=store)

    @ev.scorer
    def right(output: Any, expected: Any) -> bool:
        return bool(output == expected)

    exp = ev.run(workflow, data, [right], variants={"plain": {"bump": 0}, "bumped": {"bump": 1}},
                 store=store)
    frame = exp.df.set_index(["variant", "position"])
    assert frame.loc[("plain", 0), "right"] == 1.0 and frame.loc[("bumped", 0), "right"] == 0.0
    assert frame["run_id"].notna().all()
    again = ev.run(workflow, data, [right], experiment_id=exp.experiment_id, store=store)
    assert len(again.df) == 6


def test_a_store_copy_brings_datasets_experiments_and_scores(tmp_path) -> None:
    from fm_lab.store.copy import copy_store

    source, target = fm_lab.Store(tmp_path / "a.duckdb"), fm_lab.Store(tmp_path / "b.duckdb")
    exp = ev.run(double, numbers("copied", source, n=3), [ev.exact_match()], store=source)
    report = copy_store(source, target)
    assert report.copied["eval_results"] == 3 and report.copied["eval_scores"] == 3
    columns = ["variant", "example_id", "output", "expected", "exact_match"]
    copied = ev.load_experiment(exp.experiment_id, store=target).df[columns]
    pd.testing.assert_frame_equal(copied, exp.df[columns])
    assert copy_store(source, target).copied["eval_scores"] == 0  # again: nothing new
    source.close()
    target.close()


def test_an_agent_carries_scorers_with_a_sampling_rate(store) -> None:
    from fm_lab.agents import Agent

    agent = Agent("helper", "Answer briefly.", model=script("eval-helper", default="Paris."))
    watched = ev.scored(agent, [ev.contains("paris"), ev.regex(r"\.$")], store=store)
    result = watched.generate("Capital of France?", store=store)
    assert result.text == "Paris." and watched.name == "helper"
    verdicts = ev.scores(store=store)
    assert sorted(verdicts["scorer"]) == ["contains", "regex"] and verdicts["value"].eq(1).all()
    assert set(verdicts["trace_id"]) == {result.trace_id}  # in the answer's own trace
    spans = fm_lab.trace(result.trace_id, store=store)
    assert {"agent", "llm", "scorer"} <= set(spans["kind"])
    sampled = ev.scored(agent, [ev.contains("paris")], sample=0.3, seed=2, store=store)
    for _ in range(20):
        sampled.generate("Capital of France?", store=store)
    kept = len(ev.scores(scorer="contains", store=store)) - 1
    assert 0 < kept < 20


def test_workflow_nodes_carry_scorers_with_a_sampling_rate(store) -> None:
    """``scored(wf, {node: scorers})``: each finished run of the workflow has that node's
    output scored off the run's path, in the run's trace; a failed node is not scored."""
    answers = iter(["A refund is on its way.", "We are sorry.", "Refund sent."] * 10)
    wf = {"id": "support", "nodes": {
        "answer": {"type": "llm", "config": {"model": script(
            "eval-node", fn=lambda messages, tools: next(answers)), "prompt": "Help."}},
        "done": {"type": "template", "config": {"template": "{{ nodes.answer.output }}"}}},
        "edges": ["answer -> done"]}
    with pytest.raises(ValueError, match="has no node nowhere"):
        ev.scored(wf, {"nowhere": [ev.contains("refund")]}, store=store)
    ev.scored(wf, {"answer": [ev.contains("refund")]}, store=store)
    scoring = ev.scored(wf, {"answer": [ev.contains("refund")]}, store=store)  # cell re-run
    runs = [fm_lab.run(wf, store=store) for _ in range(3)]
    scoring.wait()
    verdicts = ev.scores(scorer="contains", store=store).sort_values("run_id")
    assert scoring.errors == []
    assert sorted(verdicts["run_id"]) == sorted(r.run_id for r in runs)
    by_run = dict(zip(verdicts["run_id"], verdicts["value"], strict=True))
    assert [by_run[r.run_id] for r in runs] == [1.0, 0.0, 1.0]
    trace = fm_lab.trace(runs[0].run_id, store=store)
    assert "scorer" in set(trace["kind"])  # in the run's own trace
    scoring.stop()
    fm_lab.run(wf, store=store)
    assert len(ev.scores(scorer="contains", store=store)) == 3  # stopped: not scored

    sampled = ev.scored(wf, {"answer": [ev.contains("refund")]}, sample=0.3, seed=4,
                        store=store)
    for _ in range(20):
        fm_lab.run(wf, store=store)
    sampled.wait()
    sampled.stop()
    assert 0 < len(ev.scores(scorer="contains", store=store)) - 3 < 20


def test_an_agent_target_with_model_variants_replays_from_a_cassette(store_path,
                                                                     tmp_path) -> None:
    from fm_lab.agents import Agent

    store = fm_lab.Store(store_path)
    asked: list[str] = []

    def capital(messages: list[dict[str, Any]], tools: Any) -> str:
        asked.append(messages[-1]["content"])
        return "Paris." if "France" in messages[-1]["content"] else "Rome."

    good, lazy = script("eval-good", fn=capital), script("eval-lazy", default="Rome.")
    agent = Agent("geo", "Answer with the capital.", model=lazy)
    data = ev.dataset("capitals", pd.DataFrame({"question": ["France?", "Italy?"],
                                                "expected": ["Paris.", "Rome."]}), store=store)
    tape = tmp_path / "agent.jsonl"
    exp = ev.run(agent, data, [ev.exact_match()], store=store, cassette=tape,
                 variants={"lazy": {}, "good": {"model": good}})
    frame = exp.df.set_index(["variant", "position"])
    assert frame.loc[("lazy", 0), "exact_match"] == 0.0
    assert frame.loc[("good", 0), "exact_match"] == 1.0
    assert frame.loc[("good", 0), "model"] == good and frame["input_tokens"].gt(0).all()
    assert agent.model == lazy  # variants change a copy
    assert len(asked) == 2
    asked.clear()
    again = ev.run(agent, data, [ev.exact_match()], store=store, cassette=tape,
                   cassette_mode="replay", variants={"lazy": {}, "good": {"model": good}})
    assert asked == [] and again.df["output"].tolist() == exp.df["output"].tolist()
    store.close()


def test_score_a_stored_trace_by_its_root_span(store) -> None:
    from fm_lab.agents import Agent

    agent = Agent("tracer", "Answer.", model=script("eval-tracer", default="Oslo."))
    result = agent.generate("Capital of Norway?", store=store)

    @ev.scorer
    def says_oslo(output: Any, inputs: dict[str, Any]) -> bool:
        return "Oslo" in str(output) and "Norway" in str(inputs)

    found = ev.score(traces=[result.trace_id], scorers=[says_oslo], store=store)
    assert found["value"].tolist() == [1.0] and found["trace_id"].tolist() == [result.trace_id]
    with pytest.raises(LookupError, match="no trace 'nope'"):
        ev.score(traces=["nope"], scorers=[says_oslo], store=store)
