"""Nothing fm_lab reads back (stores, journals, cassettes, shards, workflow files) is decoded
with pickle, marshal, shelve, ``eval``/``exec`` or an unsafe YAML loader: every module under
src/fm_lab is walked with :mod:`ast` (imports, calls and attribute uses, not text), against a
short allow-list of reviewed uses."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src" / "fm_lab"

UNSAFE_MODULES = frozenset({"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "marshal",
                            "shelve", "joblib", "jsonpickle"})
UNSAFE_BUILTINS = frozenset({"eval", "exec", "compile", "__import__"})
UNSAFE_YAML = frozenset({"Loader", "UnsafeLoader", "FullLoader", "unsafe_load",
                         "unsafe_load_all", "full_load", "full_load_all", "load", "load_all"})
UNSAFE_CALLS = frozenset({"read_pickle", "to_pickle"})  # pandas' pickle readers and writers

# (module, what): reviewed uses that read nothing stored
ALLOWED: dict[tuple[str, str], str] = {
    ("fm_lab.expansion", "eval"): "%flow's {expr}: the user's own line in their own kernel",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def findings(source: str) -> list[tuple[int, str]]:
    """(line, what) for every unsafe use in ``source``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names
                      if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            if root in UNSAFE_MODULES:
                found.append((node.lineno, node.module))
            elif root == "yaml":
                found += [(node.lineno, f"yaml.{a.name}") for a in node.names
                          if a.name in UNSAFE_YAML]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in UNSAFE_BUILTINS:
                found.append((node.lineno, node.func.id))
        elif isinstance(node, ast.Attribute):
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            if owner == "yaml" and node.attr in UNSAFE_YAML:
                found.append((node.lineno, f"yaml.{node.attr}"))
            elif node.attr in UNSAFE_CALLS or (owner == "builtins"
                                                and node.attr in UNSAFE_BUILTINS):
                found.append((node.lineno, node.attr))
        if isinstance(node, ast.Call):  # numpy.load(..., allow_pickle=True)
            found += [(node.lineno, "allow_pickle=True") for k in node.keywords
                      if k.arg == "allow_pickle" and not (
                          isinstance(k.value, ast.Constant) and k.value.value is False)]
    return sorted(found)


def test_no_module_decodes_with_pickle_eval_or_unsafe_yaml():
    found: list[str] = []
    used: set[tuple[str, str]] = set()
    for path in sorted(SRC.rglob("*.py")):
        module = module_name(path)
        for line, what in findings(path.read_text(encoding="utf-8")):
            if (module, what) in ALLOWED:
                used.add((module, what))
                continue
            found.append(f"{path.relative_to(SRC.parent)}:{line}: {what}")
    assert not found, "unsafe decoding in src/fm_lab:\n" + "\n".join(found)
    assert used == set(ALLOWED), f"allow-listed uses that are gone: {set(ALLOWED) - used}"


def test_the_scan_finds_each_kind_of_unsafe_use():
    """The scanner itself: it must be able to fail."""
    sample = "\n".join([
        "import pickle",
        "import marshal as m",
        "from shelve import open",
        "from yaml import load, safe_load",
        "import yaml",
        "yaml.load(text, Loader=yaml.Loader)",
        "yaml.unsafe_load(text)",
        "class L(yaml.FullLoader): pass",
        "eval(text)",
        "exec(code)",
        "import builtins; builtins.eval('1')",
        "pandas.read_pickle(path)",
        "numpy.load(path, allow_pickle=True)",
        "yaml.safe_load(text)",  # fine
        "numpy.load(path, allow_pickle=False)",  # fine
    ])
    assert findings(sample) == [
        (1, "pickle"), (2, "marshal"), (3, "shelve"), (4, "yaml.load"), (6, "yaml.Loader"),
        (6, "yaml.load"), (7, "yaml.unsafe_load"), (8, "yaml.FullLoader"), (9, "eval"),
        (10, "exec"), (11, "eval"), (12, "read_pickle"), (13, "allow_pickle=True"),
    ]
