"""The tiny model's tokenizer, saved as a Hugging Face fast tokenizer: one token per character, except
for three kinds of piece that make the model's copies single-token lookups:

- digits in groups: the first three, then pairs (`118805` is `118` `80` `5`), so a 6-digit number is
  three tokens to copy, not six keyed on digits that occur all over the prompt. Groups of three
  throughout (as in Llama 3's and GPT-4's tokenizers) left a small model unable to copy a three-digit
  group that follows another: pairs come from 100 values it sees everywhere and copies early;
- a one-letter name with its ` = ` (`b = `): the token before each number the code assigns is the
  same token as before that number in the problem ("Let b = 681198"), so copying it is one induction
  step (find the earlier `b = `, take what followed) rather than a match on four characters;
- `\\boxed{`: the last cell prints `\\boxed{N}` and the model copies N after the same token;
- whole words for what every cell spells the same way (`print("\\\\boxed{%d}" % (`, `import `, `sympy`,
  the fence lines, the one sentence the commas fix writes): a trace is about a third fewer tokens,
  so a third more training steps fit in the time cap.

Measured on the way (2-core CPU, 1,500 steps): with digit groups alone the model copied the second
token of a number 97% right but the first only 26-45%, because finding it needed a multi-token key;
the name and `\\boxed{` tokens make every first token a one-token key too.

Why the splice stays exact: no multi-character token spans a newline, and the sandbox's reply is
spliced after "```output" and starts with one, so the tokenization of the spliced text equals the
tokenization of the whole text and the engine's appended ids are the ones the model saw in training.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD = "<|pad|>"
UNK = "<|unk|>"
USER = "<|user|>"
ASSISTANT = "<|assistant|>"
END = "<|end|>"
SPECIAL_TOKENS = [PAD, UNK, USER, ASSISTANT, END]

# Printable ASCII plus newline and tab covers every problem, code cell and tool output we render;
# anything else (rare non-ASCII in a traceback) maps to <|unk|>.
CHARS = ["\n", "\t"] + [chr(c) for c in range(32, 127) if not chr(c).isdigit()]
DIGIT_GROUPS = [f"{i:0{width}d}" for width in (1, 2, 3) for i in range(10**width)]
BOXED = "\\boxed{"
NAMES = [f"{c} = " for c in string.ascii_letters]
COMMAS_FIX = "The commas made tuples; rebuild each integer from its groups."
WORDS = [  # longest first where one starts another: the pre-tokenizer takes the first that matches
    'print("\\\\boxed{%d}" % (', "print(", "```python", "```output", "```", COMMAS_FIX, "import ", "from ",
    "mpmath", "math", "sympy", "itertools", "symbols", "factorint", "solve", "expand", "coeff", "range(",
    "sum(", "max(", "len(", "str(", "int(", "pow(", "gcd", "lcm", "for ", " in ",
    # and the most frequent words of the statements and of the one traceback the tool shows
    " where ", " and ", "What is the ", "Find the ", "modulo", "remainder", "divided", "divisible", "decimal",
    "digits", "prime", "largest", "coefficient", "expansion", "integers", "number",
    "Traceback (most recent call last):", "TypeError: ", "<module>",
]
# Pieces, left to right: a whole word, \boxed{, a letter with " = ", a number in digit groups, or one character.
# A number is split as its first three digits, then pairs ("118805" -> 118 80 5): three-digit groups after
# the first are the copy a small model learns last (see the model card's Limits), pairs it copies early.
PIECE = "|".join(re.escape(w) for w in WORDS) + r"|\\boxed\{|[A-Za-z] = |(?<!\d)\d{1,3}|\d{1,2}|\D"
assert len(set(CHARS + DIGIT_GROUPS)) == len(CHARS) + len(DIGIT_GROUPS)
assert not set(string.digits) & set(CHARS)
assert not any("\n" in w for w in WORDS)  # the splice rule below

# The whole chat template: one user message, then the assistant turn start. The assistant's
# turn, when present, is rendered verbatim followed by the eos token.
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'user' %}" + USER + "{{ m['content'] }}\n"
    "{% elif m['role'] == 'assistant' %}" + ASSISTANT + "{{ m['content'] }}" + END + ""
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT + "{% endif %}"
)


def render_prompt(problem: str) -> str:
    """The prompt text the chat template produces for one problem (kept in sync by a test)."""
    return f"{USER}{problem}\n{ASSISTANT}"


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A fast tokenizer: special tokens first, then single characters, digit groups, the copy keys, words."""
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + CHARS + DIGIT_GROUPS + NAMES + [BOXED] + WORDS)}
    # Every piece the pre-tokenizer cuts is a whole vocabulary entry, so a word-level model maps
    # pieces to ids one to one; Fuse joins them back without inserting spaces.
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex(PIECE), behavior="isolated")
    tk.decoder = decoders.Fuse()
    tk.add_special_tokens(SPECIAL_TOKENS)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        pad_token=PAD,
        unk_token=UNK,
        bos_token=None,
        eos_token=END,
        model_max_length=1024,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def save_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Build the tokenizer and write it (tokenizer.json, config, chat template) under `path`."""
    tok = build_tokenizer()
    tok.save_pretrained(str(path))
    return tok
