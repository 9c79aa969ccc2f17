"""`llmmesh chat`: an interactive conversation on one Chat stream.

Replies stream to the terminal as they arrive. Ctrl-C during a reply sends the stream's STOP
control: the generation ends (the server closes the backend request) and the session goes on.
Ctrl-C at the prompt clears the line. Ctrl-D or /exit quits; /reset forgets the history.
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType
from typing import Any

from llmmesh_client.client import LlmMesh
from llmmesh_client.commands import add_generation_options, generation_options
from llmmesh_client.commands.output import Output
from llmmesh_client.errors import LlmMeshError
from llmmesh_client.sessions import ChatSession

PROMPT = "you> "
HELP = "commands: /reset forgets the conversation, /exit quits (or Ctrl-D); Ctrl-C stops a reply"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("chat", parents=[common], help="interactive chat (Ctrl-C stops a reply, Ctrl-D quits)")
    p.add_argument("--system", default="", help="system prompt for the conversation")
    add_generation_options(p)
    p.set_defaults(handler=chat)


class StopOnInterrupt:
    """While a reply streams, SIGINT sends STOP on the session instead of raising KeyboardInterrupt.

    The handler only writes the control message (on the client's loop thread); the reply loop
    keeps reading until the server's `done` (done_reason "cancelled"), so no event is lost.
    """

    def __init__(self, session: ChatSession) -> None:
        self.session = session
        self.stopping = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            return
        self.stopping = True
        try:
            self.session.stop()
        except LlmMeshError:
            pass  # the stream is gone; the reply loop reports it

    def __enter__(self) -> StopOnInterrupt:
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)


def reply(session: ChatSession, text: str, out: Output) -> None:
    with StopOnInterrupt(session) as interrupt:
        try:
            for event in session.send(text):
                if out.json:
                    out.message(event)
                    continue
                kind = event.WhichOneof("event")
                if kind == "delta":
                    out.text(event.delta.text)
                elif kind == "tool_calls":
                    names = ", ".join(c.name for c in event.tool_calls.tool_calls)
                    out.note(f"[tool calls: {names}]")
                elif kind == "done":
                    out.line()
                    if event.done.done_reason == "cancelled" or interrupt.stopping:
                        out.progress("[stopped]")
        except LlmMeshError as err:
            if not out.json:
                out.line()
            out.error(err)


def chat(client: LlmMesh, args: argparse.Namespace, out: Output) -> int:
    interactive = sys.stdin.isatty()
    if interactive:
        try:
            import readline  # noqa: F401 - line editing and history for input()
        except ImportError:
            pass
        out.progress(f"chatting with {args.model or 'the default model'} at {args.target}. {HELP}")

    def open_session() -> ChatSession:
        return client.inference.chat(model=args.model, system=args.system, options=generation_options(args))

    session = open_session()
    try:
        while True:
            try:
                line = input(PROMPT if interactive else "")
            except EOFError:
                if interactive:
                    out.line()
                return 0
            except KeyboardInterrupt:
                out.line()
                continue
            command = line.strip()
            if not command:
                continue
            if command in ("/exit", "/quit"):
                return 0
            if command == "/help":
                out.progress(HELP)
                continue
            if command == "/reset":
                try:
                    session.reset()
                    out.progress("[conversation cleared]")
                except LlmMeshError as err:
                    out.error(err)
            else:
                reply(session, line, out)
            if not session.is_open:
                out.progress("[the chat stream ended; starting a new conversation]")
                session.close()
                session = open_session()
    finally:
        session.close()
