"""The shared structured-output mechanism without a server: budgets, repairs, the loop guard."""

from __future__ import annotations

import json

import pytest
from google.rpc import error_details_pb2

from llmmesh.common.model_call import ChatMessage, Sampling
from llmmesh.patterns.free_text import complete_text
from llmmesh.patterns.json_budget import UnboundedSchema, token_budget
from llmmesh.patterns.json_text_stream import FieldText
from llmmesh.patterns.numbers import numbers
from llmmesh.patterns.options import FREE_TEXT_FREQUENCY_PENALTY, step_sampling
from llmmesh.patterns.repetition import cut_repetition, is_degenerate
from llmmesh.patterns.structured import JsonDelta, MalformedModelOutput, complete_json, stream_json
from tests.support.fake_model import FakeModelClient, Reply

SCHEMA = {"type": "object", "required": ["reasoning", "score"], "properties": {
    "reasoning": {"type": "string", "maxLength": 200},
    "score": {"type": "integer", "minimum": 1, "maximum": 5}}}
ASK = [ChatMessage("user", "rate it")]


def test_budget_covers_the_longest_valid_document() -> None:
    longest = '{"reasoning": "' + "x" * 200 + '", "score": 5}'
    assert len(longest) < token_budget(SCHEMA) < 400  # one token per character at worst, and not much more


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"text": {"type": "string"}}},
    {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "integer"}}}},
])
def test_unbounded_text_or_lists_are_a_programming_error(schema) -> None:
    with pytest.raises(UnboundedSchema):
        token_budget(schema)


async def test_every_attempt_is_capped_by_the_schema_budget_not_the_callers_larger_limit() -> None:
    client = FakeModelClient(['{"reasoning": "fine", "score": 4}'])
    await complete_json(client, "m", ASK, SCHEMA, sampling=Sampling(max_tokens=1024))
    assert client.calls[0].sampling.max_tokens == token_budget(SCHEMA)


async def test_a_retry_repairs_names_the_problem_and_leaves_greedy_decoding() -> None:
    client = FakeModelClient(['{"reasoning": "fine", "score": 9}', '{"reasoning": "fine", "score": 4}'])
    result = await complete_json(client, "m", ASK, SCHEMA, sampling=Sampling(temperature=0.0, seed=1))
    assert result.value["score"] == 4
    first, second = client.calls
    assert second.messages[:1] == first.messages
    assert second.messages[1] == ChatMessage("assistant", '{"reasoning": "fine", "score": 9}')
    assert "score" in second.messages[2].content and "maximum" in second.messages[2].content
    assert second.sampling.seed != first.sampling.seed and second.sampling.temperature > 0


async def test_cross_field_rules_are_repaired_like_schema_errors() -> None:
    client = FakeModelClient(['{"reasoning": "r", "score": 2}', '{"reasoning": "r", "score": 3}'])
    result = await complete_json(client, "m", ASK, SCHEMA,
                                 check=lambda v: "" if v["score"] % 2 else "the score must be odd")
    assert result.value["score"] == 3
    assert "the score must be odd" in client.calls[1].messages[-1].content


async def test_after_the_attempts_the_error_names_the_model_that_answered() -> None:
    client = FakeModelClient(["nope"], model="smollm2:135m")
    with pytest.raises(MalformedModelOutput) as err:
        await complete_json(client, "", ASK, SCHEMA, attempts=2)
    assert err.value.model == "smollm2:135m" and "not JSON" in err.value.problem
    assert len(client.calls) == 2 and err.value.cut_off == 0  # the model's fault, not the budget's


async def test_a_reply_cut_off_at_the_limit_says_so() -> None:
    client = FakeModelClient([Reply('{"reasoning": "abc', done_reason="length")])
    with pytest.raises(MalformedModelOutput) as err:
        await complete_json(client, "m", ASK, SCHEMA, attempts=1)
    assert "cut off" in err.value.problem
    info = error_details_pb2.ErrorInfo()
    assert err.value.details()[0].Unpack(info) and info.metadata["cut_off"] == "1"  # the benchmark counts these


