"""Dialects through the real loop and a real sandbox, driven by replayed generations (see replay.py)."""

from __future__ import annotations

import asyncio

import pytest

from inference.dialects import Turn, trim_overshoot
from inference.dialects.harmony import HarmonyDialect
from inference.dialects.openmath import OpenMathDialect
from inference.sample import SamplingConfig
from inference.solver import Solver, SolverConfig
from sandbox_service.local import AsyncLocalSandbox
from tests.inference.replay import HarmonyTokenizer, ReplayEngine

HARMONY_SAMPLE = [
    "<|channel|>analysis<|message|>We need 2^10 mod 1000. Use python.<|end|>"
    "<|start|>assistant<|channel|>analysis to=python code<|message|>x = 2**10 % 1000\nx<|call|>",
    "<|channel|>analysis<|message|>Now the digit sum, reusing x.<|end|>"
    "<|start|>assistant<|channel|>analysis to=python code<|message|>print(x + sum(map(int, str(x))))<|call|>",
    "<|channel|>final<|message|>The answer is \\boxed{30}.<|return|>",
]
OPENMATH_SAMPLE = [
    "Let me compute it.\n<tool_call>\n```python\nn = 12**3\nprint(n % 997)\n```\n</tool_call>\n```output\nFAKE",
    "So the remainder is 731. Check once more without code: \\boxed{731}",
]


async def solve(engine, dialect, samples=1, **config):
    async with AsyncLocalSandbox(pool_size=1) as sandbox:
        solver = Solver(engine, dialect, sandbox, SolverConfig(samples=samples, agree=samples, **config))
        return await solver.solve("What is 2^10 mod 1000 plus its digit sum?")


def test_harmony_round_trip_splices_tool_replies_in_token_space():
    dialect = HarmonyDialect()
    engine = ReplayEngine(HarmonyTokenizer(), [HARMONY_SAMPLE])
    result = asyncio.run(solve(engine, dialect))
    sample = result.samples[0]
    assert result.answer == 30 and sample.finish == "answered"
    assert [t.code for t in sample.turns] == ["x = 2**10 % 1000\nx", "print(x + sum(map(int, str(x))))", None]
    assert [t.output for t in sample.turns[:2]] == ["24", "30"]  # the second cell saw the first's x
    # Each continuation is the previous prompt + exactly the sampled ids + the rendered tool reply.
    encoding = dialect.encoding
    first, second = engine.requests[0], engine.requests[1]
    sampled = encoding.encode(HARMONY_SAMPLE[0], allowed_special="all")
    assert second.prompt_ids[: len(first.prompt_ids) + len(sampled)] == first.prompt_ids + sampled
    tail = encoding.decode_utf8(second.prompt_ids[len(first.prompt_ids) + len(sampled):])
    assert tail == "<|start|>python to=assistant<|channel|>analysis<|message|>24<|end|><|start|>assistant"
    assert first.stop_token_ids == dialect.stop_token_ids == (200002, 200012)


def test_harmony_prompt_declares_the_python_tool():
    dialect = HarmonyDialect(reasoning_effort="medium")
    text = dialect.decode(dialect.prompt_ids("Find x."))
    assert "## python" in text and "Reasoning: medium" in text
    assert text.endswith("<|start|>user<|message|>Find x.\n\nPut the final answer, an integer, inside \\boxed{}."
                         "<|end|><|start|>assistant")


def test_harmony_final_channel_is_where_the_answer_is_read():
    dialect = HarmonyDialect()
    tok = HarmonyTokenizer()
    analysis = "<|channel|>analysis<|message|>maybe \\boxed{1}?<|end|><|start|>assistant"
    final = "<|channel|>final<|message|>\\boxed{2}<|return|>"
    turn = Turn(tok.encode(analysis + final), analysis + final, "stop", 200002)
    assert "\\boxed{2}" in dialect.answer_text([turn]) and "\\boxed{1}" not in dialect.answer_text([turn])


def test_openmath_runs_the_call_hides_the_fake_output_and_counts_calls_left():
    tokenizer = HarmonyTokenizer()
    engine = ReplayEngine(tokenizer, [OPENMATH_SAMPLE])
    result = asyncio.run(solve(engine, OpenMathDialect(tokenizer), sampling=SamplingConfig(max_tool_calls=3)))
    sample = result.samples[0]
    assert result.answer == 731
    assert sample.turns[0].code == "n = 12**3\nprint(n % 997)" and sample.turns[0].output == "731"
    spliced = tokenizer.decode(engine.requests[1].prompt_ids)
    assert "FAKE" not in spliced  # what the model would have invented never reaches it
    assert spliced.endswith("</tool_call>\n```output\n731\n```\nRemaining code executions: 2. You will not be able "
                            "to call code when you run out of executions, so use it wisely. Note that you can still "
                            "continue solving the problem without code after that.\n")


def test_trim_overshoot_keeps_sampled_ids_and_reencodes_only_the_tail():
    tokenizer = HarmonyTokenizer()
    raw = tokenizer.encode("print(1)\n```\n```outputs are")  # "outputs" can end inside a BPE token
    text = "print(1)\n```\n```output"
    fixed = trim_overshoot(tokenizer, raw, text)
    assert tokenizer.decode(fixed) == text
    kept = 0
    while kept < len(fixed) and fixed[kept] == raw[kept]:
        kept += 1
    assert kept >= len(fixed) - 2  # at most the overshooting token was re-encoded


@pytest.mark.parametrize("calls", [0, 1])
def test_tool_call_limit_is_enforced(calls):
    tokenizer = HarmonyTokenizer()
    script = [OPENMATH_SAMPLE[0]] * (calls + 1) + [OPENMATH_SAMPLE[1]]  # one call more than allowed
    engine = ReplayEngine(tokenizer, [script])
    result = asyncio.run(solve(engine, OpenMathDialect(tokenizer), sampling=SamplingConfig(max_tool_calls=calls)))
    statuses = [t.status for t in result.samples[0].turns]
    assert statuses == ["OK"] * calls + ["LIMIT", None]
    assert result.answer == 731
