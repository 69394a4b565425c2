"""Imports point down the layer order written in docs/design.md ("Layers"), lazy ones included.

Every ``import`` in src/fm_lab is walked with :mod:`ast`: at module level, inside functions and
under ``TYPE_CHECKING`` (held to the same order: a type from above is a dependency too; a lower
layer that needs one declares a Protocol). The order is parsed from the document, so the two
cannot drift.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = SRC / "fm_lab"
DESIGN = ROOT / "docs" / "design.md"

# (importer, imported): known upward imports in files this change does not own; each one is a
# debt with its fix named. An entry that no longer occurs fails the test (remove it).
ALLOWED: dict[tuple[str, str], str] = {}  # (importer, imported): why; empty: none left


@dataclass(frozen=True)
class Layer:
    index: int
    names: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.index}: {self.names[0]}"


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    importer: str
    imported: str
    how: str  # "", "lazy", "TYPE_CHECKING"


def layers() -> list[Layer]:
    """The numbered list under "## Layers" in docs/design.md, lowest first."""
    text = DESIGN.read_text(encoding="utf-8")
    found = re.search(r"^## Layers\n(.*?)(?=^## )", text, re.S | re.M)
    assert found, "docs/design.md has no '## Layers' section"
    items: list[str] = []  # an item goes on over indented lines
    for line in found.group(1).splitlines():
        if re.match(r"\d+\. ", line):
            items.append(line)
        elif items and line.startswith("   "):
            items[-1] += " " + line.strip()
    result = []
    for item in items:
        # the modules are the backticked names before the dash that starts the reason
        names = tuple(re.findall(r"`(fm_lab(?:\.\w+)*)`", item.split(" — ")[0]))
        assert names, f"a layer names no module: {item!r}"
        result.append(Layer(len(result) + 1, names))
    assert len(result) > 5, "the Layers section lists too few layers"
    return result


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer_of(module: str, order: list[Layer]) -> Layer | None:
    """The layer naming ``module`` or its longest listed parent (the package ``fm_lab`` itself
    places only its ``__init__``: a module must be listed under its own package)."""
    best: tuple[int, Layer] | None = None
    for layer in order:
        for name in layer.names:
            matches = module == name or (name != "fm_lab" and module.startswith(name + "."))
            if matches and (best is None or len(name) > best[0]):
                best = (len(name), layer)
    return best[1] if best else None


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    base = node.module or ""
    if node.level:
        package = importer.split(".") if is_package else importer.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, *([base] if base else [])])
    if not (base == "fm_lab" or base.startswith("fm_lab.")):
        return []
    # `from fm_lab.engine import api` imports the module fm_lab.engine.api
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def imports_of(path: Path) -> list[Import]:
    importer = module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            how = "TYPE_CHECKING" if typing_only else "lazy" if lazy else ""
            if isinstance(child, ast.Import):
                found.extend(Import(path, child.lineno, importer, a.name, how)
                             for a in child.names
                             if a.name == "fm_lab" or a.name.startswith("fm_lab."))
            elif isinstance(child, ast.ImportFrom):
                found.extend(Import(path, child.lineno, importer, name, how)
                             for name in _resolve(importer, path.name == "__init__.py", child))
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), lazy, True)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), lazy, typing_only)
                continue
            visit(child, lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                    ast.Lambda)), typing_only)

    visit(tree, False, False)
    return found


def all_imports() -> list[Import]:
    return [found for path in sorted(PACKAGE.rglob("*.py")) for found in imports_of(path)]


def test_every_module_has_a_layer() -> None:
    order = layers()
    unplaced = sorted(m for m in MODULES if layer_of(m, order) is None)
    assert not unplaced, "modules missing from docs/design.md 'Layers': " + ", ".join(unplaced)


def test_a_layer_lists_each_module_once() -> None:
    names = [name for layer in layers() for name in layer.names]
    assert len(names) == len(set(names))
    assert not [name for name in names if name not in MODULES], "listed but not in src/fm_lab"


def test_imports_point_down_the_layers() -> None:
    order = layers()
    upward: list[str] = []
    used: set[tuple[str, str]] = set()
    for found in dict.fromkeys(all_imports()):  # `from x import a, b`: one finding
        mine, theirs = layer_of(found.importer, order), layer_of(found.imported, order)
        if mine is None or theirs is None or theirs.index <= mine.index:
            continue
        if (found.importer, found.imported) in ALLOWED:
            used.add((found.importer, found.imported))
            continue
        where = f"{found.path.relative_to(ROOT)}:{found.line}"
        how = f" [{found.how}]" if found.how else ""
        upward.append(f"{where} {found.importer} (layer {mine.label}) -> {found.imported} "
                      f"(layer {theirs.label}){how}")
    stale = sorted(set(ALLOWED) - used)
    assert not upward, f"{len(upward)} imports point upward:\n" + "\n".join(upward)
    assert not stale, f"allow-listed imports that no longer occur (remove them): {stale}"


def test_the_walk_sees_lazy_and_type_checking_imports() -> None:
    """The walker itself: every kind of import is found, relative ones resolved."""
    source = PACKAGE / "spec" / "validate.py"
    kinds = {found.how for found in imports_of(source)}
    assert kinds == {"", "lazy", "TYPE_CHECKING"}
    tree = ast.parse("from .models import Workflow\n")
    node = tree.body[0]
    assert isinstance(node, ast.ImportFrom)
    assert _resolve("fm_lab.spec.validate", False, node) == ["fm_lab.spec.models"]
    assert _resolve("fm_lab.spec", True, node) == ["fm_lab.spec.models"]
