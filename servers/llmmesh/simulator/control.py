"""The control API under /_sim/ (not part of Ollama): faults, stats and scripts at runtime."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from llmmesh.simulator.faults import FaultSpecError, format_fault_spec, parse_fault_spec
from llmmesh.simulator.scripts import ScriptError, parse_rules
from llmmesh.simulator.state import STATE


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return None
    return json.loads(raw)


def _faults_view(request: web.Request) -> dict[str, Any]:
    faults = request.app[STATE].faults
    return {"spec": format_fault_spec(faults.spec), "remaining": faults.remaining}


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response(_faults_view(request))


async def put_faults(request: web.Request) -> web.Response:
    """Body ``{"spec": "drop_after=3"}``; an empty spec (or body) clears the instance fault."""
    try:
        body = await _json_body(request)
        text = body.get("spec", "") if isinstance(body, dict) else (body or "")
        if not isinstance(text, str):
            raise FaultSpecError("spec must be a string")
        spec = parse_fault_spec(text)
    except (json.JSONDecodeError, FaultSpecError) as exc:
        return _error(400, str(exc))
    request.app[STATE].faults.set(spec)
    return web.json_response(_faults_view(request))


async def delete_faults(request: web.Request) -> web.Response:
    request.app[STATE].faults.clear()
    return web.json_response(_faults_view(request))


async def get_stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"name": state.config.name, **state.stats.snapshot(state.generations)})


async def reset_stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.stats.reset()
    return web.json_response({"name": state.config.name, **state.stats.snapshot(state.generations)})


async def get_scripts(request: web.Request) -> web.Response:
    return web.json_response({"rules": request.app[STATE].scripts.to_json()})


async def put_scripts(request: web.Request) -> web.Response:
    """Replace all rules: body is a list of rules or ``{"rules": [...]}`` (empty clears)."""
    try:
        rules = parse_rules(await _json_body(request) or [])
    except (json.JSONDecodeError, ScriptError) as exc:
        return _error(400, str(exc))
    request.app[STATE].scripts.replace(rules)
    return web.json_response({"rules": request.app[STATE].scripts.to_json()})


async def delete_scripts(request: web.Request) -> web.Response:
    request.app[STATE].scripts.replace(())
    return web.json_response({"rules": []})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/_sim/faults", get_faults)
    app.router.add_put("/_sim/faults", put_faults)
    app.router.add_post("/_sim/faults", put_faults)
    app.router.add_delete("/_sim/faults", delete_faults)
    app.router.add_get("/_sim/stats", get_stats)
    app.router.add_post("/_sim/stats/reset", reset_stats)
    app.router.add_get("/_sim/scripts", get_scripts)
    app.router.add_put("/_sim/scripts", put_scripts)
    app.router.add_delete("/_sim/scripts", delete_scripts)
