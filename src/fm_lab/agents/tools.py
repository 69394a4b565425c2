"""Typed tools: the function's signature is the schema; arguments from a model are validated
before anything runs, and invalid ones go back to the model as the tool's result."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from fm_lab.agents.context import ToolContext


@dataclass
class Tool:
    """A function a model may call, with its pydantic argument model."""

    name: str
    description: str
    fn: Callable[..., Any]
    args_model: type[BaseModel]
    context_param: str | None = None
    """The parameter that receives the :class:`ToolContext` (not in the schema)."""
    span_attributes: dict[str, Any] = field(default_factory=dict)
    """Added to the ``tool`` span of every call (e.g. an MCP tool's server name)."""

    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the arguments."""
        return self.args_model.model_json_schema()

    def schema(self) -> dict[str, Any]:
        """The OpenAI-style tool definition litellm sends to every provider."""
        parameters = dict(self.parameters())
        parameters.pop("title", None)
        return {"type": "function", "function": {
            "name": self.name, "description": self.description, "parameters": parameters}}

    def parse(self, arguments: str | dict[str, Any]) -> BaseModel:
        """Validated arguments (raises pydantic's ValidationError)."""
        return self.args_model.model_validate(decode_arguments(arguments))

    async def call(self, args: BaseModel, context: ToolContext | None = None) -> Any:
        """Run the tool with validated ``args`` (and its context, when it takes one)."""
        kwargs = {name: getattr(args, name) for name in type(args).model_fields}
        if self.context_param is not None:
            if context is None:
                raise TypeError(f"tool {self.name!r} needs a ToolContext")
            kwargs[self.context_param] = context
        result = self.fn(**kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result


def decode_arguments(arguments: str | dict[str, Any]) -> Any:
    """A model's arguments: its JSON text decoded (an empty text is no arguments)."""
    return json.loads(arguments or "{}") if isinstance(arguments, str) else arguments


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None,
         description: str | None = None) -> Any:
    """Turn a typed function into a :class:`Tool`.

    >>> @tool
    ... def add(a: int, b: int) -> int:
    ...     "Add two numbers."
    ...     return a + b
    >>> add.schema()["function"]["parameters"]["required"]
    ['a', 'b']
    """

    def make(func: Callable[..., Any]) -> Tool:
        hints = get_type_hints(func)
        fields: dict[str, Any] = {}
        context_param = None
        for param in inspect.signature(func).parameters.values():
            annotation = hints.get(param.name, Any)
            if annotation is ToolContext:
                context_param = param.name
                continue
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[param.name] = (annotation, default)
        model = create_model(
            f"{func.__name__}_args", __config__=ConfigDict(extra="forbid"), **fields)
        return Tool(name or func.__name__, description or inspect.getdoc(func) or func.__name__,
                    func, model, context_param)

    return make(fn) if fn is not None else make


def validation_feedback(tool_name: str, error: ValidationError | ValueError) -> str:
    """What the model reads when its arguments were invalid (the tool did not run)."""
    if isinstance(error, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
            for e in error.errors(include_url=False))
    else:
        problems = str(error)
    return (f"The arguments for {tool_name} were invalid and the tool was not run: {problems}. "
            "Call it again with corrected arguments.")
