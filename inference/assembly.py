"""A solver from settings: the engines, dialects, sandbox, verifier and solver config the settings name.

    settings = load_settings(Path("aimo.toml"), samples=8)
    async with contextlib.AsyncExitStack() as stack:
        solver = await build_solver(settings, stack)   # everything it opened closes with `stack`
        result = await solver.solve("What is 2^100 mod 997?", budget_s=60)

This is what the `aimo` command, Kaggle mode and the benchmarks share; it knows nothing of a command
line. Bad settings raise `SettingsError` (a `ValueError`) with a message fit to show a user.
"""

from __future__ import annotations

import asyncio
import contextlib
import tomllib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TINY_MODEL = ROOT / "models" / "tiny-tir"


class SettingsError(ValueError):
    """Settings that cannot make a solver (unknown keys, say); the message names what is wrong."""


@dataclass
class SourceSettings:
    """One mixed sample source (a `[[sources]]` table): a model, how it is asked and sampled, its share
    of the samples and its samples' weight. A field left None takes the settings' own value."""

    name: str = "main"
    model: str | None = None
    dialect: str | None = None
    engine: str | None = None  # "vllm" (in-process) or the base URL of an OpenAI-compatible server
    served_model: str | None = None
    share: float = 1.0
    weight: float = 1.0
    prompt: str = "{problem}"
    tools: bool = True
    temperature: float | None = None  # negative: the preset's
    max_tokens: int | None = None  # 0: the model's context length

    @classmethod
    def from_mapping(cls, given: Mapping[str, Any]) -> SourceSettings:
        if unknown := set(given) - SOURCE_KEYS:
            raise SettingsError(f"unknown keys in a source: {', '.join(sorted(unknown))}")
        return cls(**given)


SOURCE_KEYS = frozenset(f.name for f in fields(SourceSettings))


@dataclass
class Settings:
    model: str = str(TINY_MODEL)
    dialect: str = ""  # empty: from the model's preset
    engine: str = "vllm"  # "vllm" (in-process) or the base URL of an OpenAI-compatible server
    served_model: str = ""  # the model name the server knows (default: the model's folder name)
    sandbox: str = "spawn"  # "spawn" (start the service here), "local" (in-process), or host:port
    samples: int = 4
    agree: int = 3
    selector: str = "majority"
    stop: str = "uncatchable"  # voting.STOP_RULES: "agree" only, or also once the leader cannot be caught
    preset: str = ""  # a whole-pipeline recipe (inference/recipes.py: "aimo3-gpt-oss"); its values are defaults
    revise_below: float = 0.0  # a revision round when the leader holds less than this share of the votes
    revise_samples: int = 4
    revise_weight: float = 1.0
    revise_show_code: bool = False
    verifier: str = ""  # a process reward model (folder or name) that scores every answered sample
    verifier_step_tag: str = ""  # its step separator token (default: "<extra_0>"; the tiny verifier's own)
    verifier_aggregate: str = "min"  # per-step scores to one: min, last or product
    max_tokens: int = 0  # per sample; 0: the preset's context length
    max_model_len: int = 0  # 0: the preset's
    max_tool_calls: int = 8
    tool_timeout_ms: int = 10_000
    temperature: float = -1.0  # negative: the preset's
    seed: int = 0
    total_s: float = 5 * 3600.0
    problems: int = 0  # expected problem count for the budget (0: the size of the set)
    out: str = "runs/latest"
    # Mixed sample sources ([[sources]] tables in the TOML file; mappings become SourceSettings here).
    # None of them: one source of the model above.
    sources: list[SourceSettings] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sources = [s if isinstance(s, SourceSettings) else SourceSettings.from_mapping(s) for s in self.sources]

    def resolved_sources(self) -> list[SourceSettings]:
        """Every source with the fields it leaves open filled from these settings."""
        inherited = {"model": self.model, "dialect": self.dialect, "engine": self.engine,
                     "served_model": self.served_model, "temperature": self.temperature,
                     "max_tokens": self.max_tokens}
        given = self.sources or [SourceSettings()]
        return [replace(s, **{k: v for k, v in inherited.items() if getattr(s, k) is None}) for s in given]


def load_settings(config: Path | None, **given: Any) -> Settings:
    """Settings from a TOML file (keys as the field names), then `given` (None values skipped) over it."""
    values: dict[str, Any] = {}
    if config is not None:
        values.update(tomllib.loads(config.read_text()))
        unknown = set(values) - {f.name for f in fields(Settings)}
        if unknown:
            raise SettingsError(f"unknown keys in {config}: {', '.join(sorted(unknown))}")
    values.update({k: v for k, v in given.items() if v is not None})
    if values.get("preset"):  # the preset's values beneath the file's and the command line's
        from .recipes import settings_defaults

        try:
            values = {**settings_defaults(values["preset"]), **values}
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
    return replace(Settings(), **values)


