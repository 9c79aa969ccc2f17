"""The GenAI span of one generation in the inference service (OpenTelemetry GenAI conventions).

It wraps the generation's events once, in the servicer, so the cache, the token budget and the
engine's queue-wait and backend-attempt spans all run under it; its attributes come from the final
stats. With tracing off the events are returned as they are: no wrapper, nothing per token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from llmmesh.common.model_call import ChatMessage, Finished, GenerationEvent, ModelCall, TextDelta
from llmmesh.framework import tracing


def operation(call: ModelCall) -> str:
    """gen_ai.operation.name: a plain Generate is a text completion."""
    return "text_completion" if call.prompt and not call.messages else "chat"


def traced(call: ModelCall, events: AsyncIterator[GenerationEvent]) -> AsyncIterator[GenerationEvent]:
    if not tracing.enabled():
        return events
    return _traced(call, events)


async def _traced(call: ModelCall, events: AsyncIterator[GenerationEvent]) -> AsyncIterator[GenerationEvent]:
    op = operation(call)
    content = tracing.record_content()
    text: list[str] = []
    with tracing.span(f"{op} {call.model}".strip(), tracing.genai_request(op, call.model, call.sampling)) as span:
        if content:
            span.set_attribute("gen_ai.input.messages", tracing.messages_json(call.as_messages()))
        async with aclosing(events):
            async for event in events:
                if isinstance(event, Finished):
                    tracing.set_attributes(span, tracing.genai_response(event.stats))
                    if content:
                        span.set_attribute("gen_ai.output.messages",
                                           tracing.messages_json([ChatMessage("assistant", "".join(text))]))
                elif content and isinstance(event, TextDelta):  # only when content is switched on
                    text.append(event.text)
                yield event
