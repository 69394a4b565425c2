"""Reading YAML documents bounded in size, depth and alias expansion (see
:mod:`fm_lab.spec.limits`), with duplicate-key detection. PyYAML loads with this module, when a
document is YAML."""

from __future__ import annotations

from typing import Any, TypeVar

import yaml

from fm_lab.spec import limits
from fm_lab.spec.errors import DocumentError, ValidationIssue
from fm_lab.spec.io import check_length


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that refuses documents nested deeper than ``MAX_DEPTH`` while composing
    (before PyYAML's recursion could hit Python's limit) and documents whose aliases expand
    to more than ``MAX_YAML_NODES`` nodes or refer to themselves, before constructing them."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent, yaml.ScalarEvent):  # only collections nest
            return super().compose_node(parent, index)
        self.depth += 1
        try:
            if self.depth > limits.MAX_DEPTH:
                line = self.peek_event().start_mark.line + 1  # type: ignore[no-untyped-call]
                raise DocumentError(
                    f"nested deeper than {limits.MAX_DEPTH} levels (line {line})", code="too_deep"
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def bounded_data(self) -> Any:
        """The document's data, once its node graph has passed :func:`_check_expansion`."""
        node = self.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return self.construct_document(node)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph whose aliases expand past the limits, or loop (iterative DFS,
    each shared node counted once with its expanded size and depth)."""
    sizes: dict[int, tuple[int, int]] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        children = _children(node)
        if finished:
            open_nodes.discard(key)
            measured = [sizes[id(c)] for c in children]
            size = 1 + sum(m[0] for m in measured)
            nested = not isinstance(node, yaml.ScalarNode)
            depth = 1 + max((m[1] for m in measured), default=0) if nested else 0
            if size > limits.MAX_YAML_NODES:
                raise DocumentError(
                    f"its aliases expand to more than {limits.MAX_YAML_NODES:,} nodes "
                    "(an alias bomb?)", code="too_big")
            if depth > limits.MAX_DEPTH:
                raise DocumentError(
                    f"its aliases expand to a nesting deeper than {limits.MAX_DEPTH} levels",
                    code="too_deep")
            sizes[key] = (size, depth)
        elif key in open_nodes:
            raise DocumentError("an alias refers to a node that contains it (a recursive "
                                "document)", code="recursive")
        elif key not in sizes:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


class _DuplicateKeyLoader(_BoundedLoader):
    """A bounded loader that remembers keys given twice in one mapping."""

    duplicates: list[tuple[str, int]]


def _construct_mapping(loader: _DuplicateKeyLoader, node: yaml.MappingNode) -> Any:
    # a generator, as PyYAML's own: nested mappings are filled in later, not by recursion
    data: dict[Any, Any] = {}
    yield data
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            if key in seen:
                loader.duplicates.append((str(key), key_node.start_mark.line + 1))
            seen.add(key)
        except TypeError:  # an unhashable key: construct_mapping reports it
            pass
    data.update(loader.construct_mapping(node))


_DuplicateKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` bounded in size, depth and alias expansion; syntax errors, as the
    limits, raise :class:`DocumentError` with a one-line message."""
    check_length(text)
    return _load(_loader(_BoundedLoader, text))


_L = TypeVar("_L", bound=_BoundedLoader)


def _loader(cls: type[_L], text: str) -> _L:
    try:
        return cls(text)  # reads the first chunk: a control character fails here
    except yaml.YAMLError as exc:
        raise _yaml_error(exc) from None


def _load(loader: _BoundedLoader) -> Any:
    try:
        return loader.bounded_data()
    except yaml.YAMLError as exc:
        raise _yaml_error(exc) from None
    finally:
        loader.dispose()


def _yaml_error(exc: yaml.YAMLError) -> DocumentError:
    return DocumentError(f"not valid YAML: {_yaml_message(exc)}", code="yaml")


def _yaml_message(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        context = f"{exc.context} " if exc.context else ""
        return f"{context}{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())


def load_yaml(text: str) -> tuple[dict[str, Any], list[ValidationIssue]]:
    """Parse YAML; a key given twice in one mapping (e.g. a node id) is returned as an issue."""
    check_length(text)
    loader = _loader(_DuplicateKeyLoader, text)
    loader.duplicates = []
    data = _load(loader)
    if not isinstance(data, dict):
        raise DocumentError("a workflow document is a mapping", code="not_a_mapping")
    nodes = data.get("nodes")
    node_ids = set(nodes) if isinstance(nodes, dict) else set()
    issues = [
        ValidationIssue(
            f"nodes.{key}" if key in node_ids else f"line {line}",
            f"{'node id' if key in node_ids else 'key'} {key!r} is given twice (line {line}); "
            "the last one would silently win",
            "duplicate_id",
        )
        for key, line in loader.duplicates
    ]
    return data, issues
