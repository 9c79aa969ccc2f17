"""Admission priority classes, as the key file, the `x-llmmesh-priority` header and the queue name
them. Kept free of protobuf: the key file (framework) and the admission queue (inference) share it."""

from __future__ import annotations

from enum import IntEnum

# HTTP header (and gRPC metadata) that asks for a class on REST, the OpenAI front door and gRPC alike.
PRIORITY_HEADER = "x-llmmesh-priority"


class Priority(IntEnum):
    """Lower is more urgent: the admission queue serves every interactive request before any batch one."""

    INTERACTIVE = 0
    BATCH = 1

    @property
    def label(self) -> str:
        """The spelling in the key file, the header and metric labels."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Priority | None:
        """`interactive` or `batch` (any case); None for anything else."""
        return next((p for p in cls if p.label == text.strip().lower()), None)

    def capped(self, allowed: Priority) -> Priority:
        """This class, or the most urgent one a key is allowed if that is less urgent."""
        return max(self, allowed)
