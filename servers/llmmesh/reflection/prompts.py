"""The messages of the three reflection calls (write, critique, revise) and the critique schema."""

from __future__ import annotations

from typing import Any

from llmmesh.inference.model_call import ChatMessage
from llmmesh.reflection.request import MAX_SCORE

DEFAULT_CRITERIA = "correctness, completeness, clarity and concision"

WRITER_SYSTEM = "You are a careful writer. Complete the task. Reply with the draft only, no preamble."
CRITIC_SYSTEM = (
    "You are a demanding, fair critic. Score the draft against the task and the criteria from 0 (useless) "
    "to 10 (cannot be improved), and say concretely what should change. Answer in JSON with the keys "
    "\"score\" and \"feedback\"."
)
REVISER_SYSTEM = (
    "You revise drafts. Rewrite the draft so that it addresses every point of the feedback and still fulfils "
    "the task. Reply with the complete revised draft only, no preamble."
)

CRITIQUE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "number", "minimum": 0, "maximum": MAX_SCORE},
        "feedback": {"type": "string"},
    },
    "required": ["score", "feedback"],
}


def draft_messages(task: str) -> list[ChatMessage]:
    return [ChatMessage("system", WRITER_SYSTEM), ChatMessage("user", task)]


def critique_messages(task: str, criteria: str, draft: str) -> list[ChatMessage]:
    return [
        ChatMessage("system", CRITIC_SYSTEM),
        ChatMessage("user", f"Task:\n{task}\n\nCriteria:\n{criteria or DEFAULT_CRITERIA}\n\n"
                            f"Draft to critique:\n{draft}"),
    ]


def revision_messages(task: str, draft: str, score: float, feedback: str) -> list[ChatMessage]:
    return [
        ChatMessage("system", REVISER_SYSTEM),
        ChatMessage("user", f"Task:\n{task}\n\nCurrent draft:\n{draft}\n\n"
                            f"Critic's feedback (score {score:g}/10):\n{feedback}"),
    ]
