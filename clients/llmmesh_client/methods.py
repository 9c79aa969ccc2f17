"""The one table of every RPC the SDK calls.

Each entry names the method, its generated stub, the deadline kind that bounds it and whether it is
idempotent. The call shape (unary, server stream, bidi) comes from the proto descriptor, not from
hand-written flags. The service config's retry policy (`config.service_config`) and the per-call
deadlines (`config.Deadlines`) both read this table, so "which methods may be retried" exists once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import ModuleType

from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llmmesh_client._proto.llmmesh.collaboration.v1 import collaboration_service_pb2, collaboration_service_pb2_grpc
from llmmesh_client._proto.llmmesh.compare.v1 import compare_service_pb2, compare_service_pb2_grpc
from llmmesh_client._proto.llmmesh.inference.v1 import inference_service_pb2, inference_service_pb2_grpc
from llmmesh_client._proto.llmmesh.judge.v1 import judge_service_pb2, judge_service_pb2_grpc
from llmmesh_client._proto.llmmesh.jury.v1 import jury_service_pb2, jury_service_pb2_grpc
from llmmesh_client._proto.llmmesh.planexecute.v1 import planexecute_service_pb2, planexecute_service_pb2_grpc
from llmmesh_client._proto.llmmesh.reflection.v1 import reflection_service_pb2, reflection_service_pb2_grpc
from llmmesh_client._proto.llmmesh.runs.v1 import runs_service_pb2, runs_service_pb2_grpc
from llmmesh_client._proto.llmmesh.tooluse.v1 import tooluse_service_pb2, tooluse_service_pb2_grpc


class Kind(StrEnum):
    """What bounds a call's default deadline (see `config.Deadlines`)."""

    LISTING = "listing"  # cheap reads: models, backends, criteria, tools, health
    EMBED = "embed"
    COMPLETION = "completion"  # one model call answered whole
    GENERATION = "generation"  # one model call streamed
    PATTERN = "pattern"  # a pattern run, unary or streamed
    SESSION = "session"  # a long-lived interactive chat stream


class Shape(StrEnum):
    UNARY = "unary"
    SERVER_STREAM = "server_stream"
    BIDI = "bidi"


@dataclass(frozen=True)
class Method:
    descriptor: MethodDescriptor
    stub_class: type
    kind: Kind
    # Safe to send twice: only these are retried (on UNAVAILABLE, by the channel's service config).
    idempotent: bool = False

    @property
    def service(self) -> str:
        return self.descriptor.containing_service.full_name

    @property
    def name(self) -> str:
        return self.descriptor.name

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"

    @property
    def shape(self) -> Shape:
        if self.descriptor.client_streaming:
            return Shape.BIDI
        return Shape.SERVER_STREAM if self.descriptor.server_streaming else Shape.UNARY


def _methods(pb2: ModuleType, pb2_grpc: ModuleType, service: str, **kinds: tuple[Kind, bool]) -> dict[str, Method]:
    desc = pb2.DESCRIPTOR.services_by_name[service]
    stub = getattr(pb2_grpc, f"{service}Stub")
    declared = {m.name for m in desc.methods}
    if declared - set(kinds) and service != "Health":
        raise RuntimeError(f"{service}: no SDK entry for {sorted(declared - set(kinds))}")
    return {name: Method(desc.methods_by_name[name], stub, kind, idem) for name, (kind, idem) in kinds.items()}


_L, _E, _C, _G, _P, _S = Kind.LISTING, Kind.EMBED, Kind.COMPLETION, Kind.GENERATION, Kind.PATTERN, Kind.SESSION

INFERENCE = _methods(inference_service_pb2, inference_service_pb2_grpc, "InferenceService",
                     Generate=(_G, False), Chat=(_S, False), CompleteChat=(_C, False),
                     CompleteChatStream=(_G, False), Embed=(_E, True),
                     ListModels=(_L, True), ListBackends=(_L, True))
JUDGE = _methods(judge_service_pb2, judge_service_pb2_grpc, "JudgeService",
                 Evaluate=(_P, False), EvaluateStream=(_P, False), ListCriteria=(_L, True))
JURY = _methods(jury_service_pb2, jury_service_pb2_grpc, "JuryService",
                Evaluate=(_P, False), EvaluateStream=(_P, False))
TOOLUSE = _methods(tooluse_service_pb2, tooluse_service_pb2_grpc, "ToolUseService",
                   Execute=(_P, False), ExecuteStream=(_P, False), ListTools=(_L, True))
PLANEXECUTE = _methods(planexecute_service_pb2, planexecute_service_pb2_grpc, "PlanExecuteService",
                       Run=(_P, False), RunStream=(_P, False))
REFLECTION = _methods(reflection_service_pb2, reflection_service_pb2_grpc, "ReflectionService",
                      Improve=(_P, False), ImproveStream=(_P, False))
COLLABORATION = _methods(collaboration_service_pb2, collaboration_service_pb2_grpc, "CollaborationService",
                         Run=(_P, False), RunStream=(_P, False))
COMPARE = _methods(compare_service_pb2, compare_service_pb2_grpc, "CompareService",
                   Run=(_P, False), RunStream=(_P, False))
RUNS = _methods(runs_service_pb2, runs_service_pb2_grpc, "RunsService",
                GetRun=(_L, True), ListRuns=(_L, True), DeleteRun=(_L, False))
HEALTH = _methods(health_pb2, health_pb2_grpc, "Health", Check=(_L, True))

ALL: tuple[Method, ...] = tuple(
    m for table in (INFERENCE, JUDGE, JURY, TOOLUSE, PLANEXECUTE, REFLECTION, COLLABORATION, COMPARE, RUNS, HEALTH)
    for m in table.values()
)

# Short name → full gRPC service name, for health checks and the CLI.
SERVICES: dict[str, str] = {
    "inference": INFERENCE["Generate"].service,
    "judge": JUDGE["Evaluate"].service,
    "jury": JURY["Evaluate"].service,
    "tooluse": TOOLUSE["Execute"].service,
    "planexecute": PLANEXECUTE["Run"].service,
    "reflection": REFLECTION["Improve"].service,
    "collaboration": COLLABORATION["Run"].service,
    "compare": COMPARE["Run"].service,
    "runs": RUNS["GetRun"].service,
}


def idempotent() -> list[Method]:
    return [m for m in ALL if m.idempotent]

