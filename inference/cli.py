"""The `aimo` command: solve one problem, evaluate a problem set, or serve the sandbox.

    aimo solve "What is 2^100 mod 997?"
    aimo eval problems.csv --samples 8 --out runs/first
    aimo eval --synthetic 20            # the tiny model's kind of problems, generated fresh
    aimo lab runs/first --samples 4,8,16 --agree 2,3,4 --total-s 3600   # replay the traces under other policies
    aimo export-sft runs/first --out sft.jsonl   # the right samples as fine-tuning data
    aimo sandbox --isolation nsjail     # the gRPC sandbox service (same flags as python -m sandbox_service)

Every option can also come from a TOML file (`--config aimo.toml`, keys as the option names with
underscores); options on the command line win. The defaults run on a CPU with the bundled tiny model.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import sys
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parent.parent
TINY_MODEL = ROOT / "models" / "tiny-tir"

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])


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
    # Mixed sample sources ([[sources]] tables in the TOML file; keys in SOURCE_KEYS, the rest from above):
    # each a model (in-process, or `engine` = a server URL), its dialect, prompt, sampling and share.
    sources: list[dict] = field(default_factory=list)


def load_settings(config: Path | None, **given) -> Settings:
    values = {}
    if config is not None:
        values.update(tomllib.loads(config.read_text()))
        unknown = set(values) - {f.name for f in fields(Settings)}
        if unknown:
            raise typer.BadParameter(f"unknown keys in {config}: {', '.join(sorted(unknown))}")
    values.update({k: v for k, v in given.items() if v is not None})
    return replace(Settings(), **values)


SOURCE_KEYS = {"name", "model", "dialect", "engine", "served_model", "share", "weight", "prompt", "tools",
               "temperature", "max_tokens"}


async def build(settings: Settings, stack: contextlib.AsyncExitStack):
    """Engines, dialects, sandbox and solver config from the settings; everything closes with `stack`."""
    from .sample import SamplingConfig
    from .solver import RevisionConfig, Solver, SolverConfig, Source

    main = {"name": "main", "model": settings.model, "dialect": settings.dialect, "engine": settings.engine,
            "served_model": settings.served_model}
    for given in settings.sources:
        if unknown := set(given) - SOURCE_KEYS:
            raise typer.BadParameter(f"unknown keys in a source: {', '.join(sorted(unknown))}")
    specs = [{**main, **given} for given in settings.sources] or [main]
    in_process = {spec["model"] for spec in specs if spec["engine"] == "vllm"}
    engines: dict[tuple[str, str], object] = {}  # one engine per (model, engine) however many sources use it
    sources = []
    for spec in specs:
        preset, dialect = _preset_and_dialect(spec["model"], spec["dialect"])
        max_model_len = settings.max_model_len or preset.max_model_len
        key = (spec["model"], spec["engine"])
        if key not in engines:
            if spec["engine"] == "vllm":  # in-process models share the GPU's memory evenly
                engines[key] = _vllm_engine(spec["model"], max_model_len, memory_share=1 / len(in_process))
            else:
                from .openai_engine import OpenAIEngine

                engines[key] = OpenAIEngine(spec["engine"], spec["served_model"] or Path(spec["model"]).name,
                                            max_model_len=max_model_len)
            stack.push_async_callback(engines[key].close)
        temperature = spec.get("temperature", settings.temperature)
        sampling = SamplingConfig(
            temperature=preset.temperature if temperature < 0 else temperature,
            top_p=preset.top_p, min_p=preset.min_p,
            max_tokens=spec.get("max_tokens", settings.max_tokens) or max_model_len,
            max_tool_calls=settings.max_tool_calls, tool_timeout_ms=settings.tool_timeout_ms,
            tools=spec.get("tools", True),
        )
        sources.append(Source(spec["name"], engines[key], dialect, sampling, share=spec.get("share", 1.0),
                              weight=spec.get("weight", 1.0), prompt=spec.get("prompt", "{problem}")))
    sandbox = await stack.enter_async_context(_sandbox(settings.sandbox))
    revision = RevisionConfig(below=settings.revise_below, samples=settings.revise_samples,
                              weight=settings.revise_weight, show_code=settings.revise_show_code)
    config = SolverConfig(samples=settings.samples, agree=settings.agree, selector=settings.selector,
                          seed=settings.seed, sampling=sources[0].sampling, revision=revision)
    verifier = None
    if settings.verifier:
        from .verifier import VLLMVerifier

        step_tag = settings.verifier_step_tag or ("<|pad|>" if "tiny-verifier" in settings.verifier else "<extra_0>")
        verifier = VLLMVerifier(settings.verifier, step_tag=step_tag, aggregate=settings.verifier_aggregate,
                                max_model_len=max(s.engine.max_model_len for s in sources))
        stack.push_async_callback(verifier.close)
    first = sources[0]
    return Solver(first.engine, first.dialect, sandbox, config, sources=sources, verifier=verifier)


def _preset_and_dialect(model: str, dialect_name: str = ""):
    from .presets import make_dialect, preset_for

    preset = preset_for(model)
    if dialect_name:
        preset = replace(preset, dialect=dialect_name)
    tokenizer = None
    if preset.dialect != "harmony":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model)
    return preset, make_dialect(preset, tokenizer)


def _vllm_engine(model: str, max_model_len: int, memory_share: float = 1.0):
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
async def _sandbox(spec: str):
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


async def _solve(settings: Settings, problem: str) -> dict:
    async with contextlib.AsyncExitStack() as stack:
        solver = await build(settings, stack)
        result = await solver.solve(problem, budget_s=settings.total_s)
        return result.to_dict()


async def _eval(settings: Settings, problems) -> dict:
    from .budget import BudgetConfig, TimeBudget
    from .evaluate import evaluate

    async with contextlib.AsyncExitStack() as stack:
        solver = await build(settings, stack)
        budget = TimeBudget(BudgetConfig(total_s=settings.total_s, problems=settings.problems or len(problems),
                                         max_samples=settings.samples, min_samples=min(2, settings.samples)))
        return await evaluate(problems, solver, budget, settings.out)


SELECTOR_HELP = ("majority, entropy, code (down-weights failed code), executed or supported (drop samples), "
                 "verifier (needs --verifier)")
REVISE_HELP = "a revision round when the leader holds less than this share of the votes (0: never)"
CONFIG = typer.Option(None, "--config", help="a TOML file of option values", exists=True, dir_okay=False)


@app.command()
def solve(
    problem: str = typer.Argument(..., help="the problem statement"),
    config: Path = CONFIG,
    model: str = typer.Option(None, help="model folder or name [default: the bundled tiny model]"),
    engine: str = typer.Option(None, help="'vllm' (in-process) or an OpenAI-compatible server URL"),
    sandbox: str = typer.Option(None, help="'spawn', 'local', or the host:port of a sandbox service"),
    samples: int = typer.Option(None, help="samples to vote over"),
    selector: str = typer.Option(None, help=SELECTOR_HELP),
    budget: float = typer.Option(None, "--budget", help="seconds for this problem"),
    trace: bool = typer.Option(False, help="print every sample's trace as JSON"),
) -> None:
    """Solve one problem and print the answer."""
    settings = load_settings(config, model=model, engine=engine, sandbox=sandbox, samples=samples,
                             selector=selector, total_s=budget)
    result = asyncio.run(_solve(settings, problem))
    if trace:
        typer.echo(json.dumps(result, indent=1))
    typer.echo(f"answer: {result['answer']}  votes: {result['votes']}  ({result['elapsed_s']:.1f} s)"
               + (f"  note: {result['failure']}" if result["failure"] else ""))


@app.command("eval")
def eval_command(
    problems_csv: Path = typer.Argument(None, help="CSV with columns id,problem[,answer]", dir_okay=False),
    synthetic: int = typer.Option(0, help="instead of a CSV: this many fresh problems of the tiny model's kind"),
    config: Path = CONFIG,
    model: str = typer.Option(None, help="model folder or name [default: the bundled tiny model]"),
    engine: str = typer.Option(None, help="'vllm' (in-process) or an OpenAI-compatible server URL"),
    sandbox: str = typer.Option(None, help="'spawn', 'local', or the host:port of a sandbox service"),
    samples: int = typer.Option(None, help="samples per problem (fewer when time runs short)"),
    agree: int = typer.Option(None, help="stop a problem once this many samples agree (0: every sample to its end)"),
    selector: str = typer.Option(None, help=SELECTOR_HELP),
    revise_below: float = typer.Option(None, help=REVISE_HELP),
    revise_samples: int = typer.Option(None, help="samples in a revision round"),
    verifier: str = typer.Option(None, help="a process reward model to score the samples (models/tiny-verifier)"),
    total: float = typer.Option(None, "--total-s", help="seconds for the whole set"),
    expected: int = typer.Option(None, "--problems", help="problems expected in all, for the budget"),
    out: str = typer.Option(None, help="folder for results.csv, traces.jsonl, summary.json, report.html"),
) -> None:
    """Evaluate a problem set: accuracy, per-problem results, traces and an HTML report."""
    from .problems import ProblemSetError, read_problems, synthetic_problems

    if problems_csv is not None:
        try:
            problems, messages = read_problems(problems_csv)
        except (ProblemSetError, OSError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        for message in messages:
            typer.echo(f"warning: {message}", err=True)
    elif synthetic:
        problems = synthetic_problems(synthetic)
    else:
        typer.echo("error: give a CSV file or --synthetic N", err=True)
        raise typer.Exit(2)
    settings = load_settings(config, model=model, engine=engine, sandbox=sandbox, samples=samples, agree=agree,
                             selector=selector, revise_below=revise_below, revise_samples=revise_samples,
                             verifier=verifier, total_s=total, problems=expected, out=out)
    summary = asyncio.run(_eval(settings, problems))
    typer.echo(f"\n{summary['problems']} problems, accuracy {_percent(summary['accuracy'])}, "
               f"pass@k {_percent(summary['pass_at_k'])}, {summary['seconds_per_problem']:.1f} s per problem; "
               f"report: {Path(settings.out) / 'report.html'}")


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _choice(help: str) -> typer.Option:
    return typer.Option(None, help=f"{help} (comma-separated values: each is tried)")


@app.command()
def lab(
    runs: list[Path] = typer.Argument(..., help="folders `aimo eval` wrote (samples pool by problem id)",
                                      exists=True, file_okay=False),
    samples: str = _choice("samples per problem"),
    agree: str = _choice("early-stop agreement thresholds"),
    selector: str = _choice(f"selectors: {SELECTOR_HELP}"),
    slots: str = _choice("samples decoding at once (the engine's max_num_seqs; 0: all)"),
    total: str = typer.Option(None, "--total-s", help="global deadlines in seconds (comma-separated)"),
    expected: str = typer.Option(None, "--problems", help="problems the budget expects (comma-separated)"),
    base_share: str = _choice("share of the even split a problem gets as its base"),
    ceiling_factor: str = _choice("most bases one problem may use"),
    random_count: int = typer.Option(0, "--random", help="score this many policies drawn from the grid, not all"),
    replicates: int = typer.Option(100, help="simulated runs of the set per policy"),
    scoring: str = typer.Option("single", help="single, or aimo3 (the set runs twice: 1 if both right, 0.5 if one)"),
    max_minutes: float = typer.Option(None, help="the best policy must fit the set in this many minutes"),
    seed: int = typer.Option(0, help="seed of the simulated draws"),
    out: Path = typer.Option(Path("runs/lab"), help="folder for lab.csv and lab.html"),
) -> None:
    """Replay recorded traces under other policies: expected score, time and the Pareto front, no GPU."""
    from rich.console import Console
    from rich.progress import track
    from rich.table import Table

    from .lab import Policy, fit_timing, load_runs, replay_recorded_policy, score_policy
    from .lab.recording import RecordingError
    from .lab.report import label, varied, write_lab
    from .lab.score import best, grid, pareto, parse_choices, random_search

    try:
        recording = load_runs(runs)
        choices = parse_choices({"samples": samples, "agree": agree, "selector": selector, "slots": slots,
                                 "total_s": total, "problems": expected, "base_share": base_share,
                                 "ceiling_factor": ceiling_factor})
        timing = fit_timing(recording)
    except (RecordingError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    base = Policy.recorded(recording.policy) if recording.policy else Policy()
    entropies = any(s.vote and s.vote.mean_entropy is not None for p in recording.problems for s in p.samples)
    if "entropy" in choices.get("selector", []) and not entropies:
        typer.echo("warning: the recording has no logprobs (record with --selector entropy): the entropy "
                   "selector counts every vote as 1, like majority", err=True)
    policies = random_search(base, choices, random_count, seed) if random_count else grid(base, choices)
    console = Console()
    check = None
    if recording.policy:
        check = replay_recorded_policy(recording, timing)
        console.print(f"replay of the recorded policy: {check.predicted_correct} right (recorded "
                      f"{check.recorded_correct}), {check.predicted_s:.1f} s (recorded {check.recorded_s:.1f} s)")
    score = functools.partial(score_policy, recording, timing=timing, replicates=replicates, seed=seed,
                              scoring=scoring)
    scores = [score(p) for p in track(policies, description="scoring policies", console=console)]
    recorded = None
    if recording.policy:  # the recorded policy, scored like the others (already, when the grid holds it)
        recorded = next((s for s in scores if s.policy == base), None) or score(base)
    per_problem = sum(len(p.samples) for p in recording.problems) / len(recording.problems)
    note = (f"{len(recording.problems)} problems ({len(recording.graded)} graded), {per_problem:.1f} recorded samples "
            f"each; {replicates} simulated runs per policy; scoring: {scoring}")
    path = write_lab(out, scores, timing, recording_note=note, check=check, recorded=recorded)
    names = varied(scores)
    table = Table("policy", "score [95%]", "minutes", "pass@n", "selection loss", title="Pareto front")
    for s in pareto(scores):
        table.add_row(label(s.policy, names), f"{s.score:.3f} [{s.low:.3f}, {s.high:.3f}]", f"{s.seconds / 60:.1f}",
                      f"{s.pass_at_n:.3f}", f"{s.selection_loss:.3f}")
    console.print(table)
    top = best(scores, None if max_minutes is None else max_minutes * 60)
    console.print(f"best: {label(top.policy, names)}, score {top.score:.3f}" if top else "no policy fits the time")
    console.print(f"report: {path}")


@app.command("export-sft")
def export_sft_command(
    runs: list[Path] = typer.Argument(..., help="folders `aimo eval` wrote (or their traces.jsonl files)",
                                      exists=True),
    out: Path = typer.Option(Path("runs/sft.jsonl"), help="the JSON-lines file to write"),
    model: str = typer.Option(str(TINY_MODEL), help="the model the traces came from (its tokenizer and dialect)"),
    dialect: str = typer.Option("", help="the dialect, if not the model's preset's"),
    max_tool_calls: int = typer.Option(8, help="the run's max_tool_calls (dialects that show calls left)"),
) -> None:
    """Fine-tuning data from evaluation traces: the right samples only, deduplicated, tool outputs masked."""
    from .sft import export_sft

    _, chosen = _preset_and_dialect(model, dialect)
    try:
        stats = export_sft(runs, chosen, out, max_tool_calls=max_tool_calls)
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        typer.echo(f"error: not a traces file ({exc!r})", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{stats.kept} records from {stats.right} right of {stats.samples} finished samples "
               f"({stats.problems_kept} of {stats.problems} graded problems): {out}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def sandbox(ctx: typer.Context) -> None:
    """Serve the sandbox over gRPC (all flags of `python -m sandbox_service`)."""
    from sandbox_service.__main__ import main as serve

    serve(list(ctx.args))


def main() -> None:
    app(prog_name="aimo")


if __name__ == "__main__":
    sys.exit(main())
