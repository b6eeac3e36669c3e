"""Final-answer extraction: the last \\boxed{...} of a text, as an AIMO answer (an integer in 0..99999)."""

from __future__ import annotations

import re

AIMO_RANGE = range(0, 100_000)
_INTEGER = re.compile(r"[+-]?\d+")


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} (or \\fbox{...}), with nested braces balanced."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth = 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i:j]
    return None  # never closed: the sample was cut off mid-answer


def parse_integer(content: str) -> int | None:
    """An integer written plainly ("42", "1,234", "42.0", "$42$", "\\text{42}"), else None.

    No implicit modulus: 123456 is out of range and stays None rather than becoming 23456.
    """
    cleaned = content.strip().strip("$").replace(",", "").replace("\\!", "").replace(" ", "")
    cleaned = re.sub(r"^\\(?:text|mathrm|mathbf)\{(.*)\}$", r"\1", cleaned)
    cleaned = re.sub(r"\.0+$", "", cleaned)
    if not _INTEGER.fullmatch(cleaned):
        return None
    return int(cleaned)


def extract_answer(text: str) -> int | None:
    """The sample's answer: the last boxed integer, if it is in 0..99999."""
    content = last_boxed(text)
    if content is None:
        return None
    value = parse_integer(content)
    return value if value is not None and value in AIMO_RANGE else None


def shown_in(answer: int, outputs: list[str]) -> bool:
    """Whether some tool output shows `answer` as a whole number (so the model did not make it up).

    Thousands separators count ("12,345" shows 12345); "123456" does not show 12345.
    """
    pattern = re.compile(rf"(?<!\d){answer}(?!\d)")
    return any(pattern.search(out.replace(",", "").replace("_", "")) for out in outputs if out)
