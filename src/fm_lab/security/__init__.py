"""Security for shared workflows: the execution policy (``trusted`` | ``restricted``), what a
workflow may name to be called (:mod:`.functions`) and where its ``http`` nodes may connect
(:mod:`.egress`, imported when an http node runs)."""

from fm_lab.security.functions import (
    ENTRY_POINT_GROUP,
    Reference,
    import_object,
    reference_problem,
    register_function,
    registered_functions,
    resolve_function,
)
from fm_lab.security.policy import (
    Policy,
    PolicyError,
    PolicySettingError,
    current_policy,
    resolve_policy,
    using_policy,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Policy",
    "PolicyError",
    "PolicySettingError",
    "Reference",
    "current_policy",
    "import_object",
    "reference_problem",
    "register_function",
    "registered_functions",
    "resolve_function",
    "resolve_policy",
    "using_policy",
]
