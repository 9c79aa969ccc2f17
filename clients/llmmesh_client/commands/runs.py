"""`runs`: the runs the mesh stored. `llmmesh runs` lists (newest first), `llmmesh runs show ID`
prints one, `llmmesh runs delete ID` deletes it."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from llmmesh_client._proto.llmmesh.runs.v1 import runs_service_pb2 as pb
from llmmesh_client.client import LlmMesh
from llmmesh_client.commands import UsageError
from llmmesh_client.commands.output import Output, to_dict
from llmmesh_client.convert import enum_choices


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("runs", parents=[common], help="stored runs: list them, show or delete one",
                       description="List stored runs (newest first); `show ID` or `delete ID` for one.")
    p.add_argument("--pattern", default="", help="only this pattern's runs (judge, jury, …, compare)")
    p.add_argument("--status", choices=enum_choices(pb.RunStatus.DESCRIPTOR))
    p.add_argument("--model", default="", help="only runs this model answered in")
    p.add_argument("--since", type=_time, help="created at or after (ISO 8601, e.g. 2026-05-01T00:00:00Z)")
    p.add_argument("--until", type=_time, help="created before (ISO 8601)")
    p.add_argument("--principal", default="", help="only this API key's runs (needs runs:admin)")
    p.add_argument("--limit", type=int, default=20, help="runs to show (default 20)")
    p.set_defaults(handler=list_runs)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    show = actions.add_parser("show", parents=[common], help="one run in full")
    show.add_argument("run_id")
    show.set_defaults(handler=show_run)
    delete = actions.add_parser("delete", parents=[common], help="delete one run")
    delete.add_argument("run_id")
    delete.set_defaults(handler=delete_run)


def _time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 time") from None
    return parsed if parsed.tzinfo is not None else parsed.astimezone()


def _status(value: int) -> str:
    return pb.RunStatus.Name(value).removeprefix("RUN_STATUS_").lower()


def list_runs(client: LlmMesh, args: argparse.Namespace, out: Output) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    filters = {"pattern": args.pattern, "status": args.status, "model": args.model, "created_after": args.since,
               "created_before": args.until, "principal": args.principal, "page_size": min(args.limit, 100)}
    runs = []
    for run in client.runs.iterate(**{k: v for k, v in filters.items() if v}):
        runs.append(run)
        if len(runs) == args.limit:
            break
    if out.json:
        for run in runs:
            out.message(run)
        return 0
    out.table(("RUN", "PATTERN", "METHOD", "STATUS", "CREATED", "DURATION", "MODELS", "KEY"),
              [(r.run_id, r.pattern, r.method, _status(r.status),
                r.created_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"), f"{r.duration_ms:.0f} ms",
                ",".join(r.models) or "-", r.principal or "-") for r in runs])
    return 0


def show_run(client: LlmMesh, args: argparse.Namespace, out: Output) -> int:
    run = client.runs.get(args.run_id)
    if out.json:
        out.message(run)
        return 0
    out.line(f"run: {run.run_id}")
    out.line(f"pattern: {run.pattern} ({run.method}), {_status(run.status)}")
    out.line(f"created: {run.created_at.ToJsonString()}, {run.duration_ms:.0f} ms")
    out.line(f"key: {run.principal or '-'}")
    out.line(f"models: {', '.join(run.models) or '-'}; backends: {', '.join(run.backends) or '-'}")
    u = run.usage
    out.line(f"usage: {u.prompt_tokens} prompt + {u.output_tokens} output tokens, {u.model_calls} model calls")
    out.line(f"request: {json.dumps(to_dict(run.request), ensure_ascii=False)}")
    out.line(f"events: {len(run.events)}" + (f" ({run.events_dropped} more not kept)" if run.events_dropped else ""))
    if run.HasField("result"):
        out.line(f"result: {json.dumps(to_dict(run.result), ensure_ascii=False)}")
    if run.HasField("error"):
        out.line(f"error: {run.error.message} (code {run.error.code})")
    return 0


def delete_run(client: LlmMesh, args: argparse.Namespace, out: Output) -> int:
    client.runs.delete(args.run_id)
    out.progress(f"deleted {args.run_id}")
    return 0
