"""`--preset aimo3-gpt-oss` renders exactly the AIMO3 recipe (docs/aimo3-preset.md): the vLLM engine
arguments, the sampling vLLM receives, the prompt, the limits, selector, stop rule and time budget."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from inference.budget import TimeBudget
from inference.engine import GenerationRequest
from inference.recipes import (
    ANSWER_RANGE_REMINDER,
    MODEL_IDENTITY,
    RECIPES,
    budget_config,
    engine_args,
    make_dialect,
    markdown_table,
    recipe_for,
    sampling_config,
    serve_flags,
    solver_config,
)
from inference.sample import SamplingConfig
from inference.vllm_engine import sampling_kwargs

ROOT = Path(__file__).resolve().parents[2]
MODEL = "/models/gpt-oss-120b"

# The table of docs/aimo3-preset.md, written out: what vLLM must be started with.
ENGINE = {"model": MODEL, "kv_cache_dtype": "fp8_e4m3", "max_model_len": 65536, "gpu_memory_utilization": 0.96,
          "max_num_seqs": 256, "enable_prefix_caching": True, "async_scheduling": True, "stream_interval": 200,
          "disable_log_stats": True, "dtype": "auto", "block_size": None, "enforce_eager": False, "seed": 0}
SAMPLING = SamplingConfig(temperature=1.0, top_p=1.0, min_p=0.02, max_tokens=65536, max_tool_calls=128,
                          tool_timeout_ms=6000, logprobs=5)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_the_preset_renders_the_exact_engine_arguments(name):
    assert engine_args(recipe_for(name), MODEL) == ENGINE


def test_the_engine_arguments_are_vllms_own_and_accepted():
    from vllm.config.cache import CacheDType
    from vllm.engine.arg_utils import AsyncEngineArgs

    args = engine_args(recipe_for("aimo3-gpt-oss"), MODEL)
    assert set(args) <= {f.name for f in dataclasses.fields(AsyncEngineArgs)}
    built = AsyncEngineArgs(**args)  # refuses an unknown field
    assert {name: getattr(built, name) for name in args} == args
    assert args["kv_cache_dtype"] in typing.get_args(CacheDType)


def test_the_server_flags_parse_to_the_same_engine():
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    flags = serve_flags(recipe_for("aimo3-gpt-oss"), MODEL)
    assert "--kv-cache-dtype fp8_e4m3" in " ".join(flags) and "--async-scheduling" in flags
    parsed = AsyncEngineArgs.from_cli_args(AsyncEngineArgs.add_cli_args(FlexibleArgumentParser()).parse_args(flags))
    assert {name: getattr(parsed, name) for name in ENGINE} == ENGINE


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_the_preset_renders_the_exact_sampling_vllm_receives(name):
    from vllm import SamplingParams

    recipe = recipe_for(name)
    assert sampling_config(recipe) == SAMPLING
    request = GenerationRequest("r", [1, 2, 3], max_tokens=100, temperature=SAMPLING.temperature,
                                top_p=SAMPLING.top_p, min_p=SAMPLING.min_p, seed=7, logprobs=SAMPLING.logprobs)
    params = SamplingParams(**sampling_kwargs(request))
    assert (params.temperature, params.min_p, params.top_p, params.logprobs) == (1.0, 0.02, 1.0, 5)
    assert params.top_k in (0, -1)  # off: vLLM's default, as the recipe never sets it


def test_the_limits_selector_and_stop_rule_are_the_winners_and_second_places():
    first, second = solver_config(recipe_for("aimo3-gpt-oss")), solver_config(recipe_for("aimo3-gpt-oss-2nd"))
    assert (first.samples, first.agree, first.stop, first.selector) == (8, 4, "agree", "entropy")
    assert (second.samples, second.agree, second.stop, second.selector) == (8, 4, "uncatchable",
                                                                            "votes-entropy-tail")
    assert first.sampling == second.sampling == SAMPLING


def test_the_prompt_is_harmony_with_high_effort_the_identity_and_the_tool_description():
    problem = "What is 2+2?"
    first, second = recipe_for("aimo3-gpt-oss"), recipe_for("aimo3-gpt-oss-2nd")
    dialect = make_dialect(first)
    text = dialect.decode(dialect.prompt_ids(first.prompt.format(problem=problem)))
    assert MODEL_IDENTITY in text and "Reasoning: high" in text
    assert "## python\n\nUse this tool to execute Python code. The environment is a stateful Jupyter notebook. " \
           "You must use print() to output results." in text
    assert "<|start|>user<|message|>What is 2+2? You have access to `math`, `numpy` and `sympy` to solve the " \
           "problem.<|end|>" in text
    assert ANSWER_RANGE_REMINDER not in text
    reminded = make_dialect(second)
    assert ANSWER_RANGE_REMINDER in reminded.decode(reminded.prompt_ids(problem))


def test_the_budget_is_the_winners_clamp_with_the_rest_banked():
    """clamp(time left - later problems x 300 s, 300, 900), problem after problem, whatever they use.
    (Where the clamp's floor would overrun the deadline, the budget splits what is left instead: the
    notebook's hard limit is not the place to find out; that case is not compared here.)"""
    now = 0.0
    config = budget_config(recipe_for("aimo3-gpt-oss"))
    budget = TimeBudget(config, clock=lambda: now)
    for done, used in enumerate([40, 900, 900, 120, 300, 60, 900, 5, 200, 100] * 5):
        time_left = config.total_s - config.safety_s - now
        slack = time_left - (config.problems - done - 1) * 300.0
        assert slack >= 300.0, done
        plan = budget.plan()
        assert plan.seconds == pytest.approx(min(900.0, slack)), done
        assert plan.samples == 8
        used = min(used, plan.seconds)
        now += used
        budget.record(used)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_the_document_shows_the_table_the_code_renders(name):
    document = (ROOT / "docs" / "aimo3-preset.md").read_text()
    assert markdown_table(recipe_for(name)) in document
    assert "docs/aimo3-preset.md" in (ROOT / "README.md").read_text()


def test_an_unknown_preset_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="aimo3-gpt-oss-2nd"):
        recipe_for("aimo4")


