"""Collects every field violation of a request, then raises them together as INVALID_ARGUMENT."""

from __future__ import annotations

from llmmesh.framework.errors import FieldViolation, InvalidArgument


class Violations:
    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def check(self, ok: bool, field: str, description: str) -> None:
        if not ok:
            self.add(field, description)

    def text(self, value: str, field: str, *, required: bool = False, max_chars: int) -> None:
        if required and not value.strip():
            self.add(field, "is required")
        elif len(value) > max_chars:
            self.add(field, f"is {len(value)} characters; the limit is {max_chars}")

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)
