"""What the models and the judges read. Every model gets the same messages (the system prompt, then
the prompt or the conversation); the judges read the prompt, or the conversation written out, as
the question each answer answers."""

from __future__ import annotations

from collections.abc import Sequence

from llmmesh.common.model_call import ChatMessage

# An answer's token budget when the caller sets no max_tokens: room for a few paragraphs.
ANSWER_TOKENS = 512


def answer_messages(system: str, conversation: Sequence[ChatMessage]) -> list[ChatMessage]:
    return ([ChatMessage("system", system)] if system else []) + list(conversation)


def question(conversation: Sequence[ChatMessage]) -> str:
    """The prompt itself, or a conversation as `role: text` lines (its last message is the user's)."""
    if len(conversation) == 1:
        return conversation[0].content
    return "\n".join(f"{m.role}: {m.content}" for m in conversation)
