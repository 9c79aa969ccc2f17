"""Mid-stream failover continues a generation on another backend from the text already delivered,
sent as a trailing assistant message. Servers treat that message in one of three ways
(`llmmesh.common.backends.Continuation`), and the adapter of each backend makes the stream that
comes back hold exactly the new text:

- continue (Ollama, Anthropic): it goes on from the message. Nothing to do.
- echo (llama.cpp): it streams the message back first, glued to the new text in the first delta
  ("Paris, the capital of France, is famous for its", " iconic"…). The echo is stripped, even when
  split across several deltas or rendered with other whitespace.
- flag (vLLM): it goes on only with `continue_final_message: true, add_generation_prompt: false`
  (protocols.py adds them); otherwise it answers afresh.

Two things hold whatever the server does. The message is sent without trailing whitespace
(Anthropic refuses it; tokenizers turn a lone trailing space into an odd token and the model
derails), and the whitespace held back is reconciled at the join: the new text's leading
whitespace is trimmed by what the caller already has, so "for " + " its" reads "for its".
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from llmmesh.common.model_call import AttemptEvent, TextDelta

# _echo_end's answers besides an index: keep reading, or the text is no echo.
_UNDECIDED = -1
_NOT_ECHO = -2


def sent_prefix(prefix: str) -> str:
    """What goes to the backend as the trailing assistant message."""
    return prefix.rstrip()


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _echo_end(sent: str, text: str) -> int:
    """Where an echo of `sent` at the start of `text` ends, whitespace runs matching any
    whitespace run; _UNDECIDED while `text` is a start of such an echo, _NOT_ECHO when it is not."""
    i, j = _skip_space(sent, 0), _skip_space(text, 0)
    while i < len(sent):
        if j >= len(text):
            return _UNDECIDED
        if sent[i].isspace() != text[j].isspace():
            return _NOT_ECHO
        if sent[i].isspace():
            i, j = _skip_space(sent, i), _skip_space(text, j)
            continue
        if sent[i] != text[j]:
            return _NOT_ECHO
        i, j = i + 1, j + 1
    return j


def _join(held: str, text: str) -> str:
    """`text` (the first new text) after a caller that already has whitespace `held`."""
    lead = text[:len(text) - len(text.lstrip())]
    if not held or not lead:
        return text
    if lead.startswith(held):
        return text[len(held):]
    if held.startswith(lead):
        return text[len(lead):]
    return text


async def continued(events: AsyncIterator[AttemptEvent], prefix: str, echo: bool) -> AsyncIterator[AttemptEvent]:
    """`events` of an attempt that continues from `prefix`, holding only text new to the caller:
    an echo of the sent prefix stripped (with `echo`), the whitespace at the join reconciled."""
    if not prefix:
        async for event in events:
            yield event
        return
    sent = sent_prefix(prefix)
    held = prefix[len(sent):]
    echoing = echo and bool(sent)
    pending = ""  # text not yet passed on: a possible echo, then the join's leading whitespace
    tokens = 0  # new tokens in it (an echo's are none)
    joined = False
    async for event in events:
        if joined:
            yield event
            continue
        if isinstance(event, TextDelta):
            pending += event.text
            tokens += event.tokens
            if echoing:
                end = _echo_end(sent, pending)
                if end == _UNDECIDED:
                    continue
                # Echoed text holds no new token; the delta that ends the echo carries the first one.
                pending, tokens = (pending, tokens) if end == _NOT_ECHO else (pending[end:], event.tokens)
                echoing = False
            if not pending.strip():
                continue  # whitespace only: the join needs the first word to decide
            joined = True
            yield TextDelta(_join(held, pending), tokens)
            continue
        # Something else (tool calls, the end) with text held: settle it. Text still undecided as
        # an echo was only ever a part of the echo, which the caller has.
        if not echoing and (text := _join(held, pending)):
            yield TextDelta(text, max(1, tokens))
        joined = True
        yield event
