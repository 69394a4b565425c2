"""The ``llm`` node: a prompt template to text, or to JSON validated against a schema (the
model is asked again, with the problems, when its JSON is invalid)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fm_lab.exceptions import NodeError
from fm_lab.llm.defaults import default_model
from fm_lab.nodes.base import NodeContext, NodeType, plain_names


class LlmNode(NodeType):
    """Asks a model. ``prompt`` is a template; with ``output_schema`` the answer must be JSON
    matching it.

    ```yaml
    summarise:
      type: llm
      config:
        model: gpt-4o-mini            # default: $FM_LAB_MODEL or offline/echo
        fallbacks: [claude-3-5-haiku-latest]
        prompt: "Summarise in one line: {{ nodes.fetch.output.body }}"
    ```
    """

    type_name = "llm"
    idempotent = True
    calls_models = True

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        model: str = Field(default_factory=default_model, description="A litellm model name.")
        fallbacks: list[str] = Field(default_factory=list)
        system: str | None = None
        prompt: str
        output_schema: dict[str, Any] | None = Field(
            None, description="JSON schema the answer must match (the node outputs the JSON).")
        json_retries: int = Field(2, ge=0, le=10)
        temperature: float | None = Field(None, ge=0, le=2)
        max_tokens: int | None = Field(None, gt=0)
        retries: int = Field(2, ge=0, le=10, description="Retries per model on rate limits, "
                             "5xx and timeouts before the next fallback.")

    @classmethod
    def models(cls, config: dict[str, Any]) -> list[str] | None:
        """The model and its fallbacks, unless a template names them."""
        return plain_names(config.get("model") or default_model(), config.get("fallbacks", []))

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        from fm_lab.llm.client import acomplete

        config = self.config
        messages: list[dict[str, Any]] = []
        if config.system:
            messages.append({"role": "system", "content": config.system})
        schema = config.output_schema
        prompt = config.prompt
        if schema is not None:
            prompt += ("\n\nAnswer with JSON only, matching this JSON schema:\n"
                       + json.dumps(schema))
        messages.append({"role": "user", "content": prompt})
        params = {k: v for k, v in (("temperature", config.temperature),
                                    ("max_tokens", config.max_tokens)) if v is not None}
        for _ in range(config.json_retries + 1):
            answer = await acomplete(messages, model=config.model, fallbacks=config.fallbacks,
                                     retries=config.retries, **params)
            if schema is None:
                return answer.text
            problems = _json_problems(answer.text, schema)
            if isinstance(problems, list) and not problems:
                return json.loads(_strip_fence(answer.text or ""))
            messages += [{"role": "assistant", "content": answer.text or ""},
                         {"role": "user", "content": "That answer is not valid: "
                          + "; ".join(problems) + ". Answer again with the JSON only."}]
        raise NodeError(f"the model's answer did not match output_schema after "
                        f"{config.json_retries + 1} tries: {'; '.join(problems)}",
                        kind="validation", retryable=False, domain="llm")


def _strip_fence(text: str) -> str:
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[-1].rsplit("```", 1)[0]
    return text


def _json_problems(text: str | None, schema: dict[str, Any]) -> list[str]:
    from fm_lab.spec.schemas import Validator

    try:
        value = json.loads(_strip_fence(text or ""))
    except json.JSONDecodeError as exc:
        return [f"not JSON ({exc.msg})"]
    validator = Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}"
            for e in validator.iter_errors(value)]
