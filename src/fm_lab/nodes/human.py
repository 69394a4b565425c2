"""Nodes that wait for the outside world: ``approval``, ``user_input``, ``wait_for_event``.

Each suspends its path (the run becomes ``suspended``; ``fm_lab.pending()`` lists it) until
``fm_lab.resume(run_id, data, label=...)`` or ``fm_lab.signal(run_id, event, data)`` delivers
data that matches its resume schema, from this process or any other.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fm_lab.identity import check_names
from fm_lab.nodes.base import NodeContext, NodeType


class Decision(BaseModel):
    """What an approver sends back."""

    model_config = ConfigDict(extra="forbid")
    approved: bool
    comment: str | None = None
    by: str | None = None


class ApprovalRequest(BaseModel):
    """What an approver is shown while the node waits."""

    message: str = Field(description="What the approver is asked.")
    details: Any = Field(None, description="Anything shown with the request.")


class Assignment(BaseModel):
    """Who may answer a waiting node: ``assignees`` (user names) and ``roles`` (holders of
    any of them, see ``FM_LAB_ROLES``); both empty: anyone. Identity is the process's
    (:mod:`fm_lab.identity`)."""

    assignees: list[str] = Field(default_factory=list,
                                 description="User names who may answer (none: anyone).")
    roles: list[str] = Field(default_factory=list,
                             description="Roles whose holders may answer.")

    @field_validator("assignees")
    @classmethod
    def _assignees(cls, value: list[str]) -> list[str]:
        return check_names(value, "an assignee")

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[str]) -> list[str]:
        return check_names(value, "a role")


class ApprovalNode(NodeType):
    """Asks a human to approve; routes ``approved`` or ``rejected``.

    ```yaml
    check:
      type: approval
      config: {message: "Pay {{ inputs.amount }} EUR to {{ inputs.vendor }}?", timeout_s: 86400,
               assignees: [kim], roles: [finance]}
    ```
    """
    cacheable = False

    type_name = "approval"
    resume_schema = Decision
    payload_schema = ApprovalRequest

    class Config(Assignment):
        model_config = ConfigDict(extra="forbid")
        message: str = Field(description="What the approver is asked.")
        details: Any = Field(None, description="Anything to show with the request.")
        label: str | None = Field(None, description="Name to resume by (default: node id).")
        timeout_s: float | None = Field(None, gt=0)
        on_timeout: Literal["reject", "fail"] = "reject"

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        config = self.config
        reject = config.on_timeout == "reject"
        data = await ctx.suspend(
            {"message": config.message, "details": config.details},
            label=config.label,
            timeout_s=config.timeout_s,
            on_timeout="default" if reject else "fail",
            default={"approved": False, "comment": "timed out", "by": None},
            assignees=config.assignees,
            roles=config.roles,
        )
        return Decision.model_validate(data).model_dump()

    @classmethod
    def output_handles(cls, config: dict[str, Any]) -> list[str] | None:
        return ["approved", "rejected"]

    @classmethod
    def taken_handles(cls, output: Any) -> set[str] | None:
        return {"approved" if isinstance(output, dict) and output.get("approved") else "rejected"}


class UserInputNode(NodeType):
    """Asks for data matching ``schema`` (a JSON schema) and outputs what was given."""
    cacheable = False

    type_name = "user_input"

    class Config(Assignment):
        model_config = ConfigDict(extra="forbid")
        prompt: str
        input_schema: dict[str, Any] = Field(
            default_factory=lambda: {"type": "object"},
            alias="schema",
            description="JSON schema the answer must match.",
        )
        label: str | None = None
        timeout_s: float | None = Field(None, gt=0)
        default: Any = Field(None, description="Used when the timeout passes (else it fails).")

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        config = self.config
        return await ctx.suspend(
            {"prompt": config.prompt},
            label=config.label,
            schema=config.input_schema,
            timeout_s=config.timeout_s,
            on_timeout="fail" if config.default is None else "default",
            default=config.default,
            assignees=config.assignees,
            roles=config.roles,
        )


class WaitForEventNode(NodeType):
    """Waits for ``fm_lab.signal(run_id, event, data)`` (or ``fm-lab signal``)."""
    cacheable = False

    type_name = "wait_for_event"

    class Config(Assignment):
        model_config = ConfigDict(extra="forbid")
        event: str = Field(description="The event name to wait for.")
        event_schema: dict[str, Any] | None = Field(None, alias="schema")
        timeout_s: float | None = Field(None, gt=0)
        on_timeout: Literal["fail", "default"] = "fail"
        default: Any = None

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        config = self.config
        return await ctx.suspend(
            {"event": config.event},
            label=config.event,
            schema=config.event_schema,
            timeout_s=config.timeout_s,
            on_timeout=config.on_timeout,
            default=config.default,
            assignees=config.assignees,
            roles=config.roles,
        )
