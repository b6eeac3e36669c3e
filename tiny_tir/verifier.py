"""Train the tiny verifier: a process reward model of Qwen2.5-Math-PRM's architecture on the tiny model's traces.

    python -m tiny_tir.verifier --out models/tiny-verifier     # collect traces, train, save (minutes)
    python -m tiny_tir.verifier --smoke                         # a few problems and steps; the loss must fall

1. Collect: the shipped tiny model solves seeded problems (the training seed's stream, never the
   evaluation's) through the project's own loop (in-process vLLM, the in-process sandbox), several
   samples each at temperature 1, the long-number kinds drawn more often so that wrong samples are common.
2. Label: a sample is right if it boxed the expected answer; every step of it gets that label (outcome
   supervision: the tiny model's mistakes are miscopied digits, which no single step announces).
3. Train: `Qwen2ForProcessRewardModel` (a Qwen2 backbone and a two-layer, two-label head, as vLLM loads
   it), the backbone started from the tiny model's own weights (same sizes; Qwen2 adds q/k/v biases,
   started at zero), cross entropy at the step tags (`<|pad|>`, which never occurs in a trace).
4. Measure on held-out problems: the AUC of the final score, and how often reranking by it picks a
   right answer where the vote does not (bench/strategies.py does it properly, with intervals).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from transformers import LlamaForCausalLM, Qwen2Config, Qwen2Model

from tiny_tir.problems import generate
from tiny_tir.tokenizer import PAD, build_tokenizer, save_tokenizer
from tiny_tir.train import KIND_WEIGHTS, TRAIN_SEED, check_loss_fell

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "models" / "tiny-tir"
STEP_TAG = PAD
COLLECT_SEED = TRAIN_SEED + 50_000  # the training stream, far past what the tiny model's training drew


@dataclass(frozen=True)
class VerifierConfig:
    problems: int = 160
    samples: int = 4
    held_out: float = 0.25  # share of the problems kept out of training, for the figures
    steps: int = 500
    batch: int = 16
    lr: float = 1e-3
    seed: int = 0


SMOKE = VerifierConfig(problems=8, samples=2, steps=6, batch=4)


async def _collect(problems, samples: int, seed: int) -> list[dict]:
    from transformers import AutoTokenizer

    from inference.dialects import MarkdownDialect
    from inference.sample import SamplingConfig
    from inference.solver import Solver, SolverConfig
    from inference.verifier import step_ids
    from inference.vllm_engine import VLLMEngine
    from sandbox_service.local import AsyncLocalSandbox

    tok = AutoTokenizer.from_pretrained(str(TINY))
    dialect = MarkdownDialect(tok)
    step = tok.convert_tokens_to_ids(STEP_TAG)
    engine = VLLMEngine.for_cpu(str(TINY), max_model_len=1024, max_num_seqs=32)
    config = SolverConfig(samples=samples, agree=0, seed=seed,
                          sampling=SamplingConfig(temperature=1.0, max_tokens=900, max_tool_calls=4))
    out = []
    try:
        async with AsyncLocalSandbox(pool_size=2) as sandbox:
            solver = Solver(engine, dialect, sandbox, config)

            async def one(i, p):
                result = await solver.solve(p.text)
                return [{"problem": i, "kind": p.kind, "right": s.answer == p.answer,
                         "ids": step_ids(dialect, p.text, s, step)} for s in result.samples if s.answer is not None]

            for chunk in range(0, len(problems), 8):  # a few problems at a time keep the engine's batch full
                done = await asyncio.gather(*(one(chunk + j, p) for j, p in enumerate(problems[chunk:chunk + 8])))
                out += [row for rows in done for row in rows]
    finally:
        await engine.close()
    return out


class TinyPRM(nn.Module):
    """Qwen2ForProcessRewardModel's layout: `model.*` and `score.{0,2}.*`, as vLLM's loader expects."""

    def __init__(self, config: Qwen2Config) -> None:
        super().__init__()
        self.model = Qwen2Model(config)
        h = config.hidden_size
        self.score = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 2))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.score(self.model(input_ids=ids).last_hidden_state)


def make_prm() -> tuple[TinyPRM, Qwen2Config]:
    tiny = LlamaForCausalLM.from_pretrained(str(TINY))
    c = tiny.config
    config = Qwen2Config(vocab_size=c.vocab_size, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
                         num_hidden_layers=c.num_hidden_layers, num_attention_heads=c.num_attention_heads,
                         num_key_value_heads=c.num_key_value_heads, max_position_embeddings=c.max_position_embeddings,
                         rms_norm_eps=c.rms_norm_eps, rope_theta=10000.0, tie_word_embeddings=False,
                         pad_token_id=c.pad_token_id, num_labels=2)
    config.architectures = ["Qwen2ForProcessRewardModel"]
    prm = TinyPRM(config)
    missing, unexpected = prm.model.load_state_dict(tiny.model.state_dict(), strict=False)
    assert all(k.endswith("_proj.bias") for k in missing) and not unexpected, (missing, unexpected)
    for name, param in prm.model.named_parameters():
        if name.endswith("_proj.bias"):
            nn.init.zeros_(param)
    return prm, config


def _batch(rows: list[dict], step_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r["ids"]) for r in rows)
    x = torch.zeros((len(rows), width), dtype=torch.long)
    y = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, r in enumerate(rows):
        ids = torch.tensor(r["ids"])
        x[i, : len(ids)] = ids
        y[i, : len(ids)] = torch.where(ids == step_id, int(r["right"]), -100)
    return x, y


def final_scores(prm: TinyPRM, rows: list[dict], step_id: int) -> list[float]:
    """P(right) at each sample's last step tag: the `last` aggregate (what the tiny verifier is trained for)."""
    prm.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(rows), 32):
            part = rows[start:start + 32]
            x, _ = _batch(part, step_id)
            probs = prm(x).softmax(-1)[..., 1]
            for i, r in enumerate(part):
                out.append(probs[i, len(r["ids"]) - 1].item())
    prm.train()
    return out


