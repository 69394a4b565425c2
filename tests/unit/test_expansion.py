"""``$var`` and ``{expr}`` in ``%flow`` lines: expanded like IPython, word by word."""

from __future__ import annotations

import pytest

from fm_lab.expansion import Bound, ExpansionError, expand_words

NS = {"rid": "0001abcd", "params": {"who": "Ada"}, "n": 2, "title": "a b",
      "run": type("R", (), {"run_id": "r9"})()}


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("show $rid", ["show", "0001abcd"]),
        ("show {rid}", ["show", "0001abcd"]),
        ("show $run.run_id", ["show", "r9"]),
        ("rerun $rid node-{n+1}", ["rerun", "0001abcd", "node-3"]),
        ("runs --limit={n*10} --status=$rid", ["runs", "--limit", "20", "--status", "0001abcd"]),
        ("show '{n + 1}'", ["show", "3"]),  # quotes group a word; they do not stop expansion
        ("resume x --label $$rid", ["resume", "x", "--label", "$rid"]),  # $$ is a literal $
        ("resume x --label cost-{{n}}", ["resume", "x", "--label", "cost-{n}"]),
        ("show $title", ["show", "a b"]),  # a value stays one word
    ],
)
def test_words_expand_like_ipython(line, words):
    assert expand_words(line, NS) == words


def test_json_words_are_literal_even_with_dollars_and_braces():
    line = """resume x --data '{"approved": true, "note": "$rid {n}"}' --inputs='[1, {"a": 2}]'"""
    assert expand_words(line, NS) == [
        "resume", "x", "--data", '{"approved": true, "note": "$rid {n}"}',
        '--inputs=[1, {"a": 2}]']


def test_a_whole_word_expression_keeps_the_object():
    words = expand_words("run wf --inputs {params} --data $params -i=x --inputs={params}", NS)
    assert words[3] == "{'who': 'Ada'}" and isinstance(words[3], Bound)
    assert words[3].value is NS["params"] and words[5].value is NS["params"]
    assert words[7:] == ["--inputs", "{'who': 'Ada'}"] and words[8].value is NS["params"]
    assert not isinstance(expand_words("show x-{rid}", NS)[1], Bound)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("show {nowhere}", "{nowhere}: no variable 'nowhere' in the notebook"),
        ("show $nowhere", r"\$nowhere: no variable 'nowhere'"),
        ("show run-{1/0}", "run-{1/0}: ZeroDivisionError: division by zero"),
        ("show 'abc", "No closing quotation"),
    ],
)
def test_words_that_cannot_expand_say_why(line, message):
    with pytest.raises(ExpansionError, match=message):
        expand_words(line, NS)


def test_unbalanced_braces_are_left_for_the_value_parser():
    assert expand_words("run wf --inputs {oops", NS) == ["run", "wf", "--inputs", "{oops"]
