"""The ``loop`` node: run a body again while (or until) a condition holds (Mastra's ``dowhile``
and ``dountil``), at most ``max_iterations`` times.

Each iteration is a body run at its own path (``retry_loop#1``, ``retry_loop#2``, ...) and
checkpointed like a foreach item; the condition's verdict after each iteration is a journaled
step. A resumed run so replays the finished iterations from their checkpoints (nothing is run
again) and goes on at the first unfinished one. Conditions are templates rendered in the
engine's sandbox (never ``eval``); they see the run's ``state``, ``nodes`` and ``inputs`` plus
``output`` (the iteration's) and ``iteration`` (1, 2, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field

from fm_lab.exceptions import NodeError, Suspended
from fm_lab.nodes.base import NodeContext, NodeType
from fm_lab.nodes.composite import Body, body_issues, extra_inputs
from fm_lab.spec.templates import is_template

if TYPE_CHECKING:
    from fm_lab.spec.validate import NodeTypeLookup

CONDITION_KEYS = ("while", "while_", "until")
_PREVIEW = 200  # characters of the last output shown in the limit error


class LoopNode(NodeType):
    """Runs ``node`` or ``workflow`` once, then again while ``while`` holds (or until
    ``until`` holds), at most ``max_iterations`` times.

    Each iteration's body sees ``iteration`` (1, 2, ...) and ``previous`` (the last
    iteration's output, None at first) next to ``inputs``. Output: ``{"output": <last
    iteration's>, "iterations": n, "limit_reached": bool}``. At the limit with the condition
    still asking for more, ``on_limit: fail`` (default) fails the node; ``stop`` returns.
    """

    cacheable = False

    type_name = "loop"
    raw_fields = frozenset({"node", "workflow", *CONDITION_KEYS})

    class Config(Body):
        model_config = ConfigDict(extra="forbid", populate_by_name=True)
        while_: Any = Field(
            None, alias="while",
            description="Repeat while this holds, e.g. '{{ output.status == \"retry\" }}'.",
        )
        until: Any = Field(
            None, description="Repeat until this holds, e.g. '{{ state.score >= 0.8 }}'."
        )
        max_iterations: int = Field(10, ge=1, le=100_000)
        on_limit: Literal["fail", "stop"] = Field(
            "fail", description="At max_iterations: fail the node, or stop with the last output."
        )
        inputs: dict[str, Any] = extra_inputs("iteration, next to 'iteration' and 'previous'")

    @classmethod
    def check(cls, config: dict[str, Any], location: str,
              registry: NodeTypeLookup | None = None) -> list[Any]:
        from fm_lab.spec.errors import ValidationIssue

        issues: list[Any] = []
        given = [k for k in CONDITION_KEYS if config.get(k) is not None]
        if len(given) != 1:
            issues.append(ValidationIssue(
                location,
                "give exactly one condition: 'while' (repeat while it holds) or 'until' "
                "(repeat until it holds)" + (f"; got {', '.join(given)}" if given else ""),
                "loop_condition",
            ))
        for key in given:
            value = config[key]
            if not isinstance(value, bool) and not (isinstance(value, str) and is_template(value)):
                issues.append(ValidationIssue(
                    f"{location}.{key}",
                    f"a loop condition is a template such as '{{{{ output.done }}}}' or a "
                    f"boolean, not {value!r}",
                    "loop_condition",
                ))
        return issues + body_issues(config, location, registry)

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        config = self.config
        until = config.until is not None
        condition = config.until if until else config.while_
        if condition is None:
            raise NodeError("a loop needs a 'while' or an 'until' condition", kind="validation",
                            retryable=False)
        body = config.spec()
        output: Any = None
        for iteration in range(1, config.max_iterations + 1):
            values = {**config.inputs, "iteration": iteration, "previous": output}
            try:
                output = await ctx.run_body(body, f"#{iteration}", scope=values, inputs=values)
            except Suspended:
                raise Suspended(ctx.path, leaf=False,
                                payload={"waiting_iteration": iteration}) from None
            holds = await ctx.step("condition", _holds, ctx, condition, output, iteration)
            if holds == until:  # until: done once it holds; while: once it no longer does
                return {"output": output, "iterations": iteration, "limit_reached": False}
        if config.on_limit == "stop":
            return {"output": output, "iterations": config.max_iterations, "limit_reached": True}
        word = "until" if until else "while"
        preview = repr(output)
        preview = preview if len(preview) <= _PREVIEW else preview[:_PREVIEW] + "..."
        raise NodeError(
            f"loop {ctx.node_id!r} reached max_iterations={config.max_iterations} and its "
            f"condition ({word} {condition!r}) still asked for another iteration; last "
            f"output: {preview} (raise max_iterations, or on_limit: stop to keep the last "
            "output)",
            kind="user",
            retryable=False,
        )


def _holds(ctx: NodeContext, condition: Any, output: Any, iteration: int) -> bool:
    """The condition after ``iteration``, rendered in the template sandbox."""
    try:
        return bool(ctx.evaluate(condition, {"output": output, "iteration": iteration}))
    except Exception as exc:
        raise NodeError(
            f"the loop condition {condition!r} failed after iteration {iteration}: {exc}",
            kind="validation",
            retryable=False,
        ) from exc
