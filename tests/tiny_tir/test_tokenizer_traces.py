"""Tokenizer and trace rendering: characters and digit groups, stable splices, the right loss mask."""

from __future__ import annotations

from tiny_tir.problems import generate
from tiny_tir.tokenizer import ASSISTANT, END, USER, build_tokenizer, render_prompt
from tiny_tir.traces import STOP, segments, tool_reply
from tiny_tir.train import IGNORE, encode


def test_chat_template_matches_render_prompt() -> None:
    tok = build_tokenizer()
    msgs = [{"role": "user", "content": "What is 2 + 2?"}]
    assert tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) == render_prompt(
        "What is 2 + 2?"
    ) == "<|user|>What is 2 + 2?\n<|assistant|>"
    ids = tok.encode(render_prompt("x"), add_special_tokens=False)
    assert ids[0] == tok.convert_tokens_to_ids(USER) and ids[-1] == tok.convert_tokens_to_ids(ASSISTANT)
    assert tok.eos_token == END


def test_digits_as_a_first_group_of_three_then_pairs_and_splice_stable() -> None:
    tok = build_tokenizer()
    assert tok.tokenize("x=1234567;") == ["x", "=", "123", "45", "67", ";"]
    assert tok.tokenize("118805 64014") == ["118", "80", "5", " ", "640", "14"]
    assert tok.tokenize("Let b = 12, c=3.\\boxed{45}") == [
        "L", "e", "t", " ", "b = ", "12", ",", " ", "c", "=", "3", ".", "\\boxed{", "45", "}"]
    before = "```python\nprint(pow(2, 10, 1000))\n```\n" + STOP
    after = tool_reply("24") + "\\boxed{24}"
    a = tok.encode(before, add_special_tokens=False)
    b = tok.encode(after, add_special_tokens=False)
    assert tok.encode(before + after, add_special_tokens=False) == a + b
    assert tok.decode(a + b) == before + after
    assert tok.decode(tok.encode("caf\u00e9", add_special_tokens=False)) == "caf<|unk|>"


def test_loss_mask_covers_prompt_and_tool_outputs_only() -> None:
    problem = next(p for p in generate(1, 100) if p.kind == "commas")
    segs = segments(problem)
    untrained = [s.text for s in segs if not s.trained]
    # Written out by hand (not rebuilt with the renderer under test): the prompt, the first cell's
    # traceback (the commas made tuples) and the fixed cell's output; 374616 * 424932465 ends in 440.
    assert problem.text == ("Find the remainder when a * b is divided by m, where a = 374,616; "
                            "b = 424,932,465 and m = 1000.")
    assert untrained == [
        "<|user|>" + problem.text + "\n<|assistant|>",
        "\nTraceback (most recent call last):\n"
        '  File "<cell-1>", line 4, in <module>\n'
        "    print(a * b % m)\n"
        "           ~~^~~\n"
        "TypeError: can't multiply sequence by non-int of type 'tuple'\n"
        "```\n",
        "\n\\boxed{440}\n```\n",
    ]
    ids, labels = encode(1, 3)[0]
    assert len(ids) == len(labels) and labels[-1] == ids[-1]  # eos is trained
    assert any(x == IGNORE for x in labels) and any(x != IGNORE for x in labels)
