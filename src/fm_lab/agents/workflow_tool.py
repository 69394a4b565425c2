"""A workflow as a tool: its input schema is the tool's parameters, a call is a run (a child
run of the agent's workflow run when there is one)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from fm_lab.agents.context import ToolContext
from fm_lab.agents.tools import Tool, decode_arguments

if TYPE_CHECKING:
    from fm_lab.engine.plan import Plan
    from fm_lab.spec.models import Workflow
    from fm_lab.store.base import RunStore


class _Inputs(BaseModel):
    """The run inputs (checked against the workflow's own schema)."""

    model_config = ConfigDict(extra="allow")


class WorkflowTool(Tool):
    """A tool whose call runs a workflow; made by :func:`workflow_tool`."""

    def __init__(self, workflow: Workflow, plan: Plan, name: str, description: str,
                 store: RunStore | None) -> None:
        super().__init__(name, description, self._run, _Inputs, context_param="ctx")
        self.workflow, self.plan, self.store = workflow, plan, store

    def parameters(self) -> dict[str, Any]:
        return self.workflow.inputs or {"type": "object", "properties": {}}

    def parse(self, arguments: str | dict[str, Any]) -> BaseModel:
        """Arguments checked against the workflow's input schema (every problem at once)."""
        arguments = decode_arguments(arguments)
        if not isinstance(arguments, dict):
            raise ValueError("the arguments must be a JSON object")
        return _Inputs(**self.plan.prepare_inputs(arguments))

    async def call(self, args: BaseModel, context: ToolContext | None = None) -> Any:
        return await self._run(context, **(args.model_extra or {}))

    async def _run(self, ctx: ToolContext | None, **inputs: Any) -> Any:
        from fm_lab.engine.api import arun
        from fm_lab.exceptions import NodeError
        from fm_lab.tracing.spans import current

        within = current()  # the run this agent works in, if any
        parent = within.run_id if within is not None else None
        run = await arun(self.workflow, inputs, store=self.store, parent_run_id=parent,
                         request_context=dict(ctx.request_context) if ctx else None)
        if run.status != "succeeded":
            raise NodeError(f"workflow {self.workflow.id!r} (run {run.run_id}) {run.status}"
                            + (f": {run.error}" if run.error else ""), kind="user")
        return run.outputs


def workflow_tool(workflow: Workflow | str | Path | dict[str, Any], *, name: str | None = None,
                  description: str | None = None, store: RunStore | None = None) -> WorkflowTool:
    """A tool that runs ``workflow`` (a Workflow, a YAML/JSON path or a dict) with the model's
    arguments as its inputs and returns its outputs. Invalid arguments go back to the model
    like any tool's; a failed run is reported to the model as the tool's failure.

    >>> tool = workflow_tool("examples/order_pricing.flow.yaml")  # doctest: +SKIP
    """
    from fm_lab.engine.api import load_workflow
    from fm_lab.engine.plan import Plan
    from fm_lab.nodes.registry import default_registry

    wf = load_workflow(workflow).validate()
    return WorkflowTool(wf, Plan(wf, default_registry()), name or wf.id,
                        description or wf.description or wf.name or f"Runs workflow {wf.id}.",
                        store)