def test_step_sampling_fills_the_budget_only_when_the_caller_set_none() -> None:
    assert step_sampling(Sampling(), 200).max_tokens == 200
    assert step_sampling(Sampling(max_tokens=900), 200).max_tokens == 900
    free = step_sampling(Sampling(), 200, free_text=True)
    assert free.frequency_penalty == FREE_TEXT_FREQUENCY_PENALTY
    assert step_sampling(Sampling(frequency_penalty=0.0), 200, free_text=True).frequency_penalty == 0.0


def test_the_loop_guard_keeps_the_first_occurrence_and_leaves_prose_alone() -> None:
    looped = "Fresh bread daily. " + "Your Favorite Bakery " * 60
    assert is_degenerate(looped)
    assert cut_repetition(looped) == "Fresh bread daily. Your Favorite Bakery"
    haiku = "Waves fold into foam,\nthe tide keeps its old promise,\nsalt wind on my face."
    assert not is_degenerate(haiku) and cut_repetition(haiku) == haiku


@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_field_text_decodes_one_fields_characters_in_any_chunking(chunk: int) -> None:
    document = json.dumps({"score": 4, "reasoning": 'a "quoted" \\ line\nand é 😀 {x}',
                           "nested": {"reasoning": "not this"}, "tail": "nor this"}, ensure_ascii=True)
    field = FieldText("reasoning")
    text = "".join(field.feed(document[i:i + chunk]) for i in range(0, len(document), chunk))
    assert text == 'a "quoted" \\ line\nand é 😀 {x}'


def test_field_text_ignores_lone_surrogates_and_non_json() -> None:
    assert FieldText("r").feed('{"r": "a\\udc00b\\ud800"}') == "ab"
    assert FieldText("r").feed("I think the answer is good") == ""


async def test_a_named_text_field_streams_its_words_not_the_json() -> None:
    client = FakeModelClient(['{"reasoning": "four is right", "score": 4}'])
    deltas = [item.text async for item in stream_json(client, "m", ASK, SCHEMA, text_field="reasoning")
              if isinstance(item, JsonDelta)]
    assert "".join(deltas) == "four is right"


def no_big_numbers(text: str) -> str:
    return "use the result 150" if "190" in text else ""


async def test_free_text_advice_is_repaired_once_and_the_repair_stands() -> None:
    client = FakeModelClient(["It is 144 + 6 = 190.", "It is 150.", "never asked"])
    reply = await complete_text(client, "m", ASK, Sampling(max_tokens=50), advise=no_big_numbers)
    assert reply.text == "It is 150." and len(client.calls) == 2
    assert client.calls[1].messages[-2:] == (ChatMessage("assistant", "It is 144 + 6 = 190."),
                                             ChatMessage("user", "That reply was not valid: use the result 150. "
                                                                 "Write the reply again, corrected."))


async def test_free_text_keeps_the_advised_reply_when_the_repairs_are_unusable() -> None:
    client = FakeModelClient(["It is 190.", "...", "answer"])
    reply = await complete_text(client, "m", ASK, Sampling(max_tokens=50), advise=no_big_numbers)
    assert reply.text == "It is 190." and len(client.calls) == 3  # advice once, then the usual 2 attempts


async def test_free_text_placeholders_are_not_answers() -> None:
    with pytest.raises(MalformedModelOutput) as err:
        await complete_text(FakeModelClient(["<answer>"]), "m", ASK, Sampling(max_tokens=50))
    assert "placeholder" in err.value.problem


def test_a_hyphen_or_an_operator_is_not_a_minus_sign() -> None:
    assert [value for value, _ in numbers("ALPHA-42, -3 and 50-8")] == [42, -3, 50, 8]