def auc(scores: list[float], right: list[bool]) -> float | None:
    pos = [s for s, r in zip(scores, right, strict=True) if r]
    neg = [s for s, r in zip(scores, right, strict=True) if not r]
    if not pos or not neg:
        return None
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def train(cfg: VerifierConfig, out: Path | None) -> dict:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(2)
    t0 = time.time()
    problems = generate(COLLECT_SEED + cfg.seed, cfg.problems, KIND_WEIGHTS)
    rows = asyncio.run(_collect(problems, cfg.samples, cfg.seed))
    collect_s = time.time() - t0
    cut = int(cfg.problems * (1 - cfg.held_out))
    train_rows = [r for r in rows if r["problem"] < cut]
    test_rows = [r for r in rows if r["problem"] >= cut]
    step_id = build_tokenizer().convert_tokens_to_ids(STEP_TAG)
    print(f"collected {len(rows)} answered samples ({sum(r['right'] for r in rows)} right) in {collect_s:.0f}s",
          flush=True)
    prm, config = make_prm()
    opt = torch.optim.AdamW(prm.parameters(), lr=cfg.lr, weight_decay=0.01)
    rng = random.Random(cfg.seed)
    losses = []
    for step in range(cfg.steps):
        x, y = _batch(rng.sample(train_rows, min(cfg.batch, len(train_rows))), step_id)
        logits = prm(x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, 2), y.reshape(-1), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % 50 == 0 or step == cfg.steps - 1:
            print(f"step {step:4d}  loss {sum(losses[-50:]) / len(losses[-50:]):.4f}  {time.time() - t0:.0f}s",
                  flush=True)
    scores = final_scores(prm, test_rows, step_id)
    meta = {"config": asdict(cfg), "samples": len(rows), "right": sum(r["right"] for r in rows),
            "held_out_samples": len(test_rows), "held_out_auc": auc(scores, [r["right"] for r in test_rows]),
            "seconds": round(time.time() - t0, 1), "collect_seconds": round(collect_s, 1), "losses": losses}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in prm.state_dict().items()}, str(out / "model.safetensors"))
        config.save_pretrained(str(out))
        save_tokenizer(out)
        (out / "training_meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "losses"},
                                                           indent=2) + "\n")
    return meta


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--smoke", action="store_true", help="a few problems and steps; the loss must fall")
    args = ap.parse_args(argv)
    meta = train(SMOKE if args.smoke else VerifierConfig(), args.out)
    auc_text = "n/a" if meta["held_out_auc"] is None else f"{meta['held_out_auc']:.3f}"
    print(f"{meta['samples']} samples ({meta['right']} right), held-out AUC {auc_text}, {meta['seconds']:.0f}s")
    if args.smoke:
        check_loss_fell(meta["losses"], 2)


if __name__ == "__main__":
    main()
