"""Python SDK for llmmesh: typed sync and async clients for the mesh's services.

    from llmmesh_client import LlmMesh

    with LlmMesh("localhost:8080", api_key="...") as mesh:
        for event in mesh.inference.generate("Why is the sky blue?", options={"max_tokens": 32}):
            if event.HasField("delta"):
                print(event.delta.text, end="", flush=True)

Requests and responses are the generated messages (typed by their `.pyi`); this package
re-exports their modules as `inference_pb2`, `judge_pb2`, … for building nested values.
"""

from llmmesh_client._proto.llmmesh.collaboration.v1 import collaboration_service_pb2 as collaboration_pb2
from llmmesh_client._proto.llmmesh.common.v1 import common_pb2
from llmmesh_client._proto.llmmesh.compare.v1 import compare_service_pb2 as compare_pb2
from llmmesh_client._proto.llmmesh.inference.v1 import inference_service_pb2 as inference_pb2
from llmmesh_client._proto.llmmesh.judge.v1 import judge_service_pb2 as judge_pb2
from llmmesh_client._proto.llmmesh.jury.v1 import jury_service_pb2 as jury_pb2
from llmmesh_client._proto.llmmesh.planexecute.v1 import planexecute_service_pb2 as planexecute_pb2
from llmmesh_client._proto.llmmesh.reflection.v1 import reflection_service_pb2 as reflection_pb2
from llmmesh_client._proto.llmmesh.runs.v1 import runs_service_pb2 as runs_pb2
from llmmesh_client._proto.llmmesh.tooluse.v1 import tooluse_service_pb2 as tooluse_pb2
from llmmesh_client.client import AsyncLlmMesh, LlmMesh
from llmmesh_client.config import DEFAULT_TARGET, ClientOptions, Deadlines, RetryPolicy, Tls
from llmmesh_client.errors import (
    AbortedError,
    AuthenticationError,
    CancelledError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InternalError,
    InvalidArgumentError,
    LlmMeshError,
    MalformedModelOutputError,
    NotFoundError,
    PermissionDeniedError,
    QuorumNotReachedError,
    RateLimitedError,
    UnavailableError,
    UnimplementedError,
)
from llmmesh_client.sessions import (
    AsyncChatSession,
    AsyncCollaborationRun,
    AsyncPlanRun,
    AsyncRunStream,
    ChatSession,
    CollaborationRun,
    PlanRun,
    RunStream,
)

__all__ = [
    "DEFAULT_TARGET",
    "AbortedError",
    "AsyncChatSession",
    "AsyncCollaborationRun",
    "AsyncLlmMesh",
    "AsyncPlanRun",
    "AsyncRunStream",
    "AuthenticationError",
    "CancelledError",
    "ChatSession",
    "ClientOptions",
    "CollaborationRun",
    "DeadlineExceededError",
    "Deadlines",
    "FailedPreconditionError",
    "FieldViolation",
    "InternalError",
    "InvalidArgumentError",
    "LlmMesh",
    "LlmMeshError",
    "MalformedModelOutputError",
    "NotFoundError",
    "PermissionDeniedError",
    "PlanRun",
    "QuorumNotReachedError",
    "RateLimitedError",
    "RetryPolicy",
    "RunStream",
    "Tls",
    "UnavailableError",
    "UnimplementedError",
    "collaboration_pb2",
    "common_pb2",
    "compare_pb2",
    "inference_pb2",
    "judge_pb2",
    "jury_pb2",
    "planexecute_pb2",
    "reflection_pb2",
    "runs_pb2",
    "tooluse_pb2",
]
