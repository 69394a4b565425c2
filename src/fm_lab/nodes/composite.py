"""Nodes that run other work: ``foreach``, ``parallel`` and ``subflow``.

A body is ``node: {type, config, retry, timeout_s}`` (one node, templates see ``item`` and
``index``) or ``workflow: <inline workflow | file | stored id>`` (a sub-graph whose inputs
are ``{item, index}``). Every finished item or branch is checkpointed under its own path
(``loop[3]``, ``fanout.left``) and committed by the engine within one write and fsync, so a
resumed run never redoes it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fm_lab.exceptions import Suspended
from fm_lab.nodes.base import NodeContext, NodeType

if TYPE_CHECKING:
    from fm_lab.spec.validate import NodeTypeLookup


class Body(BaseModel):
    """What runs per item or per branch: exactly one of ``node`` or ``workflow``."""

    model_config = ConfigDict(extra="forbid")
    node: dict[str, Any] | None = Field(None, description="One node: {type, config, ...}.")
    workflow: dict[str, Any] | str | None = Field(
        None, description="A sub-workflow: inline, a file path, or a stored workflow id."
    )

    @model_validator(mode="after")
    def _one_of(self) -> Body:
        if (self.node is None) == (self.workflow is None):
            raise ValueError("give exactly one of 'node' or 'workflow'")
        return self

    def spec(self) -> dict[str, Any]:
        return {"node": self.node} if self.node is not None else {"workflow": self.workflow}


def body_issues(body: dict[str, Any], location: str,
                registry: NodeTypeLookup | None = None) -> list[Any]:
    """Validation issues of a body: node type and config, or the whole sub-workflow, with
    node types looked up in ``registry`` (default: the default registry)."""
    from fm_lab.spec.errors import ValidationIssue

    if registry is None:
        from fm_lab.nodes.registry import default_registry

        registry = default_registry()
    node = body.get("node")
    if isinstance(node, dict):
        from fm_lab.spec.validate import config_issues, reference_issues

        node_type = registry.lookup(str(node.get("type")))
        if node_type is None:
            return [
                ValidationIssue(
                    f"{location}.node.type",
                    f"unknown node type {node.get('type')!r}",
                    "unknown_type",
                )
            ]
        config = node.get("config") or {}
        return (config_issues(node_type.Config, config, f"{location}.node.config")
                + reference_issues(node_type, config, f"{location}.node.config"))
    workflow = body.get("workflow")
    if isinstance(workflow, dict):
        from fm_lab.spec.errors import WorkflowValidationError
        from fm_lab.spec.models import Workflow

        try:
            issues = Workflow.from_dict(workflow).issues(registry)
        except WorkflowValidationError as exc:
            issues = exc.issues
        return [
            ValidationIssue(f"{location}.workflow.{i.location}", i.message, i.code) for i in issues
        ]
    return []


def extra_inputs(each: str) -> Any:
    """The ``inputs`` field of a node that runs a body many times: values for every ``each``."""
    return Field(default_factory=dict, description=f"Extra values for every {each}.")


class ForeachNode(NodeType):
    """Runs a body for each item of ``items`` with at most ``concurrency`` at once.

    Output: ``{"results": [...in item order...], "errors": [{"index", "error"}],
    "succeeded": n, "failed": n}``. ``on_item_error``: ``fail`` (the node fails), ``skip``
    (failed items are left out of results) or ``collect`` (None in results, error listed).
    """
    cacheable = False

    type_name = "foreach"
    raw_fields = frozenset({"node", "workflow"})

    class Config(Body):
        items: Any = Field(description="A list, usually a template: '{{ inputs.rows }}'.")
        concurrency: int = Field(8, ge=1, le=10_000)
        on_item_error: Literal["fail", "skip", "collect"] = "fail"
        inputs: dict[str, Any] = extra_inputs("item, next to 'item' and 'index'")

    @classmethod
    def check(cls, config: dict[str, Any], location: str,
              registry: NodeTypeLookup | None = None) -> list[Any]:
        return body_issues(config, location, registry)

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        config = self.config
        items = list(config.items)
        body = config.spec()
        extra = dict(config.inputs)
        policy = config.on_item_error
        results: list[Any] = [None] * len(items)
        ok = [False] * len(items)
        errors: list[dict[str, Any]] = []
        waiting: list[int] = []
        indexes = iter(range(len(items)))
        ctx.progress(len(items))

        async def worker() -> None:
            for index in indexes:
                item = {**extra, "item": items[index], "index": index}
                try:
                    results[index] = await ctx.run_body(body, f"[{index}]", scope=item, inputs=item)
                    ok[index] = True
                except Suspended:
                    waiting.append(index)
                except Exception as exc:
                    if policy == "fail":
                        raise
                    errors.append(
                        {"index": index, "error": str(exc), "kind": getattr(exc, "kind", "user")}
                    )

        workers = [
            asyncio.ensure_future(worker()) for _ in range(min(config.concurrency, len(items)) or 0)
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
        if waiting:
            raise Suspended(ctx.path, leaf=False, payload={"waiting_items": sorted(waiting)})
        if policy == "skip":
            kept = [r for r, done in zip(results, ok, strict=True) if done]
        else:
            kept = results
        errors.sort(key=lambda e: e["index"])
        return {"results": kept, "errors": errors, "succeeded": sum(ok), "failed": len(errors)}


class ParallelNode(NodeType):
    """Runs named ``branches`` concurrently and joins them: ``{name: output}``."""
    cacheable = False

    type_name = "parallel"
    raw_fields = frozenset({"branches"})

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        branches: dict[str, Body] = Field(min_length=1)
        on_error: Literal["fail", "collect"] = Field(
            "fail", description="collect: a failed branch gives {'error': ...} as its output"
        )

    @classmethod
    def check(cls, config: dict[str, Any], location: str,
              registry: NodeTypeLookup | None = None) -> list[Any]:
        issues = []
        for name, body in (config.get("branches") or {}).items():
            if isinstance(body, dict):
                issues += body_issues(body, f"{location}.branches.{name}", registry)
        return issues

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        branches: dict[str, Body] = self.config.branches
        collect = self.config.on_error == "collect"
        waiting: list[str] = []

        async def branch(name: str, body: Body) -> Any:
            try:
                return await ctx.run_body(
                    body.spec(), f".{name}", scope={"branch": name}, inputs=inputs
                )
            except Suspended:
                waiting.append(name)
                return None
            except Exception as exc:
                if not collect:
                    raise
                return {"error": str(exc), "kind": getattr(exc, "kind", "user")}

        names = list(branches)
        tasks = [asyncio.ensure_future(branch(n, branches[n])) for n in names]
        try:
            outputs = await asyncio.gather(*tasks)
        finally:
            for task in tasks:  # a failed branch stops its siblings
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if waiting:
            raise Suspended(ctx.path, leaf=False, payload={"waiting_branches": sorted(waiting)})
        return dict(zip(names, outputs, strict=True))


class SubflowNode(NodeType):
    """Runs another workflow as a child run linked to this one and returns its outputs; a
    child that suspends suspends this run, and resumes with it."""
    cacheable = False

    type_name = "subflow"
    raw_fields = frozenset({"workflow"})

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        workflow: dict[str, Any] | str = Field(
            description="A workflow file, a stored workflow id, or an inline workflow."
        )
        inputs: dict[str, Any] = Field(default_factory=dict, description="The child's inputs.")

    @classmethod
    def check(cls, config: dict[str, Any], location: str,
              registry: NodeTypeLookup | None = None) -> list[Any]:
        workflow = config.get("workflow")
        return (body_issues({"workflow": workflow}, location, registry)
                if isinstance(workflow, dict) else [])

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        return await ctx.run_child(
            self.config.workflow,
            self.config.inputs,
        )
