"""Where CLI output goes: the answer (or JSON) on stdout, progress and errors on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TextIO

from google.protobuf import json_format
from google.protobuf.message import Message

from llmmesh_client.errors import InvalidArgumentError, LlmMeshError, NotFoundError

PROG = "llmmesh"


def to_dict(message: Message) -> dict[str, object]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


class Output:
    def __init__(self, as_json: bool = False, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self.json = as_json
        self.out = stdout or sys.stdout
        self.err = stderr or sys.stderr

    # stdout: the answer -----------------------------------------------------------------------

    def text(self, chunk: str) -> None:
        """Part of the answer, shown as soon as it arrives."""
        self.out.write(chunk)
        self.out.flush()

    def line(self, text: str = "") -> None:
        self.text(text + "\n")

    def message(self, message: Message) -> None:
        """One JSON object (a unary answer) or one JSON line (a stream event)."""
        self.line(json.dumps(to_dict(message), ensure_ascii=False))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        cells = [list(map(str, header)), *[[str(c) for c in row] for row in rows]]
        widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
        for row in cells:
            self.line("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())

    # stderr: progress and problems ------------------------------------------------------------

    def progress(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()

    def note(self, chunk: str) -> None:
        """Inline remark on stderr (no newline), e.g. "[stopped]" after a reply."""
        self.err.write(chunk)
        self.err.flush()

    def error(self, err: LlmMeshError) -> None:
        lines = [f"{PROG}: {err.code.name}: {err.message}"]
        if isinstance(err, InvalidArgumentError):
            lines += [f"  {v.field}: {v.description}" for v in err.field_violations]
        if isinstance(err, NotFoundError) and err.resource is not None and err.resource.description:
            lines.append(f"  {err.resource.resource_type} {err.resource.resource_name!r}: {err.resource.description}")
        retry_after = getattr(err, "retry_after", None)
        if retry_after is not None:
            lines.append(f"  retry after {retry_after:g}s")
        for line in lines:
            self.progress(line)

    def fail(self, text: str) -> None:
        self.progress(f"{PROG}: {text}")
