"""The public API changes only on purpose, and importing it stays fast.

``EXPECTED`` is the deliberate snapshot of the API (as httpx keeps one): fm_lab/__init__.py
lists its names once, in ``_EXPORTS``; its ``TYPE_CHECKING`` imports repeat them for type
checkers and are held equal here.
"""

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import fm_lab
from fm_lab.engine import api

EXPECTED = {
    "Edge", "Node", "NodeContext", "NodeError", "NodeResult", "NodeType", "RetryPolicy", "Run",
    "RunFailedError", "RunLockedError", "RunNotFoundError", "StateValidationError", "Store",
    "StoreLockedError", "RunStore", "MemoryStore", "UnsupportedStoreError",
    "ValidationIssue", "Workflow", "WorkflowBuilder", "WorkflowValidationError",
    "arerun", "aresume", "arun", "fork", "afork", "ForkError", "diff", "replay", "areplay",
    "connect", "default_store", "get_run", "register_function", "register_node",
    "rerun", "resume", "run", "submit", "asubmit",
    "runs", "validate", "pending", "signal", "asignal", "cancel", "recover", "ResumeError",
    "ResumeValidationError", "traces", "trace", "usage", "sql", "slowest", "errors", "set_price",
    "plot_trace", "plot_usage", "secret", "export_otel", "Agent", "tool",
    "Memory",
    "GraphWidget",
    "audit", "delete_run", "workflows", "store_settings", "set_store_setting", "current_user",
    "stream", "stream_resume", "RunStream",
}


def test_exported_names():
    assert set(fm_lab.__all__) == EXPECTED
    assert len(fm_lab.__all__) == len(EXPECTED)
    for name in EXPECTED:
        assert getattr(fm_lab, name) is not None


def test_type_checkers_see_the_same_names_from_the_same_modules():
    tree = ast.parse(Path(fm_lab.__file__).read_text(encoding="utf-8"))
    typing_only = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom)
                for alias in stmt.names:
                    assert alias.asname == alias.name, f"{alias.name}: re-export it `as` itself"
                    typing_only[alias.name] = stmt.module
    assert typing_only == fm_lab._EXPORTS


def test_engine_api_all_lists_its_public_functions():
    """``fm_lab.engine.api.__all__``: every public function it defines or re-exports (the
    default store's, from fm_lab.store.default), nothing else."""
    own = {name for name, value in vars(api).items()
           if not name.startswith("_") and inspect.isfunction(value)
           and value.__module__ in {api.__name__, "fm_lab.store.default"}}
    assert set(api.__all__) == own


def test_unknown_attribute_is_an_attribute_error():
    try:
        fm_lab.does_not_exist  # noqa: B018
    except AttributeError as exc:
        assert "does_not_exist" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, fm_lab, fm_lab.cli\n"
        "heavy = [m for m in ('duckdb', 'pandas', 'pyarrow', 'jinja2', 'httpx', 'litellm')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_subpackages_are_attributes_after_a_bare_import():
    code = "import fm_lab; print(fm_lab.llm.script.__name__, fm_lab.agents.Agent.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["script", "Agent"]
