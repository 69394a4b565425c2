"""What an experiment runs on each example: a function (sync or async), an agent, or a
workflow (run through :func:`fm_lab.batch.map`, see :mod:`fm_lab.evals.runner`). A
variant's config is passed as keyword arguments to a function, set on a copy of an agent
(``model``, ``instructions``, ``model_params``, ...) or added to a workflow's inputs."""

from __future__ import annotations

import asyncio
import copy
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_AGENT_MESSAGE_KEYS = ("input", "message", "question", "prompt", "text")


@dataclass
class Answer:
    """What the target gave for one example."""

    output: Any = None
    error: dict[str, Any] | None = None
    run_id: str | None = None
    tool_calls: list[str] = field(default_factory=list)
    model: str | None = None


def is_workflow(target: Any) -> bool:
    """Whether ``target`` is a workflow (a Workflow, a spec dict, or a YAML/JSON path)."""
    from fm_lab.spec.models import Workflow

    if isinstance(target, (Workflow, dict)):
        return True
    return isinstance(target, (str, Path)) and Path(target).suffix in (".yaml", ".yml", ".json")


def target_name(target: Any) -> str:
    """A short name for the target, stored with the experiment."""
    if is_workflow(target):
        from fm_lab.engine.api import load_workflow

        return f"workflow:{load_workflow(target).id}"
    from fm_lab.agents.agent import Agent

    if isinstance(target, Agent):
        return f"agent:{target.name}"
    module = getattr(target, "__module__", None) or ""
    return f"function:{module + '.' if module else ''}{getattr(target, '__qualname__', target)}"


def _agent_message(inputs: dict[str, Any]) -> Any:
    for key in _AGENT_MESSAGE_KEYS:
        if key in inputs:
            return inputs[key]
    if len(inputs) == 1:
        return next(iter(inputs.values()))
    raise ValueError(f"an agent target needs one input (or one named {_AGENT_MESSAGE_KEYS}); "
                     f"the example has {sorted(inputs)}")


def configured_agent(agent: Any, config: dict[str, Any]) -> Any:
    """A copy of ``agent`` with the variant's attributes set."""
    if not config:
        return agent
    unknown = [key for key in config if not hasattr(agent, key)]
    if unknown:
        raise ValueError(f"agent {agent.name!r} has no setting {', '.join(unknown)}")
    changed = copy.copy(agent)
    for key, value in config.items():
        setattr(changed, key, value)
    return changed


class FunctionTarget:
    """A plain function: called with the example's inputs as keyword arguments (or as one
    dict, if its first parameter is named ``inputs``) and the variant's config."""

    def __init__(self, fn: Callable[..., Any], threads: bool = False) -> None:
        self.fn = fn
        parameters = list(inspect.signature(fn).parameters)
        self.takes_dict = bool(parameters) and parameters[0] == "inputs"
        self.threads = threads and not inspect.iscoroutinefunction(fn)

    def _call(self, inputs: dict[str, Any], config: dict[str, Any]) -> Any:
        return self.fn(inputs, **config) if self.takes_dict else self.fn(**inputs, **config)

    async def answer(self, inputs: dict[str, Any], config: dict[str, Any]) -> Answer:
        if self.threads:
            result = await asyncio.to_thread(self._call, inputs, config)
        else:
            result = self._call(inputs, config)
        if inspect.isawaitable(result):
            result = await result
        return Answer(result)


class AgentTarget:
    """An :class:`~fm_lab.agents.Agent`: the example's message in, the answer's text out."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent

    async def answer(self, inputs: dict[str, Any], config: dict[str, Any]) -> Answer:
        agent = configured_agent(self.agent, config)
        result = await agent.agenerate(_agent_message(inputs))
        return Answer(result.text, None if result.status == "succeeded"
                      else {"type": "status", "message": result.status}, result.run_id,
                      [str(call.get("name")) for call in result.tool_calls], result.model)


def local_target(target: Any, threads: bool = False) -> FunctionTarget | AgentTarget:
    """The runner of a function or agent target (a sync function in worker threads when
    ``threads``)."""
    from fm_lab.agents.agent import Agent

    if isinstance(target, Agent):
        return AgentTarget(target)
    if callable(target):
        return FunctionTarget(target, threads)
    raise TypeError(f"an experiment's target is a function, an agent or a workflow, not "
                    f"{type(target).__name__}")
