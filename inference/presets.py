"""Model presets: a model name to its dialect and sampling defaults.

    preset = preset_for("openai/gpt-oss-120b")   # matched by substring, case-insensitively
"""

from __future__ import annotations

from dataclasses import dataclass, field

QWEN_MATH_SYSTEM = ("Please integrate natural language reasoning with programs to solve the problem above, "
                    "and put your final answer within \\boxed{}.")
R1_SYSTEM = ("Solve the problem. You may write Python in ```python blocks; its output will appear in a "
             "```output block. Put the final answer, an integer, within \\boxed{}.")


@dataclass(frozen=True)
class Preset:
    name: str
    dialect: str  # "markdown", "openmath" or "harmony"
    temperature: float = 0.7
    top_p: float = 1.0
    min_p: float = 0.0
    max_model_len: int = 32768
    system_prompt: str | None = None
    dialect_options: dict = field(default_factory=dict)


PRESETS = (
    Preset("gpt-oss", "harmony", temperature=1.0, min_p=0.02, max_model_len=65536,
           dialect_options={"reasoning_effort": "high"}),
    Preset("openmath-nemotron", "openmath", temperature=0.6, top_p=0.95, max_model_len=32768),
    Preset("deepseek-r1-distill", "markdown", temperature=0.6, top_p=0.95, max_model_len=32768,
           system_prompt=R1_SYSTEM),
    Preset("qwq", "markdown", temperature=0.6, top_p=0.95, max_model_len=32768, system_prompt=R1_SYSTEM),
    Preset("qwen2.5-math", "markdown", temperature=0.7, top_p=0.8, max_model_len=4096, system_prompt=QWEN_MATH_SYSTEM),
    Preset("numinamath", "markdown", temperature=0.8, max_model_len=4096),
    Preset("tiny-tir", "markdown", temperature=0.2, max_model_len=1024),
)


def preset_for(model: str) -> Preset:
    """The preset whose name appears in `model` (a path or hub id); markdown defaults otherwise."""
    lowered = model.lower()
    for preset in PRESETS:
        if preset.name in lowered:
            return preset
    return Preset("default", "markdown")


def make_dialect(preset: Preset, tokenizer=None):
    """Build the preset's dialect (harmony needs no tokenizer: it brings its own encoding)."""
    from .dialects import MarkdownDialect, OpenMathDialect

    if preset.dialect == "harmony":
        from .dialects.harmony import HarmonyDialect

        return HarmonyDialect(**preset.dialect_options)
    if preset.dialect == "openmath":
        return OpenMathDialect(tokenizer, **({"system_prompt": preset.system_prompt} if preset.system_prompt else {}))
    if preset.dialect == "markdown":
        return MarkdownDialect(tokenizer, preset.system_prompt)
    raise ValueError(f"unknown dialect {preset.dialect!r}")
