"""Reading workflow documents: bounded JSON (see :mod:`fm_lab.spec.limits`; YAML in
:mod:`fm_lab.spec.yaml_io`, which imports PyYAML), shorthand normalisation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fm_lab.spec import limits
from fm_lab.spec.errors import DocumentError, ValidationIssue

_EDGE_SHORTHAND = re.compile(
    r"^\s*(?P<source>[A-Za-z_]\w*)(?:\.(?P<handle>[A-Za-z_][\w-]*))?\s*->\s*(?P<target>[A-Za-z_]\w*)\s*$"
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


def check_length(text: str) -> None:
    """Refuse text longer than ``MAX_DOCUMENT_BYTES`` characters."""
    if len(text) > limits.MAX_DOCUMENT_BYTES:
        raise DocumentError(f"is larger than {limits.MAX_DOCUMENT_BYTES:,} characters",
                            code="too_big")


def load_json(text: str) -> Any:
    """``json.loads`` bounded in size and depth, raising :class:`DocumentError`."""
    check_length(text)
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
