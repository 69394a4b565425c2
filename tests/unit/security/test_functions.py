"""What a workflow may name: registered names always; import paths under ``restricted`` only
when allow-listed, an entry point's target or a registered function's own path."""

from __future__ import annotations

import pytest

import fm_lab
from fm_lab.security import functions
from fm_lab.security.functions import (
    import_object,
    reference_problem,
    register_function,
    resolve_function,
)
from fm_lab.security.policy import Policy, PolicyError, using_policy

RESTRICTED = Policy("restricted")


def test_register_function_is_the_public_decorator():
    assert fm_lab.register_function is register_function
    assert fm_lab.nodes.register_function is register_function


def test_trusted_allows_any_import_path_and_restricted_refuses_one_naming_the_policy():
    assert reference_problem("os:system", "function", Policy("trusted")) is None
    problem = reference_problem("os:system", "function", RESTRICTED)
    assert problem is not None
    assert problem.startswith("function 'os:system' is not allowed by the restricted policy")
    assert "FM_LAB_ALLOW" in problem and "fm_lab.functions entry point" in problem


def test_a_name_only_finds_registered_functions_so_it_is_always_allowed():
    assert reference_problem("anything_registered", "tool", RESTRICTED) is None


def test_allow_list_entry_points_and_registered_paths_are_allowed(monkeypatch, canary):
    allowed = Policy("restricted", allow=("canary_*",))
    assert reference_problem(canary.touch, "function", allowed) is None
    monkeypatch.setattr(functions, "entry_point_functions",
                        lambda: {"shout": "mypkg.text:shout"})
    assert reference_problem("mypkg.text:shout", "function", RESTRICTED) is None
    assert reference_problem("mypkg.text:whisper", "function", RESTRICTED) is not None

    def helper() -> str:
        return "ok"

    register_function(helper, name="security_test_helper")
    path = f"{helper.__module__}:{helper.__qualname__}"
    assert reference_problem(path, "function", RESTRICTED) is None


def test_a_templated_import_path_cannot_be_checked_so_restricted_refuses_it():
    for templated in ("{{ inputs.fn }}", "{{ inputs.module }}:run"):
        problem = reference_problem(templated, "function", RESTRICTED)
        assert problem is not None and "is a template" in problem
    assert reference_problem("{{ inputs.fn }}", "function", Policy("trusted")) is None


def test_resolution_checks_the_policy_in_force_before_importing(canary):
    with using_policy(RESTRICTED):
        with pytest.raises(PolicyError, match="'os:system' is not allowed by the restricted"):
            resolve_function("os:system")
        with pytest.raises(PolicyError, match=f"tool '{canary.touch}' is not allowed"):
            import_object(canary.touch, "tool")
    assert canary.untouched()  # not even imported
    assert resolve_function(canary.touch)() == "touched"  # trusted (the default)
    assert canary.called.exists()


def test_entry_points_resolve_by_name(monkeypatch, canary):
    monkeypatch.setattr(functions, "entry_point_functions", lambda: {"poke": canary.touch})
    with using_policy(RESTRICTED):
        assert resolve_function("poke")() == "touched"
    with pytest.raises(LookupError, match="no function 'nobody'"):
        resolve_function("nobody")


def test_policy_errors_fail_a_node_as_user_errors():
    error = PolicyError("no")
    assert error.kind == "user" and error.retryable is False and error.domain == "policy"


def test_the_security_package_exports_what_it_documents():
    assert sorted(fm_lab.security.__all__) == [
        "ENTRY_POINT_GROUP", "Policy", "PolicyError", "PolicySettingError", "Reference",
        "current_policy", "import_object", "reference_problem", "register_function",
        "registered_functions", "resolve_function", "resolve_policy", "using_policy"]
