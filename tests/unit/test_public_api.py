"""The public API changes only on purpose, and importing it stays fast."""

import subprocess
import sys

import fm_lab

EXPECTED = {
    "Edge", "Node", "NodeContext", "NodeError", "NodeResult", "NodeType", "RetryPolicy", "Run",
    "RunFailedError", "RunLockedError", "RunNotFoundError", "StateValidationError", "Store",
    "StoreLockedError",
    "ValidationIssue", "Workflow", "WorkflowBuilder", "WorkflowValidationError",
    "arerun", "aresume", "arun",
    "connect", "default_store", "get_run", "register_function", "register_node",
    "rerun", "resume", "run",
    "runs", "validate", "pending", "signal", "asignal", "cancel", "recover", "ResumeError",
    "ResumeValidationError", "traces", "trace", "usage", "sql", "slowest", "errors", "set_price",
    "plot_trace", "plot_usage", "secret", "export_otel", "Agent", "tool",
    "Memory",
    "GraphWidget",
}


def test_exported_names():
    assert set(fm_lab.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(fm_lab, name) is not None


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
