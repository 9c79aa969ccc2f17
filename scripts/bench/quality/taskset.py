"""The task set: tasks.yaml (labelled tasks per pattern) and the README's pattern examples."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
TASKS_FILE = HERE / "tasks.yaml"
README = HERE.parents[2] / "README.md"

# Pattern → its unary REST route; the streaming route is the same with ":stream".
ROUTES = {
    "judge": "/api/v1/judge/evaluate",
    "jury": "/api/v1/jury/evaluate",
    "tooluse": "/api/v1/tool-use/execute",
    "planexecute": "/api/v1/plan-execute/run",
    "reflection": "/api/v1/reflection/improve",
    "collaboration": "/api/v1/collaborate/run",
}
PATTERNS = tuple(ROUTES)
# The properties a task may label (see tasks.yaml's header).
EXPECT_KEYS = {"verdict", "winner", "tool", "number", "echo"}
# grpcurl's Service/Method (unary) → pattern, for the README's gRPC examples.
GRPC_METHODS = {
    "llmmesh.judge.v1.JudgeService/Evaluate": "judge",
    "llmmesh.jury.v1.JuryService/Evaluate": "jury",
    "llmmesh.tooluse.v1.ToolUseService/Execute": "tooluse",
    "llmmesh.planexecute.v1.PlanExecuteService/Run": "planexecute",
    "llmmesh.reflection.v1.ReflectionService/Improve": "reflection",
    "llmmesh.collaboration.v1.CollaborationService/Run": "collaboration",
}


@dataclass(frozen=True)
class Task:
    pattern: str
    id: str
    # The REST body: an object for the unary route, a JSON array of stream messages for ":stream".
    body: Any
    expect: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.pattern}/{self.id}"

    @property
    def streaming(self) -> bool:
        return isinstance(self.body, list)

    @property
    def route(self) -> str:
        return ROUTES[self.pattern] + (":stream" if self.streaming else "")

    @property
    def request(self) -> dict[str, Any]:
        """The pattern's request (the opening message of a stream)."""
        if not self.streaming:
            return self.body
        return next(iter(self.body[0].values()))


def _task(pattern: str, raw: dict[str, Any]) -> Task:
    unknown = set(raw.get("expect", {})) - EXPECT_KEYS
    if pattern not in ROUTES or unknown or not raw.get("id") or "body" not in raw:
        raise ValueError(f"bad task {pattern}/{raw.get('id')}: unknown pattern or expect keys {sorted(unknown)}")
    return Task(pattern, raw["id"], raw["body"], dict(raw.get("expect", {})), tuple(raw.get("tags", ())))


def load(path: Path = TASKS_FILE) -> list[Task]:
    data = yaml.safe_load(path.read_text())
    tasks = [_task(pattern, raw) for pattern, items in data.items() for raw in items]
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate task ids in {path}")
    return tasks


_CURL = re.compile(r"curl -sN? localhost:8080(/api/v1/[\w/:-]+)\s+-d '([^']*)'")
_GRPCURL = re.compile(r"grpcurl -plaintext\s+-d '([^']*)'\s+localhost:8080 (\S+)")


def readme_tasks(path: Path = README) -> list[Task]:
    """Every pattern example of the README (curl and grpcurl, unary and streaming), as a task with
    no labels: each must return a valid result."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())  # join continued shell lines
    found: list[tuple[str, Any]] = []
    for m in re.finditer(f"{_CURL.pattern}|{_GRPCURL.pattern}", text):
        if m.group(1):
            route, body = m.group(1), m.group(2)
            pattern = next((p for p, r in ROUTES.items() if route in (r, r + ":stream")), None)
        else:
            body, pattern = m.group(3), GRPC_METHODS.get(m.group(4))
        if pattern is not None:
            found.append((pattern, json.loads(body)))
    counts: dict[str, int] = {}
    tasks = []
    for pattern, body in found:
        counts[pattern] = counts.get(pattern, 0) + 1
        tasks.append(Task(pattern, f"readme-{counts[pattern]}", body, tags=("readme",)))
    return tasks


def select(tasks: Iterable[Task], patterns: Sequence[str] | None = None, limit: int | None = None,
           ids: Iterable[str] | None = None) -> list[Task]:
    """The tasks of `patterns` (all by default), in file order, the first `limit` of each; or exactly
    the tasks whose keys ("pattern/id") are in `ids`."""
    wanted = set(ids) if ids is not None else None
    out: list[Task] = []
    taken: dict[str, int] = {}
    for t in tasks:
        if wanted is not None:
            if t.key in wanted:
                out.append(t)
            continue
        if patterns and t.pattern not in patterns:
            continue
        if limit is not None and taken.get(t.pattern, 0) >= limit:
            continue
        taken[t.pattern] = taken.get(t.pattern, 0) + 1
        out.append(t)
    if wanted is not None and len(out) != len(wanted):
        raise ValueError(f"unknown task keys: {sorted(wanted - {t.key for t in out})}")
    return out
