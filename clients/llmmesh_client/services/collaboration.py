"""CollaborationService: agents with roles (round robin, debate, mixture of agents), a human optional."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Required, TypedDict, Unpack

from llmmesh_client._proto.llmmesh.collaboration.v1 import collaboration_service_pb2 as pb
from llmmesh_client.blocking import Facade, blocking, wrapping
from llmmesh_client.methods import COLLABORATION
from llmmesh_client.services.pattern import Options, PatternService
from llmmesh_client.sessions import AsyncCollaborationRun, CollaborationRun


class CollaborationFields(TypedDict, total=False):
    task: Required[str]
    # Agents: {"name": ..., "system_prompt": ..., "model": ...}.
    agents: Sequence[pb.Agent | Mapping[str, Any]]
    strategy: int | str  # "round-robin" | "debate" | "mixture-of-agents"
    rounds: int
    aggregator: pb.Agent | Mapping[str, Any]
    # run_stream only: pause after each round (`awaiting_human`) for human().
    human_in_loop: bool
    options: Options
    # False: the run is not kept in the run store (it still gets a run_id).
    store: bool


class AsyncCollaboration(PatternService):
    def run(self, *, timeout: float | None = None, request_id: str | None = None,
            **fields: Unpack[CollaborationFields]) -> Awaitable[pb.RunResponse]:
        return self._unary(COLLABORATION["Run"], pb.RunRequest, fields, timeout, request_id)

    def run_stream(self, *, timeout: float | None = None, request_id: str | None = None,
                   **fields: Unpack[CollaborationFields]) -> AsyncCollaborationRun:
        """Events: `turn_started`, `delta`, `turn` per agent turn, `awaiting_human`, then `result`."""
        return self._stream(COLLABORATION["RunStream"], "run", pb.RunRequest, fields, timeout, request_id,
                            AsyncCollaborationRun)


class Collaboration(Facade[AsyncCollaboration]):
    run = blocking(AsyncCollaboration.run)
    run_stream = wrapping(AsyncCollaboration.run_stream, CollaborationRun)
