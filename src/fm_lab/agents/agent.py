"""Agents: a model, instructions and tools, looping until the model answers without a tool
call (or ``max_steps``). Every step is traced (agent → llm → tool spans); sub-agents are tools;
memory is asked before the first model call and handed the turn's new messages after it."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import queue
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from pydantic import BaseModel, Field, ValidationError

from fm_lab.agents.context import (
    AgentInfo,
    Durable,
    RequestContext,
    SuspendNotDurable,
    ToolContext,
    WorkflowInfo,
    Writer,
)
from fm_lab.agents.durable import journaled, state_setter
from fm_lab.agents.memory_api import AgentMemory, MemoryContext, Processor
from fm_lab.agents.messages import MessageList
from fm_lab.agents.result import AgentResult
from fm_lab.agents.tools import Tool, ToolOutputError, output_feedback, validation_feedback
from fm_lab.agents.voice import Voice, VoiceTurn
from fm_lab.exceptions import Suspended
from fm_lab.llm.chunks import Chunk, Finish, ToolCallChunk, ToolResultChunk
from fm_lab.sync import run_sync
from fm_lab.tracing.spans import Span, span
from fm_lab.tracing.standalone import standalone

if TYPE_CHECKING:
    from fm_lab.audio import Audio
    from fm_lab.llm.voice import Transcript
    from fm_lab.store.base import RunStore

Message = str | list[dict[str, Any]]
Emit = Callable[[Chunk], None]


class DurableTurn(Protocol):
    """How ``generate(durable=True)`` runs a turn: as a workflow run on the engine, which this
    module does not import; :mod:`fm_lab.agents.durable_agent` installs it as
    :attr:`Agent.durable_turn` (``fm_lab.agents`` imports that module)."""

    def __call__(self, agent: Agent, message: Message, *, thread_id: str | None,
                 resource_id: str | None, request_context: Mapping[str, Any] | None,
                 store: RunStore | None) -> Awaitable[AgentResult]: ...


class Toolset(Protocol):
    """Tools that come from elsewhere and may change between turns (an MCP server:
    :class:`fm_lab.mcp.McpServer`); listed at the start of every turn."""

    async def atools(self) -> Sequence[Tool]: ...


class _Ask(BaseModel):
    message: str = Field(description="What to ask or tell this agent (it sees nothing else).")


@dataclass
class _Turn:
    """One ``generate``: the conversation, its result and how it runs."""

    ml: MessageList
    result: AgentResult
    tools: dict[str, Tool]
    request_context: RequestContext
    abort: asyncio.Event
    emit: Emit | None
    durable: Durable | None
    thread_id: str | None
    resource_id: str | None


class Agent:
    """An agent over any litellm model.

    >>> agent = Agent("helper", "Be brief.", model="offline/echo")
    >>> agent.generate("hi").text  # doctest: +SKIP

    ``agents={"researcher": other}`` makes each sub-agent a tool (argument ``message``);
    ``toolsets=[server]`` adds the tools a toolset (an MCP server) lists at each turn;
    ``memory`` follows :class:`~fm_lab.agents.memory_api.AgentMemory`; ``processors`` rewrite
    the messages before each model call; ``durable=True`` runs ``generate`` as a one-node
    workflow so a tool may suspend it for a person (``fm_lab.resume`` continues it).
    The tool calls of one model answer run concurrently (``parallel_tools=False``: one after
    another); see :meth:`_run_tools` for what stays in order in a durable run.
    ``voice=Voice(...)`` (or ``True``: the default models) lets it :meth:`listen`,
    :meth:`speak` and :meth:`talk` (audio in, audio out).
    """

    durable_turn: ClassVar[DurableTurn | None] = None
    """Runs a durable turn (installed by :mod:`fm_lab.agents.durable_agent`)."""

    def __init__(self, name: str, instructions: str = "", *, model: str | None = None,
                 fallbacks: Sequence[str] | None = None, tools: Sequence[Tool] | None = None,
                 agents: Mapping[str, Agent] | None = None, memory: AgentMemory | None = None,
                 processors: Sequence[Processor] | None = None, max_steps: int = 8,
                 description: str | None = None, durable: bool = False,
                 model_params: Mapping[str, Any] | None = None,
                 parallel_tools: bool = True, toolsets: Sequence[Toolset] | None = None,
                 voice: Voice | bool | None = None) -> None:
        from fm_lab.llm.defaults import default_model

        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, not {max_steps}")
        self.name = name
        self.instructions = instructions
        self.description = description or (instructions.split("\n")[0] or f"The {name} agent.")
        self.model = model or default_model()
        self.fallbacks = list(fallbacks or [])
        self.tools = {t.name: t for t in tools or []}
        self.agents = dict(agents or {})
        clash = set(self.tools) & set(self.agents)
        if clash:
            raise ValueError(f"agent {name!r}: {sorted(clash)} name both a tool and a sub-agent")
        self.memory = memory
        self.processors = list(processors or [])
        self.max_steps = max_steps
        self.durable = durable
        self.model_params = dict(model_params or {})
        self.parallel_tools = parallel_tools
        self.toolsets = list(toolsets or [])
        self.voice = Voice() if voice is True else (voice or None)
        self._module = sys._getframe(1).f_globals.get("__name__")

    def __repr__(self) -> str:
        return f"Agent({self.name!r}, model={self.model!r}, tools={sorted(self.tools)})"

    def models(self) -> list[str] | None:
        """The models this agent and its sub-agents ask; None when that is not known before
        a turn (memory and processors may ask models of their own)."""
        if self.memory is not None or self.processors or self.model_params:
            return None
        found: list[str] = [self.model, *self.fallbacks]
        for sub in self.agents.values():
            theirs = sub.models()
            if theirs is None:
                return None
            found += theirs
        return found

    @property
    def ref(self) -> str:
        """How another process finds this agent: ``module:attr`` when it is a module global,
        else its name (resolvable where it was registered)."""
        module = sys.modules.get(self._module or "")
        if module is not None and self._module != "__main__":
            for attr, value in vars(module).items():
                if value is self:
                    return f"{self._module}:{attr}"
        return self.name

    def as_tool(self, name: str | None = None) -> Tool:
        """This agent as a tool (argument ``message``) any agent can call; it runs with the
        caller's request context and abort event. (``agents=`` does this and also streams,
        journals and rolls up the sub-agent's usage into the parent's result.)"""
        async def ask(message: str, ctx: ToolContext) -> str | None:
            answer = await self.run_turn(message, request_context=ctx.request_context,
                                         resource_id=ctx.agent.resource_id, abort=ctx.abort)
            return answer.text

        return Tool(name or self.name, self.description, ask, _Ask, context_param="ctx")

    # ---- entry points ----------------------------------------------------------------------
    async def agenerate(self, message: Message, *, thread_id: str | None = None,
                        resource_id: str | None = None,
                        request_context: Mapping[str, Any] | None = None,
                        durable: bool | None = None, store: RunStore | None = None) -> AgentResult:
        """Answer ``message`` (a text, or chat messages), calling tools as asked. Outside a
        run the call is a trace of its own (or part of a ``fm_lab.tracing.traced`` block) in
        ``store`` (default: the default store), where durable runs go too."""
        if durable if durable is not None else self.durable:
            durable_turn = Agent.durable_turn
            if durable_turn is None:
                raise RuntimeError("durable turns run on the engine: import fm_lab.agents "
                                   "(it installs fm_lab.agents.durable_agent)")
            return await durable_turn(self, message, thread_id=thread_id,
                                      resource_id=resource_id, request_context=request_context,
                                      store=store)
        with standalone(store):
            return await self.run_turn(message, thread_id=thread_id, resource_id=resource_id,
                                       request_context=request_context)

    def generate(self, message: Message, **kwargs: Any) -> AgentResult:
        """Synchronous :meth:`agenerate` (works inside Jupyter's running loop too)."""
        return run_sync(self.agenerate(message, **kwargs))

    async def astream(self, message: Message, *, thread_id: str | None = None,
                      resource_id: str | None = None,
                      request_context: Mapping[str, Any] | None = None
                      ) -> AsyncIterator[Chunk]:
        """Stream the turn: text and reasoning deltas, tool calls and their results (and what
        tools write), across every step and sub-agent, ending with ``finish``. Leaving the
        loop early aborts the turn."""
        chunks: asyncio.Queue[Chunk | BaseException | None] = asyncio.Queue()
        abort = asyncio.Event()

        async def produce() -> None:
            try:
                with standalone():
                    result = await self.run_turn(
                        message, thread_id=thread_id, resource_id=resource_id,
                        request_context=request_context, emit=chunks.put_nowait, abort=abort)
                chunks.put_nowait(Finish("stop", result.text, result.model or self.model,
                                         result.usage, result.steps, self.name))
            except Exception as exc:
                chunks.put_nowait(exc)
            finally:
                chunks.put_nowait(None)

        task = asyncio.create_task(produce())
        try:
            while (item := await chunks.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if not task.done():
                abort.set()
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def stream(self, message: Message, **kwargs: Any) -> Iterator[Chunk]:
        """Synchronous :meth:`astream` (the turn runs on a worker thread; leaving the loop
        early aborts the turn at its next chunk)."""
        items: queue.Queue[Chunk | BaseException | None] = queue.Queue()
        stop = threading.Event()

        async def pump() -> None:
            try:
                async for chunk in self.astream(message, **kwargs):
                    if stop.is_set():
                        break
                    items.put(chunk)
            except Exception as exc:
                items.put(exc)
            finally:
                items.put(None)

        worker = threading.Thread(target=contextvars.copy_context().run,  # spans, traces
                                  args=(asyncio.run, pump()), daemon=True,
                                  name=f"fm_lab-agent-{self.name}")
        worker.start()
        try:
            while (item := items.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
        worker.join()

    # ---- voice -----------------------------------------------------------------------------
    def _voice(self) -> Voice:
        if self.voice is None:
            raise ValueError(f"agent {self.name!r} has no voice: give it one with "
                             "Agent(..., voice=fm_lab.agents.Voice())")
        return self.voice

    async def alisten(self, audio: Any) -> Transcript:
        """What ``audio`` (bytes, a file path, a URL or an Audio) says, as this agent hears
        it."""
        with standalone():
            return await self._voice().listen(audio)

    def listen(self, audio: Any) -> Transcript:
        """Synchronous :meth:`alisten`."""
        return run_sync(self.alisten(audio))

    async def aspeak(self, text: str) -> Audio:
        """``text`` in this agent's voice: an audio file (a player in notebooks)."""
        with standalone():
            return await self._voice().speak(text)

    def speak(self, text: str) -> Audio:
        """Synchronous :meth:`aspeak`."""
        return run_sync(self.aspeak(text))

    async def atalk(self, audio: Any, **options: Any) -> VoiceTurn:
        """A turn from audio in to audio out: listen, answer (``options`` as for
        :meth:`agenerate`), say the answer; one trace."""
        voice = self._voice()
        with standalone(options.get("store")):
            heard = await voice.listen(audio)
            result = await self.agenerate(heard.text, **options)
            answer = (result.text or "").strip()
            said = await voice.speak(answer) if answer else None
        return VoiceTurn(heard, result, said)

    def talk(self, audio: Any, **options: Any) -> VoiceTurn:
        """Synchronous :meth:`atalk`."""
        return run_sync(self.atalk(audio, **options))

    # ---- the loop --------------------------------------------------------------------------
    async def run_turn(self, message: Message, *, thread_id: str | None = None,
                       resource_id: str | None = None,
                       request_context: Mapping[str, Any] | None = None,
                       durable: Durable | None = None, emit: Emit | None = None,
                       abort: asyncio.Event | None = None) -> AgentResult:
        """One turn: what ``generate`` runs (``durable`` is a node context when the agent runs
        inside a workflow: model answers and tool results are journaled steps)."""
        context = (request_context if isinstance(request_context, RequestContext)
                   else RequestContext(request_context or {}))
        owner = {"resource_id": resource_id} if resource_id is not None else {}
        with span(self.name, kind="agent", input={"message": message}, agent=self.name,
                  entity_id=self.name, **owner) as agent_span:
            ml = MessageList()
            recalled = await self._recall(message, thread_id, resource_id)
            system = "\n\n".join(s for s in (self.instructions, recalled.system) if s)
            if system:
                ml.add_system(system)
            ml.add_memory(recalled.messages)
            if isinstance(message, str):
                ml.add_user(message)
            else:
                for item in message:
                    ml.add(item, "system" if item.get("role") == "system" else "user")
            listed = {t.name: t for toolset in self.toolsets for t in await toolset.atools()}
            tools = {**listed, **self.tools, **{t.name: t for t in recalled.tools},
                     **{name: sub.as_tool(name) for name, sub in self.agents.items()}}
            turn = _Turn(ml, AgentResult(None), tools, context, abort or asyncio.Event(), emit,
                         durable, thread_id, resource_id)
            turn.result.trace_id = agent_span.trace_id
            try:
                await self._loop(turn, agent_span)
            except Suspended:
                agent_span.end("suspended")
                raise
            if self.memory is not None:
                await self._save(turn)
        turn.result.messages = ml.to_storage()
        return turn.result

    async def _recall(self, message: Message, thread_id: str | None,
                      resource_id: str | None) -> MemoryContext:
        if self.memory is None:
            return MemoryContext()
        if thread_id is None:
            raise ValueError(f"agent {self.name!r} has memory: pass thread_id= to generate")
        query = message if isinstance(message, str) else str(
            next((m.get("content") for m in reversed(message) if m.get("role") == "user"), ""))
        with span("memory.prepare", kind="memory", input={"query": query},
                  thread_id=thread_id) as preparing:
            found = await self.memory.prepare(thread_id=thread_id, resource_id=resource_id,
                                              query=query)
            preparing.set_attribute("memory.messages", len(found.messages))
            preparing.set_attribute("memory.tools", [t.name for t in found.tools])
            preparing.set_attribute("memory.system_chars", len(found.system or ""))
        return found

    async def _save(self, turn: _Turn) -> None:
        memory, unsaved = self.memory, turn.ml.drain_unsaved()
        assert memory is not None and turn.thread_id is not None

        async def save() -> None:
            with span("memory.save", kind="memory", thread_id=turn.thread_id,
                      **{"memory.messages": len(unsaved)}):
                await memory.save(thread_id=turn.thread_id or "", resource_id=turn.resource_id,
                                  messages=unsaved)

        if turn.durable is not None:
            await journaled(turn.durable, f"memory:{self.name}", save)
        else:
            await save()

    async def _loop(self, turn: _Turn, agent_span: Span) -> None:
        schemas = [t.schema() for t in turn.tools.values()] or None
        result = turn.result
        while result.steps < self.max_steps:
            if turn.abort.is_set():
                raise asyncio.CancelledError(f"agent {self.name!r} aborted")
            result.steps += 1
            answer = await self._ask(turn, schemas)
            result._add(self.name, answer["model"], answer["usage"], answer["cost_usd"])
            result.model = answer["model"]
            calls = answer["tool_calls"]
            turn.ml.add_response({"role": "assistant", "content": answer["text"],
                                  "tool_calls": [
                {"id": c["id"], "type": "function",
                 "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in calls] or None})
            if not calls:
                result.text = answer["text"]
                agent_span.output = answer["text"]
                return
            for call, content in zip(calls, await self._run_tools(turn, calls), strict=True):
                turn.ml.add_response({"role": "tool", "tool_call_id": call["id"],
                                      "content": content})
        agent_span.status = "error"
        raise RuntimeError(f"agent {self.name!r} did not finish within max_steps="
                           f"{self.max_steps}")

    async def _ask(self, turn: _Turn, schemas: list[dict[str, Any]] | None) -> dict[str, Any]:
        """One model call (a journaled step inside a workflow)."""
        from fm_lab.llm.client import acomplete, astream, cost_usd

        outgoing = turn.ml.to_openai()
        for processor in self.processors:
            with span(type(processor).__name__, kind="processor",
                      **{"processor.messages_in": len(outgoing)}) as processing:
                outgoing = processor.process(outgoing)
                processing.set_attribute("processor.messages_out", len(outgoing))
        params: dict[str, Any] = {**self.model_params, **({"tools": schemas} if schemas else {})}

        async def call() -> dict[str, Any]:
            if turn.emit is None:
                answer = await acomplete(outgoing, model=self.model, fallbacks=self.fallbacks,
                                         **params)
                text, calls, model, usage = (answer.text, answer.tool_calls, answer.model,
                                             answer.usage)
            else:
                text, model, usage, calls = None, self.model, {}, []
                async for chunk in astream(outgoing, model=self.model, fallbacks=self.fallbacks,
                                           **params):
                    if isinstance(chunk, Finish):
                        text, model, usage = chunk.text, chunk.model or self.model, chunk.usage
                        continue
                    if isinstance(chunk, ToolCallChunk):
                        calls.append({"id": chunk.id, "name": chunk.name,
                                      "arguments": chunk.arguments})
                    turn.emit(replace(chunk, agent=self.name))
            return {"text": text, "tool_calls": calls, "model": model, "usage": usage,
                    "cost_usd": cost_usd(model, usage)}

        if turn.durable is not None:
            answer: dict[str, Any] = await journaled(turn.durable, f"llm:{self.name}", call)
            return answer
        return await call()

    async def _run_tools(self, turn: _Turn, calls: list[dict[str, Any]]) -> list[str]:
        """The contents of a step's tool results, in call order. The calls run concurrently
        (async tools overlap; a sync tool runs in the loop), except, in a durable run, calls
        that journal steps or suspend inside themselves (tools taking a ToolContext and
        sub-agents): those run one after another, in call order, beside the rest, so a node
        that runs again replays their steps and suspensions in the same order. Every call ends
        before a suspension or failure of one of them is raised: what finished is kept."""
        records = []
        for call in calls:  # result.tool_calls lists them in call order
            records.append({"name": call["name"], "arguments": call["arguments"], "ok": False})
            turn.result.tool_calls.append(records[-1])
        if not self.parallel_tools or len(calls) < 2:
            return [await self._run_tool(turn, call, record)
                    for call, record in zip(calls, records, strict=True)]
        durable = turn.durable is not None
        chained = [i for i, call in enumerate(calls) if durable and self._journals(turn, call)]
        free = [i for i in range(len(calls)) if i not in chained]

        async def chain() -> list[str]:
            return [await self._run_tool(turn, calls[i], records[i]) for i in chained]

        outcomes = await asyncio.gather(
            chain(), *(self._run_tool(turn, calls[i], records[i]) for i in free),
            return_exceptions=True)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            raise failed[0]
        contents: dict[int, str] = dict(zip(chained, cast(list[str], outcomes[0]), strict=True))
        contents.update(zip(free, cast(list[str], outcomes[1:]), strict=True))
        return [contents[i] for i in range(len(calls))]

    def _journals(self, turn: _Turn, call: dict[str, Any]) -> bool:
        """Whether a call may journal steps or suspend inside itself."""
        found = turn.tools.get(call["name"])
        return found is not None and (found.context_param is not None
                                      or found.name in self.agents)

    async def _run_tool(self, turn: _Turn, call: dict[str, Any], record: dict[str, Any]) -> str:
        """Run one call; ``record`` (its entry in ``result.tool_calls``) gets the outcome."""
        found = turn.tools.get(call["name"])
        with span(call["name"], kind="tool", input={"arguments": call["arguments"]},
                  agent=self.name, entity_id=call["name"],
                  **(found.span_attributes if found is not None else {})) as tool_span:
            if found is None:
                tool_span.status = "error"
                content = f"There is no tool named {call['name']!r}; tools: {sorted(turn.tools)}."
                return self._tool_result(turn, call, content, False)
            try:
                args = found.parse(call["arguments"])
            except (ValidationError, ValueError) as exc:
                tool_span.status = "error"
                record["error"] = "invalid arguments"
                return self._tool_result(turn, call, validation_feedback(found.name, exc), False)
            sub = self.agents.get(found.name)

            async def invoke() -> dict[str, Any]:
                if sub is not None:
                    answer = await sub.run_turn(
                        cast(_Ask, args).message,
                        request_context=turn.request_context,
                        resource_id=turn.resource_id, durable=turn.durable, emit=turn.emit,
                        abort=turn.abort,
                        thread_id=f"{turn.thread_id}/{found.name}" if turn.thread_id else None)
                    return {"output": answer.text, "sub": answer.to_dict()}
                output = await found.call(args, self._context(turn, found, call, tool_span))
                return {"output": json.loads(json.dumps(found.check_output(output),
                                                        default=str))}

            try:
                done = (await journaled(turn.durable, f"tool:{self.name}:{call['id']}", invoke)
                        if turn.durable is not None else await invoke())
            except (Suspended, SuspendNotDurable, asyncio.CancelledError):
                tool_span.status = "suspended"
                raise
            except ToolOutputError as exc:  # the model reads why and may call again
                record["error"] = "invalid output"
                tool_span.output = json.loads(json.dumps(exc.value, default=str))
                tool_span.end("error", {"type": "ToolOutputError", "message": str(exc),
                                        "kind": "validation"})
                return self._tool_result(turn, call, output_feedback(exc), False)
            except Exception as exc:  # the model reads what went wrong and may try again
                tool_span.status = "error"
                record["error"] = f"{type(exc).__name__}: {exc}"
                return self._tool_result(
                    turn, call, f"The tool {found.name} failed: {type(exc).__name__}: {exc}",
                    False)
            if "sub" in done:
                turn.result._merge(AgentResult(None, **{
                    k: v for k, v in done["sub"].items() if k in ("usage", "cost_usd",
                                                                  "usage_by_agent")}))
            output = done["output"]
            record.update(ok=True, output=output)
            tool_span.output = output
            content = output if isinstance(output, str) else json.dumps(output, default=str)
            return self._tool_result(turn, call, content, True, output)

    def _tool_result(self, turn: _Turn, call: dict[str, Any], content: str, ok: bool,
                     output: Any = None) -> str:
        if turn.emit is not None:
            turn.emit(ToolResultChunk(call["id"], call["name"], output if ok else content, ok,
                                      self.name))
        return content

    def _context(self, turn: _Turn, found: Tool, call: dict[str, Any],
                 tool_span: Span) -> ToolContext | None:
        if found.context_param is None:
            return None
        durable = turn.durable
        suspend = None
        if durable is not None:
            async def suspend(payload: Any, label: str | None,
                              schema: dict[str, Any] | None) -> Any:
                envelope = {"agent": self.name, "tool": found.name, "tool_call_id": call["id"],
                            "arguments": call["arguments"], "payload": payload,
                            "messages": turn.ml.serialize()}
                return await durable.suspend(envelope, label=label or found.name,
                                             schema=schema)

        workflow = (WorkflowInfo(durable.run_id, durable.state, state_setter(durable))
                    if durable is not None else None)
        return ToolContext(
            request_context=turn.request_context, tracing=tool_span if tool_span.recording
            else None, abort=turn.abort,
            writer=Writer(found.name, self.name, turn.emit, tool_span),
            agent=AgentInfo(self.name, turn.thread_id, turn.resource_id, turn.ml.messages),
            workflow=workflow, _suspend=suspend)


