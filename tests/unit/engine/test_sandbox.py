"""The template sandbox's limits on operations that make huge values."""

from __future__ import annotations

import pytest
from jinja2.sandbox import SecurityError

from fm_lab.engine import sandbox
from fm_lab.engine.templating import render_template

SCOPE: dict[str, object] = {"inputs": {"n": 3, "text": "ab"}, "nodes": {}, "state": {}}


@pytest.mark.parametrize(("source", "expected"), [
    ("{{ 'ab' * 3 }}", "ababab"),
    ("{{ [1] * inputs.n }}", [1, 1, 1]),
    ("{{ 2 ** 100 }}", 2**100),
    ("{{ 7 % 3 }}", 1),
    ("{{ '%05d' % 42 }}", "00042"),
    ("{{ '%s-%s'|format(1, 2) }}", "1-2"),
    ("{{ '{:>6}'.format('x') }}", "     x"),
    ("{{ inputs.text|center(6) }}", "  ab  "),
    ("{{ inputs.text.zfill(4) }}", "00ab"),
    ("{{ [1, 2, 3]|batch(2)|list }}", [[1, 2], [3]]),
    ("a{{ 'b'|indent(2) }}", "ab"),
])
def test_ordinary_uses_still_work(source, expected):
    assert render_template(source, SCOPE) == expected


@pytest.mark.parametrize(("source", "limit"), [
    ("{{ 'a' * 10**9 }}", "repeating 1 items 1000000000 times"),
    ("{{ 10**9 * [0] }}", "repeating 1 items 1000000000 times"),
    ("{{ 10 ** (10 ** 10) }}", r"the power 10 \*\* 10000000000"),
    ("{{ '%0999999999d' % 1 }}", "a format width"),
    ("{{ '%*d' % (10**9, 1) }}", "a format width"),
    ("{{ '{:0999999999}'.format(1) }}", "a format width"),
    ("{{ '{:{}}'.format(1, 10**9) }}", "a format width"),
    ("{{ 'x'|center(10**9) }}", "center width"),
    ("{{ 'x'|indent(10**9, true) }}", "repeating"),
    ("{{ [1]|batch(10**9, 0)|list }}", "batch width"),
    ("{{ 'x'.rjust(10**9) }}", "rjust width"),
    ("{{ '\\t'.expandtabs(10**9) }}", "expandtabs width"),
])
def test_amplifiers_are_refused_before_they_allocate(source, limit):
    with pytest.raises(SecurityError, match=f"{limit}.* is over the template sandbox's limit"):
        render_template(source, SCOPE)


def test_rendered_text_is_bounded(monkeypatch):
    monkeypatch.setattr(sandbox, "MAX_OUTPUT", 1000)
    assert len(render_template("{% for i in range(10) %}{{ 'x' * 99 }}{% endfor %}", SCOPE)) \
        == 990
    with pytest.raises(SecurityError, match="rendered text of more than 1000 characters"):
        render_template("{% for i in range(11) %}{{ 'x' * 99 }}{% endfor %}", SCOPE)


def test_lipsum_is_gone_and_range_stays_bounded():
    with pytest.raises(Exception, match="'lipsum' is undefined"):
        render_template("{{ lipsum(n=10**6) }}", SCOPE)
    with pytest.raises(OverflowError, match="Range too big"):
        render_template("{{ range(10**9)|list }}", SCOPE)
