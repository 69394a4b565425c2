"""Reading workflow documents: YAML with duplicate-key detection, shorthand normalisation."""

from __future__ import annotations

import re
from typing import Any

import yaml

from fm_lab.spec.errors import ValidationIssue, WorkflowValidationError

_EDGE_SHORTHAND = re.compile(
    r"^\s*(?P<source>[A-Za-z_]\w*)(?:\.(?P<handle>[A-Za-z_][\w-]*))?\s*->\s*(?P<target>[A-Za-z_]\w*)\s*$"
)


class _DuplicateKeyLoader(yaml.SafeLoader):
    """A SafeLoader that remembers keys given twice in one mapping."""

    duplicates: list[tuple[str, int]]


def _construct_mapping(loader: _DuplicateKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            loader.duplicates.append((str(key), key_node.start_mark.line + 1))
        seen.add(key)
    return loader.construct_mapping(node)


_DuplicateKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def load_yaml(text: str) -> tuple[dict[str, Any], list[ValidationIssue]]:
    """Parse YAML; a key given twice in one mapping (e.g. a node id) is returned as an issue."""
    loader = _DuplicateKeyLoader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise WorkflowValidationError([ValidationIssue("$", f"not valid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise WorkflowValidationError([ValidationIssue("$", "a workflow document is a mapping")])
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