async def build_solver(settings: Settings, stack: contextlib.AsyncExitStack):
    """Engines, dialects, sandbox and solver config from the settings; everything closes with `stack`."""
    if settings.preset:
        from .recipes import build_recipe_solver

        return await build_recipe_solver(settings, stack)
    from .sample import SamplingConfig
    from .solver import RevisionConfig, Solver, SolverConfig, Source

    specs = settings.resolved_sources()
    in_process = {spec.model for spec in specs if spec.engine == "vllm"}
    engines: dict[tuple[str, str], object] = {}  # one engine per (model, engine) however many sources use it
    sources = []
    for spec in specs:
        preset, dialect = preset_and_dialect(spec.model, spec.dialect)
        max_model_len = settings.max_model_len or preset.max_model_len
        key = (spec.model, spec.engine)
        if key not in engines:
            if spec.engine == "vllm":  # in-process models share the GPU's memory evenly
                engines[key] = vllm_engine(spec.model, max_model_len, memory_share=1 / len(in_process))
            else:
                from .openai_engine import OpenAIEngine

                engines[key] = OpenAIEngine(spec.engine, spec.served_model or Path(spec.model).name,
                                            max_model_len=max_model_len)
            stack.push_async_callback(engines[key].close)
        sampling = SamplingConfig(
            temperature=preset.temperature if spec.temperature < 0 else spec.temperature,
            top_p=preset.top_p, min_p=preset.min_p,
            max_tokens=spec.max_tokens or max_model_len,
            max_tool_calls=settings.max_tool_calls, tool_timeout_ms=settings.tool_timeout_ms,
            tools=spec.tools,
        )
        sources.append(Source(spec.name, engines[key], dialect, sampling, share=spec.share, weight=spec.weight,
                              prompt=spec.prompt))
    sandbox = await stack.enter_async_context(open_sandbox(settings.sandbox))
    revision = RevisionConfig(below=settings.revise_below, samples=settings.revise_samples,
                              weight=settings.revise_weight, show_code=settings.revise_show_code)
    config = SolverConfig(samples=settings.samples, agree=settings.agree, selector=settings.selector,
                          stop=settings.stop, seed=settings.seed, sampling=sources[0].sampling, revision=revision)
    verifier = None
    if settings.verifier:
        from .verifier import VLLMVerifier

        step_tag = settings.verifier_step_tag or ("<|pad|>" if "tiny-verifier" in settings.verifier else "<extra_0>")
        verifier = VLLMVerifier(settings.verifier, step_tag=step_tag, aggregate=settings.verifier_aggregate,
                                max_model_len=max(s.engine.max_model_len for s in sources))
        stack.push_async_callback(verifier.close)
    first = sources[0]
    return Solver(first.engine, first.dialect, sandbox, config, sources=sources, verifier=verifier)


def preset_and_dialect(model: str, dialect_name: str = ""):
    """The model's preset (with `dialect_name` over its dialect, if given) and that dialect, made."""
    from .presets import make_dialect, preset_for

    preset = preset_for(model)
    if dialect_name:
        preset = replace(preset, dialect=dialect_name)
    tokenizer = None
    if preset.dialect != "harmony":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model)
    return preset, make_dialect(preset, tokenizer)


def vllm_engine(model: str, max_model_len: int, memory_share: float = 1.0):
    """An in-process vLLM engine: on the GPU (this share of its memory) if there is one, else the CPU's."""
    from .vllm_engine import VLLMEngine

    try:
        import torch

        on_gpu = torch.cuda.is_available()
    except ImportError:
        on_gpu = False
    if on_gpu:
        return VLLMEngine(model, max_model_len=max_model_len, gpu_memory_utilization=0.9 * memory_share)
    return VLLMEngine.for_cpu(model, max_model_len=max_model_len)


@contextlib.asynccontextmanager
async def open_sandbox(spec: str) -> AsyncIterator[Any]:
    """The sandbox `spec` names: "local" (in-process), "spawn" (a service started here and stopped at the
    end) or the host:port of a running sandbox service."""
    from sandbox_service.client import AsyncSandboxClient
    from sandbox_service.local import AsyncLocalSandbox

    if spec == "local":
        async with AsyncLocalSandbox(pool_size=2) as sandbox:
            yield sandbox
        return
    server = None
    if spec == "spawn":
        from sandbox_service.spawn import ServerProcess

        server = ServerProcess("--isolation", "auto", "--metrics-port", "0")
        await asyncio.to_thread(server.wait_serving)
        spec = server.address
    try:
        async with AsyncSandboxClient(spec) as client:
            yield client
    finally:
        if server is not None:
            server.stop()


async def solve_problem(settings: Settings, problem: str) -> dict:
    """One problem with a solver built for it and closed after: the result as a dict."""
    async with contextlib.AsyncExitStack() as stack:
        solver = await build_solver(settings, stack)
        budget_s = settings.total_s
        if settings.preset:  # the preset's per-problem rule (at most 900 s for AIMO3's), within total_s
            from .budget import TimeBudget
            from .recipes import recipe_budget

            budget_s = TimeBudget(recipe_budget(settings, 1)).plan().seconds
        result = await solver.solve(problem, budget_s=budget_s)
        return result.to_dict()


async def evaluate_problems(settings: Settings, problems) -> dict:
    """A problem set under the settings' time budget; results, traces and report go to `settings.out`."""
    from .budget import BudgetConfig, TimeBudget
    from .evaluate import evaluate
    from .recipes import recipe_budget

    async with contextlib.AsyncExitStack() as stack:
        solver = await build_solver(settings, stack)
        budget = TimeBudget(BudgetConfig(total_s=settings.total_s, problems=settings.problems or len(problems),
                                         max_samples=settings.samples, min_samples=min(2, settings.samples))
                            if not settings.preset else recipe_budget(settings, len(problems)))
        return await evaluate(problems, solver, budget, settings.out)
