"""The ``agent`` node: runs a registered agent (or one defined inline) on a prompt template.

Model answers and tool results are journaled steps, so a resumed or recovered run does not
call the model or a tool again for work already done; a tool that calls ``ctx.suspend(...)``
suspends the node (its payload carries the serialized conversation) until
``fm_lab.resume(run_id, data)``, and the data becomes what the tool's ``suspend`` returns.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fm_lab.agents.agent import Agent
from fm_lab.agents.registry import get
from fm_lab.agents.tools import Tool, tool
from fm_lab.llm.defaults import default_model
from fm_lab.nodes.base import NodeContext, NodeType, plain_names
from fm_lab.security.functions import Reference, import_object, resolve_function


class AgentNode(NodeType):
    """Runs an agent; outputs ``{text, tool_calls, steps, usage, cost_usd, usage_by_agent}``.

    ```yaml
    helper:
      type: agent
      config:
        agent: support                   # registered name, or my_pkg.agents:support
        prompt: "Answer {{ inputs.customer }}: {{ inputs.question }}"
        thread_id: "{{ inputs.customer }}"
    fx:                                  # an inline agent, named after its node
      type: agent
      config:
        instructions: Convert money.
        tools: ["my_pkg.tools:convert"]  # @tool objects or plain typed functions
        agents: [researcher]             # sub-agents by registry name or import path
        prompt: "{{ inputs.question }}"
    ```
    """

    type_name = "agent"
    calls_models = True

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        agent: str | None = Field(None, description="A registered agent or module:attr "
                                  "(leave it out for an inline agent named after the node).")
        instructions: str = ""
        model: str | None = Field(None, description="Inline agent: a litellm model name "
                                  "(default $FM_LAB_MODEL or offline/echo).")
        fallbacks: list[str] = Field(default_factory=list)
        tools: list[str] = Field(default_factory=list,
                                 description="Inline agent: tools as module:function paths or "
                                 "registered function names.")
        agents: list[str] = Field(default_factory=list,
                                  description="Inline agent: sub-agents (registry names or "
                                  "module:attr).")
        max_steps: int = Field(8, ge=1, le=100)
        prompt: str | list[dict[str, Any]] = Field(
            description="The message (a template), or chat messages.")
        thread_id: str | None = None
        resource_id: str | None = None

        @model_validator(mode="after")
        def _one_agent(self) -> AgentNode.Config:
            if self.agent is not None and (self.tools or self.agents or self.instructions
                                           or self.model or self.fallbacks):
                raise ValueError("tools, agents, instructions, model and fallbacks belong to an "
                                 "inline agent (no agent:), not to a registered one")
            return self

    @classmethod
    def references(cls, config: dict[str, Any]) -> list[Reference]:
        """The agent, its tools and sub-agents (checked against the policy before the run)."""
        found = [Reference("agent", config["agent"], "agent")] if isinstance(
            config.get("agent"), str) else []
        for key, what in (("tools", "tool"), ("agents", "agent")):
            items = config.get(key)
            if isinstance(items, list):
                found += [Reference(f"{key}[{i}]", ref, what) for i, ref in enumerate(items)
                          if isinstance(ref, str)]
        return found

    @classmethod
    def models(cls, config: dict[str, Any]) -> list[str] | None:
        """The models of the agent and its sub-agents, unless a template names them."""
        agent = config.get("agent")
        names = plain_names(agent if agent is not None else config.get("agents", []))
        chain = plain_names(config.get("model") or default_model(), config.get("fallbacks", []))
        if names is None or chain is None:
            return None
        try:
            found = [get(name) for name in names]
        except Exception:  # not importable: the run reports it
            return None
        if agent is not None:
            return found[0].models()
        return Agent("inline", model=chain[0], fallbacks=chain[1:],
                     agents={a.name: a for a in found}).models()

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        config = self.config
        agent = _agent(config, ctx.node_id)
        result = await agent.run_turn(
            config.prompt, thread_id=config.thread_id, resource_id=config.resource_id,
            request_context=ctx.request_context, durable=ctx, abort=ctx.abort)
        return result.to_dict()


def _agent(config: AgentNode.Config, node_id: str) -> Agent:
    if config.agent is not None:
        return get(config.agent)
    tools = []
    for ref in config.tools:
        found = import_object(ref, "tool") if ":" in ref else resolve_function(ref, "tool")
        tools.append(found if isinstance(found, Tool) else tool(found))
    return Agent(node_id, config.instructions, model=config.model,
                 fallbacks=config.fallbacks, tools=tools,
                 agents={get(ref).name: get(ref) for ref in config.agents},
                 max_steps=config.max_steps)
