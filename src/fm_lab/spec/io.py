"""Reading workflow documents: bounded YAML and JSON (see :mod:`fm_lab.spec.limits`), duplicate-key
detection, shorthand normalisation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml

from fm_lab.spec import limits
from fm_lab.spec.errors import DocumentError, ValidationIssue

_EDGE_SHORTHAND = re.compile(
    r"^\s*(?P<source>[A-Za-z_]\w*)(?:\.(?P<handle>[A-Za-z_][\w-]*))?\s*->\s*(?P<target>[A-Za-z_]\w*)\s*$"
)


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


def read_document(path: str | Path, what: str = "workflow file") -> str:
    """The text of a document file, refusing what is not one: a directory, a file larger
    than ``MAX_DOCUMENT_BYTES``, text that is not UTF-8 (a UTF-8 BOM is accepted)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no {what} at {path}")
    if path.is_dir():
        raise DocumentError(f"is a directory, not a {what}", str(path), "not_a_file")
    try:
        with path.open("rb") as handle:
            data = handle.read(limits.MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise DocumentError(f"cannot be read ({exc.strerror})", str(path), "unreadable") from None
    if len(data) > limits.MAX_DOCUMENT_BYTES:
        raise DocumentError(f"is larger than {limits.MAX_DOCUMENT_BYTES:,} bytes", str(path),
                            "too_big")
    return decode_document(data, str(path))


_UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff")


def decode_document(data: bytes, source: str | None = None) -> str:
    """UTF-8 text of ``data`` (without a UTF-8 BOM); a clear error for anything else."""
    if data.startswith(_UTF16_32_BOMS):
        raise DocumentError("is UTF-16 or UTF-32 encoded; save it as UTF-8", source, "encoding")
    if b"\x00" in data:
        raise DocumentError("contains NUL bytes (UTF-16 text or a binary file?); save it as "
                            "UTF-8 text", source, "encoding")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it "
            "as UTF-8", source, "encoding") from None


def _check_length(text: str) -> None:
    if len(text) > limits.MAX_DOCUMENT_BYTES:
        raise DocumentError(f"is larger than {limits.MAX_DOCUMENT_BYTES:,} characters",
                            code="too_big")


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` bounded in size, depth and alias expansion; syntax errors, as the
    limits, raise :class:`DocumentError` with a one-line message."""
    _check_length(text)
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


def load_json(text: str) -> Any:
    """``json.loads`` bounded in size and depth, raising :class:`DocumentError`."""
    _check_length(text)
    too_deep = DocumentError(f"nested deeper than {limits.MAX_DEPTH} levels", code="too_deep")
    try:
        data = json.loads(text)
    except RecursionError:
        raise too_deep from None
    except json.JSONDecodeError as exc:
        raise DocumentError(f"not JSON: {exc}", code="json") from None
    if limits.json_problem(data, "$", plain=False) is not None:
        raise too_deep
    return data


def load_yaml(text: str) -> tuple[dict[str, Any], list[ValidationIssue]]:
    """Parse YAML; a key given twice in one mapping (e.g. a node id) is returned as an issue."""
    _check_length(text)
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


def normalise(data: Any) -> tuple[dict[str, Any], list[ValidationIssue]]:
    """Accept the friendly forms (nodes as a list, ``"a.yes -> b"`` edges) and return the
    canonical dict plus the issues found on the way (duplicate ids, bad edge strings)."""
    issues: list[ValidationIssue] = []
    if not isinstance(data, dict):
        return {}, [ValidationIssue("$", "a workflow document is a mapping")]
    out = dict(data)
    nodes = data.get("nodes", {})
    if isinstance(nodes, list):
        keyed: dict[str, Any] = {}
        for index, node in enumerate(nodes):
            node_id = node.get("id") if isinstance(node, dict) else None
            if not isinstance(node_id, str):
                issues.append(ValidationIssue(f"nodes[{index}].id", "a node needs a string id"))
            elif node_id in keyed:
                issues.append(
                    ValidationIssue(
                        f"nodes[{index}].id", f"duplicate node id {node_id!r}", "duplicate_id"
                    )
                )
            else:
                keyed[node_id] = node
        nodes = keyed
    if isinstance(nodes, dict):
        for key in [k for k in nodes if not isinstance(k, str)]:
            hint = (
                " (YAML reads yes/no/on/off/true/false as booleans: quote the id)"
                if isinstance(key, bool)
                else ""
            )
            issues.append(
                ValidationIssue(f"nodes.{key}", f"node id {key!r} is not a string{hint}", "bad_id")
            )
            nodes = {**{k: v for k, v in nodes.items() if k != key}, str(key): nodes[key]}
        out["nodes"] = {
            key: ({**value, "id": key} if isinstance(value, dict) else value)
            for key, value in nodes.items()
        }
        for key, value in nodes.items():
            if isinstance(value, dict) and "id" in value and value["id"] != key:
                issues.append(
                    ValidationIssue(f"nodes.{key}.id", f"id {value['id']!r} differs from key")
                )
    edges = data.get("edges", [])
    if isinstance(edges, list):
        out["edges"] = [_edge(edge, index, issues) for index, edge in enumerate(edges)]
    return out, issues


def _edge(edge: Any, index: int, issues: list[ValidationIssue]) -> Any:
    if not isinstance(edge, str):
        return edge
    match = _EDGE_SHORTHAND.match(edge)
    if match is None:
        issues.append(
            ValidationIssue(
                f"edges[{index}]", f"cannot read edge {edge!r}; write 'a -> b' or 'a.handle -> b'"
            )
        )
        return {"source": "", "target": ""}
    result = {"source": match["source"], "target": match["target"]}
    if match["handle"]:
        result["source_handle"] = match["handle"]
    return result
