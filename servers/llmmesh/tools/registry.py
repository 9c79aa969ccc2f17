"""Every tool the server offers, and the one way a tool gets called.

`ToolRegistry` knows the built-ins, the gRPC targets and the MCP servers; `select` resolves the tools a request
names (reporting unknown ones as field violations) into a `ToolSet`, whose `call` validates the
arguments against the tool's schema, bounds the call's time and output, and turns every failure
into a ToolOutcome with an error. Cancellation is the only thing that propagates.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jsonschema

from llmmesh.common.model_call import ToolDef
from llmmesh.framework import tracing
from llmmesh.framework.validation import Violations
from llmmesh.settings import PatternLimits
from llmmesh.tools.base import Failure, Tool, ToolError, ToolOutcome
from llmmesh.tools.calculator import Calculator
from llmmesh.tools.clock import Clock
from llmmesh.tools.grpc_tools import GrpcTarget
from llmmesh.tools.http_get import HttpGet
from llmmesh.tools.mcp_tools import McpServer
from llmmesh.tools.remote import RemoteTools

log = logging.getLogger("llmmesh.tools")

# A model API takes at most this many tools per call (the inference service's limit).
MAX_TOOLS_PER_CALL = 64


class ToolRegistry:
    def __init__(self, limits: PatternLimits, grpc_targets: Sequence[str] | None = None) -> None:
        self.limits = limits
        builtins: list[Tool] = [Calculator(), Clock(), HttpGet(limits.http_tool_allow, limits.tool_timeout_s)]
        self.builtins: dict[str, Tool] = {t.name: t for t in builtins}
        targets = limits.grpc_tool_targets if grpc_targets is None else grpc_targets
        self._targets: list[RemoteTools] = [GrpcTarget(t, limits.tool_timeout_s) for t in dict.fromkeys(targets)]
        self._targets += [McpServer(name, url, limits.mcp_allow_internal, limits.tool_timeout_s)
                          for name, url in limits.mcp_servers]
        self._validators: dict[str, jsonschema.protocols.Validator] = {}
        self._shadowed: set[tuple[str, str]] = set()

    async def tools(self) -> dict[str, Tool]:
        """Built-ins, then the tools of every gRPC target and MCP server (discovered on first use)."""
        out: dict[str, Tool] = dict(self.builtins)
        for found in await asyncio.gather(*(t.tools() for t in self._targets)):
            for tool in found:
                if tool.name not in out:
                    out[tool.name] = tool
                elif (tool.name, tool.source) not in self._shadowed:
                    self._shadowed.add((tool.name, tool.source))
                    log.warning("tool %s from %s is shadowed by one from %s", tool.name, tool.source,
                                out[tool.name].source)
        return out

    async def select(self, names: Sequence[str], field: str, v: Violations) -> ToolSet:
        """The named tools (every built-in when `names` is empty); unknown or repeated names are
        recorded as violations of `field[i]`."""
        if not names:
            return ToolSet(self, dict(self.builtins))
        available = await self.tools() if any(n not in self.builtins for n in names) else self.builtins
        chosen: dict[str, Tool] = {}
        v.check(len(names) <= MAX_TOOLS_PER_CALL, field, f"at most {MAX_TOOLS_PER_CALL} tools")
        for i, name in enumerate(names):
            if name in chosen:
                v.add(f"{field}[{i}]", f"tool {name!r} is listed twice")
            elif name not in available:
                v.add(f"{field}[{i}]", f"unknown tool {name!r}; ListTools shows the available tools")
            else:
                chosen[name] = available[name]
        return ToolSet(self, chosen)

    def validator(self, tool: Tool) -> jsonschema.protocols.Validator:
        # Keyed by the schema itself: tools are few and long-lived, their schemas fixed.
        key = json.dumps(tool.parameters, sort_keys=True)
        if key not in self._validators:
            self._validators[key] = jsonschema.Draft202012Validator(tool.parameters)
        return self._validators[key]

    async def close(self) -> None:
        for target in self._targets:
            await target.close()


class ToolSet:
    """The tools offered to one run; calls of any other tool name are errors, not lookups."""

    def __init__(self, registry: ToolRegistry, tools: Mapping[str, Tool]) -> None:
        self._registry = registry
        self.tools = dict(tools)

    def __contains__(self, name: str) -> bool:
        return name in self.tools

    @property
    def defs(self) -> tuple[ToolDef, ...]:
        return tuple(ToolDef(t.name, t.description, t.parameters) for t in self.tools.values())

    async def call(self, name: str, arguments: Any, call_id: str = "") -> ToolOutcome:
        limits = self._registry.limits
        started = time.perf_counter()
        span = tracing.span(f"execute_tool {name}", {"gen_ai.operation.name": "execute_tool",
                                                     "gen_ai.tool.name": name, "gen_ai.tool.call.id": call_id})
        with span as current:
            output, error = await self._call(name, arguments, limits)
            if error is not None:
                current.set_attribute("error.type", error.code)
        truncated = len(output) > limits.tool_output_chars
        return ToolOutcome(call_id, name, output[: limits.tool_output_chars], truncated, error,
                           (time.perf_counter() - started) * 1000)

    async def _call(self, name: str, arguments: Any, limits: PatternLimits) -> tuple[str, Failure | None]:
        output, error = "", None
        try:
            tool = self.tools.get(name)
            if tool is None:
                raise ToolError("NOT_FOUND", f"no tool named {name!r} is available; use one of: "
                                             f"{', '.join(self.tools) or 'none'}")
            check_arguments(self._registry.validator(tool), arguments)
            async with asyncio.timeout(limits.tool_timeout_s):
                output = str(await tool.call(arguments))
        except ToolError as exc:
            error = Failure(exc.code, exc.message)
        except TimeoutError:
            error = Failure("DEADLINE_EXCEEDED", f"the tool did not answer within {limits.tool_timeout_s:g}s")
        except Exception:
            log.warning("tool %s failed", name, exc_info=True)
            error = Failure("INTERNAL", f"the tool {name!r} failed unexpectedly")
        return output, error


def check_arguments(validator: jsonschema.protocols.Validator, arguments: Any) -> None:
    if not isinstance(arguments, dict):
        raise ToolError("INVALID_ARGUMENT", "arguments must be a JSON object")
    error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "<root>"
        raise ToolError("INVALID_ARGUMENT", f"arguments do not match the tool's parameters at {where}: "
                                            f"{error.message}"[:1000])