def test_one_problem_under_the_preset_gets_its_ceiling_within_the_time_given():
    from inference.assembly import load_settings
    from inference.recipes import recipe_budget

    assert TimeBudget(recipe_budget(load_settings(None, preset="aimo3-gpt-oss"), 1)).plan().seconds == 900.0
    short = load_settings(None, preset="aimo3-gpt-oss", total_s=60.0)
    assert TimeBudget(recipe_budget(short, 1)).plan().seconds == pytest.approx(55.0, abs=0.5)  # less safety_s


def test_the_preset_fills_the_settings_beneath_what_the_user_gives(tmp_path):
    from inference.assembly import SettingsError, load_settings

    settings = load_settings(None, preset="aimo3-gpt-oss")
    assert (settings.samples, settings.agree, settings.selector, settings.stop, settings.max_tool_calls,
            settings.tool_timeout_ms, settings.temperature, settings.max_model_len, settings.total_s) == (
        8, 4, "entropy", "agree", 128, 6000, 1.0, 65536, 17400.0)
    config = tmp_path / "aimo.toml"
    config.write_text('preset = "aimo3-gpt-oss-2nd"\nsamples = 16\n')
    given = load_settings(config, agree=5)
    assert (given.samples, given.agree, given.selector, given.stop) == (16, 5, "votes-entropy-tail", "uncatchable")
    with pytest.raises(SettingsError, match="no preset"):
        load_settings(None, preset="aimo4")


def test_the_preset_builds_its_solver_prompt_and_sampling():
    """Wired end to end short of generating: a server engine (nothing is sent) and the in-process sandbox."""
    import asyncio
    import contextlib

    from inference.assembly import build_solver, load_settings

    async def build():
        settings = load_settings(None, preset="aimo3-gpt-oss", engine="http://127.0.0.1:9", sandbox="local",
                                 model="/models/gpt-oss-120b", samples=6)
        async with contextlib.AsyncExitStack() as stack:
            return await build_solver(settings, stack)

    solver = asyncio.run(build())
    (source,) = solver.sources
    assert source.sampling == SAMPLING and source.prompt == recipe_for("aimo3-gpt-oss").prompt
    assert (solver.config.samples, solver.config.agree, solver.config.selector, solver.config.stop) == (
        6, 4, "entropy", "agree")
    assert solver.dialect.model_identity == MODEL_IDENTITY and solver.engine.max_model_len == 65536
