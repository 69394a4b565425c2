"""Sandboxed template rendering: whole expressions keep their JSON type, mixed text is text."""

from __future__ import annotations

import pytest
from jinja2 import TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError

from fm_lab.engine.templating import has_templates, render_template, render_value

SCOPE = {
    "inputs": {"n": 3, "f": 1.5, "items": [1, "two", {"three": 3}], "obj": {"k": [1, 2]},
               "flag": False, "nothing": None, "name": "ada"},
    "nodes": {"fetch": {"output": {"items": [{"name": "a"}, {"name": "b"}]},
                        "status": "succeeded"}},
    "state": {"count": 0},
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ inputs.n }}", 3),
        ("  {{ inputs.n }}\n", 3),
        ("{{ inputs.f }}", 1.5),
        ("{{ inputs.items }}", [1, "two", {"three": 3}]),
        ("{{ inputs.obj }}", {"k": [1, 2]}),
        ("{{ inputs.flag }}", False),
        ("{{ inputs.nothing }}", None),
        ("{{ state.count }}", 0),
        ("{{ inputs.n > 2 }}", True),
        ("{{ inputs.items | length }}", 3),
        ("{{ nodes.fetch.output.items | map(attribute='name') | list }}", ["a", "b"]),
        ("{{ nodes['fetch'].output['items'][1].name }}", "b"),
        ("{{ {'a': inputs.n, 'b': [inputs.name]} }}", {"a": 3, "b": ["ada"]}),
        ("{{ json('[1, 2]') }}", [1, 2]),
        ("{{ '}}' }}", "}}"),
    ],
)
def test_whole_expressions_keep_their_type(source, expected):
    value = render_template(source, SCOPE)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("n={{ inputs.n }}", "n=3"),
        ("{{ inputs.n }}{{ inputs.n }}", "33"),
        ("{{ inputs.n }} and {{ inputs.f }}", "3 and 1.5"),
        ("{{ inputs.items }}!", "[1, 'two', {'three': 3}]!"),
        ("{% if inputs.n > 1 %}many{% else %}one{% endif %}", "many"),
        ("{% for i in nodes.fetch.output.items %}{{ i.name }};{% endfor %}", "a;b;"),
        ("{{ inputs.obj | tojson }}", '{"k":[1,2]}'),
        ("<{{ inputs.name }}>", "<ada>"),  # no HTML escaping
    ],
)
def test_mixed_text_renders_a_string(source, expected):
    assert render_template(source, SCOPE) == expected


def test_render_value_walks_dicts_and_lists():
    value = {
        "count": "{{ inputs.n }}",
        "text": "hi {{ inputs.name }}",
        "list": ["{{ inputs.items }}", "plain", 4, None, {"deep": "{{ inputs.flag }}"}],
        "plain": "no {braces} here",
        "number": 1.25,
    }
    assert render_value(value, SCOPE) == {
        "count": 3,
        "text": "hi ada",
        "list": [[1, "two", {"three": 3}], "plain", 4, None, {"deep": False}],
        "plain": "no {braces} here",
        "number": 1.25,
    }
    assert render_value("plain", {}) == "plain"
    assert render_value(7, {}) == 7


def test_render_value_does_not_mutate_its_input():
    value = {"a": ["{{ inputs.n }}"]}
    render_value(value, SCOPE)
    assert value == {"a": ["{{ inputs.n }}"]}


def test_has_templates():
    assert has_templates({"a": [1, {"b": "{{ x }}"}]})
    assert has_templates("{% if x %}y{% endif %}")
    assert not has_templates({"a": [1, {"b": "{ x }"}], "c": None})


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "text {{ ''.__class__ }}",
        "{{ inputs.__class__ }}",
        "{{ render_value.__globals__ }}",
        "{{ inputs.items.append(4) }}",
        "{{ inputs.obj.update({'x': 1}) }}",
        "{% set _ = inputs.items.pop() %}x",
    ],
)
def test_sandbox_blocks_unsafe_access_and_mutation(source):
    scope = {**SCOPE, "render_value": render_value,
             "inputs": {**SCOPE["inputs"], "items": [1, 2], "obj": {"k": 1}}}
    with pytest.raises(SecurityError):
        render_template(source, scope)
    assert scope["inputs"]["items"] == [1, 2]
    assert scope["inputs"]["obj"] == {"k": 1}


@pytest.mark.parametrize(
    ("source", "missing"),
    [
        ("{{ inputs.missing }}", "'missing'"),
        ("value: {{ inputs.missing }}", "'missing'"),
        ("{{ inputs.obj.nope }}", "'nope'"),
        ("{{ nodes.ghost.output }}", "'ghost'"),
        ("{{ nodes.fetch.output.items[0].title }}", "'title'"),
        ("{{ inputs.missing.deeper }}", "'missing'"),
        ("{{ undefined_name }}", "'undefined_name'"),
        ("{% if inputs.missing %}x{% endif %}", "'missing'"),
        ("{{ inputs.missing + 1 }}", "'missing'"),
    ],
)
def test_strict_undefined_names_what_is_missing(source, missing):
    with pytest.raises(UndefinedError) as info:
        render_template(source, SCOPE)
    assert missing in str(info.value)


@pytest.mark.parametrize(
    "source",
    [
        "{{ [inputs.missing] }}",
        "{{ {'k': inputs.missing} }}",
        "{{ [1, [inputs.obj.nope]] }}",
    ],
)
def test_strict_undefined_inside_a_literal_is_an_error_too(source):
    # a whole expression yields a JSON value; an Undefined hidden inside a list or dict is not
    # one and must fail like any other missing name, naming it
    with pytest.raises(UndefinedError) as info:
        render_template(source, SCOPE)
    assert "'missing'" in str(info.value) or "'nope'" in str(info.value)


def test_defaults_and_tests_for_missing_values_still_work():
    assert render_template("{{ inputs.missing | default(5) }}", SCOPE) == 5
    assert render_template("{{ inputs.missing is defined }}", SCOPE) is False
    assert render_template("{{ inputs.get('missing') }}", SCOPE) is None


def test_syntax_errors_raise():
    with pytest.raises(TemplateSyntaxError):
        render_template("{{ 1 + }}", SCOPE)
    with pytest.raises(TemplateSyntaxError):
        render_template("{% if x %}unclosed", SCOPE)


@pytest.mark.parametrize("source", [
    "{{ inputs.n }}", " {{ inputs . obj . k }} ", "{{ nodes.fetch.output.items }}",
    "{{ inputs.items }}", "{{ inputs.nothing }}", "{{ none }}", "{{ True }}",
    "{{ inputs.name.upper }}", "{{ inputs.obj.items }}", "{{ json }}", "{{ inputs }}"])
def test_a_dotted_path_renders_as_jinja_renders_it(source):
    """Paths looked up without Jinja give Jinja's value (the same object); the rest (literals,
    attributes of values, globals) go to Jinja."""
    from fm_lab.engine.templating import _compiled

    expected = _compiled(source)(**SCOPE)
    got = render_template(source, SCOPE)
    if callable(expected):
        assert callable(got) and got.__name__ == expected.__name__
    else:
        assert got == expected and (got is expected or not isinstance(got, dict | list))


def test_a_dotted_path_to_a_missing_key_fails_as_in_jinja():
    with pytest.raises(UndefinedError, match="nope"):
        render_template("{{ nodes.fetch.nope }}", SCOPE)
