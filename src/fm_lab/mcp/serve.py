"""fm_lab workflows as the tools of an MCP server (``fm-lab mcp serve``).

Each workflow is a tool whose input schema is the workflow's ``inputs`` schema; a call runs
it to its end or its first suspension and answers ``{run_id, status, outputs}``, with the
``pending`` paths (``path``, ``label``, ``payload``, ``schema``) of a suspended run. The
``resume`` tool continues one (``run_id``, ``path``, ``data``). Runs are ``restricted`` unless
the server was started with ``policy="trusted"``: an MCP client is someone else's code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp.server.lowlevel import Server
    from mcp_types import CallToolResult

    from fm_lab.spec.models import Workflow
    from fm_lab.store.base import RunStore

RESUME_TOOL = "resume"
WORKFLOW_SUFFIXES = (".yaml", ".yml", ".json")
_RESUME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "run_id": {"type": "string", "description": "The run_id a workflow tool returned."},
        "path": {"type": "string", "description": "The pending path to answer (its 'path')."},
        "data": {"description": "The answer (it must match the pending path's schema)."},
    },
    "required": ["run_id", "path"],
}


def tool_name(workflow_id: str) -> str:
    """A workflow id as an MCP tool name (letters, digits, ``_`` and ``-``; 64 at most)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", workflow_id)[:64] or "workflow"


def load_workflows(folder: str | Path | None = None, files: Sequence[str | Path] = (),
                   store: RunStore | None = None) -> dict[str, Workflow]:
    """The workflows to serve by tool name: every workflow file in ``folder`` and ``files``;
    with neither, the newest version of every workflow stored in ``store``."""
    from fm_lab.engine.api import default_store, load_workflow

    found: list[Workflow] = []
    paths = [Path(f) for f in files]
    if folder is not None:
        root = Path(folder)
        if not root.is_dir():
            raise FileNotFoundError(f"--workflows {root}: no such folder")
        paths += sorted(p for p in root.iterdir() if p.suffix in WORKFLOW_SUFFIXES)
    for path in paths:
        found.append(load_workflow(path).validate())
    if folder is None and not files:
        chosen = store or default_store()
        ids = dict.fromkeys(chosen.workflows()["workflow_id"].tolist())
        found += [chosen.latest_workflow(str(workflow_id)) for workflow_id in ids]
    served: dict[str, Workflow] = {}
    for wf in found:
        name = tool_name(wf.id)
        if name == RESUME_TOOL or name in served:
            raise ValueError(f"two workflows (or the resume tool) would be the MCP tool {name!r}")
        served[name] = wf
    return served


def saved_by_others(store: RunStore | None = None) -> set[str]:
    """The tool names of stored workflows whose newest version another identity saved: they
    run restricted even under ``--policy trusted`` (as a subflow naming them would)."""
    from fm_lab.engine.api import default_store
    from fm_lab.identity import current_user

    frame = (store or default_store()).workflows()
    user = current_user()
    newest = frame.drop_duplicates("workflow_id")  # newest first
    return {tool_name(str(row["workflow_id"])) for row in newest.to_dict(orient="records")
            if isinstance(row.get("saved_by"), str) and row["saved_by"] != user}


class WorkflowServer:
    """The MCP server's handlers: list the workflows as tools, run them, resume them."""

    def __init__(self, workflows: dict[str, Workflow], *, store: RunStore | None = None,
                 policy: str = "restricted", restricted: Iterable[str] = ()) -> None:
        self.workflows = workflows
        self.store = store
        self.policy = policy
        self.restricted = set(restricted)
        """Tools that run restricted whatever ``policy`` says (others' stored workflows)."""

    def tools(self) -> list[dict[str, Any]]:
        """Every tool as ``name, description, input_schema``."""
        listed = [{"name": name, "description": _describe(wf),
                   "input_schema": _object_schema(wf.inputs)}
                  for name, wf in self.workflows.items()]
        listed.append({"name": RESUME_TOOL, "input_schema": _RESUME_SCHEMA,
                       "description": "Continue a suspended run of one of these workflows: "
                       "answer one of its pending paths with data."})
        return listed

    async def call(self, name: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Run tool ``name``: its answer and whether it is an error."""
        from fm_lab.engine.api import aresume, arun

        try:
            if name == RESUME_TOOL:
                run = await aresume(str(arguments.get("run_id", "")), arguments.get("data"),
                                    path_id=str(arguments.get("path", "")), store=self.store,
                                    policy=self.policy, progress=False)
            elif name in self.workflows:
                chosen = "restricted" if name in self.restricted else self.policy
                run = await arun(self.workflows[name], arguments, store=self.store,
                                 policy=chosen, progress=False)
            else:
                return {"error": f"no tool {name!r}; tools: {sorted(self.workflows)}"}, True
        except Exception as exc:  # invalid inputs or resume data, an unknown run: one line
            return {"error": " ".join(f"{type(exc).__name__}: {exc}".split())}, True
        answer: dict[str, Any] = {"run_id": run.run_id, "status": run.status,
                                  "outputs": run.outputs}
        if run.status == "suspended":
            answer["pending"] = self._pending(run.run_id)
        if run.error:
            answer["error"] = run.error
        return json.loads(json.dumps(answer, default=str)), run.status == "failed"

    def _pending(self, run_id: str) -> list[dict[str, Any]]:
        from fm_lab.engine.api import pending

        frame = pending(run_id, store=self.store)
        return [{"path": row["path_id"], "label": row.get("label"), "node": row.get("node_id"),
                 "payload": row.get("payload")} for row in frame.to_dict(orient="records")]

    def lowlevel(self) -> Server[Any]:
        """The SDK's low-level server with these handlers."""
        import mcp_types as types
        from mcp.server.lowlevel import Server

        async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
            return types.ListToolsResult(tools=[types.Tool(**t) for t in self.tools()])

        async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> CallToolResult:
            answer, failed = await self.call(params.name, dict(params.arguments or {}))
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=json.dumps(answer))],
                structured_content=answer, is_error=failed)

        return Server("fm_lab", instructions="fm_lab workflows: each tool runs one; a run "
                      "that waits for a person answers with its pending paths, continued "
                      "with the resume tool.", on_list_tools=list_tools, on_call_tool=call_tool)


def _object_schema(schema: dict[str, Any] | None) -> dict[str, Any]:
    if not schema:
        return {"type": "object", "properties": {}}
    return schema if schema.get("type") == "object" else {**schema, "type": "object"}


def _describe(wf: Workflow) -> str:
    return wf.description or wf.name or f"Runs the fm_lab workflow {wf.id}."


async def serve_stdio(server: WorkflowServer) -> None:
    """Serve over this process's stdin and stdout until the client closes them."""
    from mcp.server.stdio import stdio_server

    low = server.lowlevel()
    async with stdio_server() as (read, write):
        await low.run(read, write, low.create_initialization_options())


async def serve_http(server: WorkflowServer, host: str, port: int) -> None:
    """Serve streamable HTTP on ``host:port`` (path ``/mcp``) until interrupted."""
    import uvicorn

    app = server.lowlevel().streamable_http_app(host=host)
    await uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning")).serve()


def served_names(workflows: Iterable[str]) -> str:
    """The tools, for the one line printed to stderr at start."""
    return ", ".join([*workflows, RESUME_TOOL])
