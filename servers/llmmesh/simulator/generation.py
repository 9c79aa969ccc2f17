"""Deterministic text generation: a pure function of (model, seed, input) plus the scripts.

Unscripted text is pseudo-words, one token per word, each with a leading space (" Lorem",
" ipsum."). No seed means seed 0, so even unseeded requests are reproducible.

Failover continuation: the mesh resumes an interrupted answer by sending the partial output as
a trailing assistant message. What the simulator does with it is its `continuation`: "ignore"
treats it as a new input (the output is the pure function of that input); "continue" answers what
the conversation without it answers, less the prefix, so an interrupted and a continued stream
read as one; "echo" sends the prefix back first (llama.cpp), split over two deltas, the second
glued to the first new token; "flag" continues only when the request asks (vLLM).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, replace
from typing import Any

from llmmesh.simulator.genrequest import GenRequest
from llmmesh.simulator.schema_instance import schema_instance
from llmmesh.simulator.scripts import ScriptBook

_VOCAB = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore "
    "et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip "
    "ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse cillum fugiat nulla "
    "pariatur excepteur sint occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim "
    "id est laborum mesh model token stream signal river stone cloud light garden bridge engine vector "
    "latency answer question window harbor summit falcon ember maple orbit quartz"
).split()
_WORD_TOKEN = re.compile(r"\s*\S+|\s+$")
_COUNT_TOKEN = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class Answer:
    tokens: tuple[str, ...]  # content chunks, in order; "".join(tokens) is the text
    tool_calls: tuple[dict[str, Any], ...]  # Ollama shape {"function": {"name", "arguments"}}
    done_reason: str  # "stop" | "length"
    prompt_tokens: int
    script_fault: str = ""  # fault spec of the script rule that answered, if any
    scripted: bool = False

    @property
    def text(self) -> str:
        return "".join(self.tokens)


def split_words(text: str) -> list[str]:
    """Word tokens that join back to ``text`` exactly (leading whitespace stays with the word)."""
    return _WORD_TOKEN.findall(text)


def count_tokens(text: str) -> int:
    return len(_COUNT_TOKEN.findall(text))


def seed_for(model: str, seed: int | None, key: str) -> int:
    digest = hashlib.sha256(f"{model}\x00{seed or 0}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def pseudo_tokens(rng: random.Random, count: int) -> list[str]:
    tokens: list[str] = []
    sentence_left = 0
    for _ in range(count):
        word = _VOCAB[rng.randrange(len(_VOCAB))]
        if sentence_left == 0:
            word = word.capitalize()
            sentence_left = rng.randint(5, 12)
        sentence_left -= 1
        if sentence_left == 0:
            word += "."
        elif rng.random() < 0.08:
            word += ","
        tokens.append(" " + word)
    return tokens


def apply_limits(tokens: list[str], num_predict: int | None, stop: tuple[str, ...]) -> tuple[list[str], str]:
    """Cut at ``num_predict`` tokens (reason "length") and before the first stop string ("stop")."""
    limit = len(tokens) if num_predict is None or num_predict < 0 else min(num_predict, len(tokens))
    kept = tokens[:limit]
    reason = "length" if limit < len(tokens) else "stop"
    text = "".join(kept)
    hits = [text.find(s) for s in stop if s and s in text]
    if not hits:
        return kept, reason
    cut, pos, out = min(hits), 0, []
    for token in kept:
        if pos + len(token) > cut:
            if cut > pos:
                out.append(token[: cut - pos])
            break
        out.append(token)
        pos += len(token)
    return out, "stop"


def _pick_tool(req: GenRequest) -> dict[str, Any]:
    """The tool named in the last user message, else the first tool."""
    last = req.last_text().lower()
    for tool in req.tools:
        name = tool["function"]["name"]
        if name.lower() in last or name.lower().replace("_", " ") in last:
            return tool
    return req.tools[0]


def _tool_call(req: GenRequest, seed: int) -> dict[str, Any]:
    function = _pick_tool(req)["function"]
    params = function.get("parameters") or {"type": "object", "properties": {}}
    arguments = schema_instance(params, seed=seed)
    return {"function": {"name": function["name"], "arguments": arguments}}


def _structured_text(req: GenRequest, rng: random.Random, seed: int) -> str:
    if isinstance(req.format, dict):
        return json.dumps(schema_instance(req.format, seed=seed))
    return json.dumps({"text": "".join(pseudo_tokens(rng, 8)).strip()})


def _partial_answer(req: GenRequest) -> str:
    """The partial assistant answer a chat ends with ("" if none)."""
    if req.kind != "chat" or req.last_role() != "assistant" or req.messages[-1].get("tool_calls"):
        return ""
    return req.last_text()


def _continued(req: GenRequest, prefix: str, tokens_per_answer: int, scripts: ScriptBook, echo: bool) -> Answer:
    base = answer(replace(req, messages=req.messages[:-1], num_predict=None), tokens_per_answer, scripts)
    if base.text.startswith(prefix):
        rest = split_words(base.text[len(prefix):])
    else:  # someone else's prefix: go on with words of this input's own
        rng = random.Random(seed_for(req.model, req.seed, req.prompt_key()))
        rest = pseudo_tokens(rng, max(1, tokens_per_answer - count_tokens(prefix)))
    tokens, reason = apply_limits(rest, req.num_predict, req.stop)
    if echo:
        half = len(prefix) // 2
        tokens = [prefix[:half], prefix[half:] + (tokens[0] if tokens else ""), *tokens[1:]]
    # A rule's fault is for the answer it scripts, not for the continuation of it: a failover drill
    # whose rule drops the stream on every instance still has somewhere to continue.
    return Answer(tuple(tokens), (), reason, max(1, count_tokens(req.full_text())), scripted=base.scripted)


def answer(req: GenRequest, tokens_per_answer: int, scripts: ScriptBook, continuation: str = "ignore") -> Answer:
    """What the model says. Raises ``schema_instance.SchemaError`` for an unusable format schema."""
    prefix = _partial_answer(req)
    if prefix and (continuation in ("continue", "echo") or (continuation == "flag" and req.continue_final_message)):
        return _continued(req, prefix, tokens_per_answer, scripts, echo=continuation == "echo")
    seed = seed_for(req.model, req.seed, req.prompt_key())
    rng = random.Random(seed)
    prompt_tokens = max(1, count_tokens(req.full_text()))
    rule = scripts.find(req.model, req.full_text(), req.last_text())
    if rule is not None:
        if rule.tool_calls and req.kind == "chat":
            return Answer((), rule.tool_calls, "stop", prompt_tokens, rule.fault, scripted=True)
        tokens, reason = apply_limits(split_words(rule.response), req.num_predict, req.stop)
        return Answer(tuple(tokens), (), reason, prompt_tokens, rule.fault, scripted=True)
    if req.kind == "chat" and req.tools and req.last_role() == "user":
        return Answer((), (_tool_call(req, seed),), "stop", prompt_tokens)
    if req.format is not None:
        tokens = split_words(_structured_text(req, rng, seed))
    else:
        tokens = pseudo_tokens(rng, tokens_per_answer)
    tokens, reason = apply_limits(tokens, req.num_predict, req.stop)
    return Answer(tuple(tokens), (), reason, prompt_tokens)
