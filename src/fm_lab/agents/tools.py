"""Typed tools: the function's signature is the schema; arguments from a model are validated
before anything runs, and invalid ones go back to the model as the tool's result. The return
annotation (or ``output=``) is checked too: a result that does not match it goes back to the
model as a tool error, so it can call again differently."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pydantic import (
    BaseModel,
    ConfigDict,
    PydanticSchemaGenerationError,
    TypeAdapter,
    ValidationError,
    create_model,
)
from pydantic_core import PydanticSerializationError

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
    output_adapter: TypeAdapter[Any] | None = None
    """Checks what the tool returns (from its return annotation, or ``output=``); None: any
    JSON value."""

    def check_output(self, value: Any) -> Any:
        """``value`` as JSON data once it matches the tool's output type; raises
        :class:`ToolOutputError` listing the problems otherwise."""
        adapter = self.output_adapter
        if adapter is None:
            return value
        try:
            checked = adapter.validate_python(value)
        except ValidationError as exc:
            raise ToolOutputError(self.name, problems(exc, "result"), value) from exc
        try:
            return adapter.dump_python(checked, mode="json")
        except PydanticSerializationError:  # a type pydantic checks but cannot write as JSON
            return checked

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


class ToolOutputError(ValueError):
    """A tool returned something that does not match its output type."""

    def __init__(self, tool_name: str, problems: str, value: Any) -> None:
        super().__init__(f"tool {tool_name!r} returned an invalid result: {problems}")
        self.tool_name, self.problems, self.value = tool_name, problems, value


def _output_adapter(func: Callable[..., Any], hints: dict[str, Any],
                    output: Any) -> TypeAdapter[Any] | None:
    """What checks the tool's results: ``output`` when given, else the return annotation
    (none without one, or for ``Any``)."""
    wanted = output if output is not None else hints.get("return", Any)
    if wanted is Any:
        return None
    try:
        return TypeAdapter(wanted)
    except PydanticSchemaGenerationError:  # a plain class (a DataFrame): isinstance
        pass
    try:
        return TypeAdapter(wanted, config=ConfigDict(arbitrary_types_allowed=True))
    except Exception as exc:  # pydantic cannot check this type
        raise TypeError(f"tool {func.__name__!r}: its output type {wanted!r} cannot be "
                        f"validated ({exc}); pass output=Any to skip the check") from exc


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None,
         description: str | None = None, output: Any = None) -> Any:
    """Turn a typed function into a :class:`Tool`. Its results are checked against its return
    annotation, or ``output`` (a pydantic model or any type pydantic validates; ``Any``: no
    check).

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
                    func, model, context_param,
                    output_adapter=_output_adapter(func, hints, output))

    return make(fn) if fn is not None else make


def problems(error: ValidationError | ValueError, where: str = "arguments") -> str:
    """A validation error as one line: ``loc: message; ...``."""
    if not isinstance(error, ValidationError):
        return str(error)
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or where}: {e['msg']}"
                     for e in error.errors(include_url=False))


def validation_feedback(tool_name: str, error: ValidationError | ValueError) -> str:
    """What the model reads when its arguments were invalid (the tool did not run)."""
    return (f"The arguments for {tool_name} were invalid and the tool was not run: "
            f"{problems(error)}. Call it again with corrected arguments.")


def output_feedback(error: ToolOutputError) -> str:
    """What the model reads when the tool's result did not match its output type."""
    return (f"The tool {error.tool_name} ran but returned an invalid result ({error.problems}); "
            "the result was discarded. Call it again, with other arguments if they caused it.")
