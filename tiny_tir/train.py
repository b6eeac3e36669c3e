"""Train the tiny TIR model on synthetic traces (CPU, seeded, minutes).

    python -m tiny_tir.train --out models/tiny-tir          # full run (the shipped model)
    python -m tiny_tir.train --smoke                         # a few steps; checks the loss falls

The loss covers only what the model writes: code cells, lead-in words, the boxed answer and eos.
The prompt and the tool outputs are masked out (label -100).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import LlamaForCausalLM

from tiny_tir.model import ModelSize, make_model
from tiny_tir.problems import KINDS, LONG_NUMBERS, generate
from tiny_tir.tokenizer import DIGIT_GROUPS, END, build_tokenizer, save_tokenizer
from tiny_tir.traces import segments

IGNORE = -100
TRAIN_SEED = 1234  # evaluation uses other seeds (see tiny_tir.evaluate)


# How often each kind is drawn, relative to the others: the kinds with long numbers to copy need more practice.
KIND_WEIGHTS = {**dict.fromkeys(KINDS, 1.0), **dict.fromkeys(LONG_NUMBERS, 3.0)}


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX). Without, autocast emulates it and a
    step is ~12x slower (measured on a 2-core AVX2 EPYC: 7.7 s against 0.64 s in fp32)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@dataclass(frozen=True)
class TrainConfig:
    seed: int = TRAIN_SEED
    problems: int = 144000  # one pass: 9000 steps x 16, every problem seen once
    steps: int = 9000
    batch: int = 16
    kind_weights: dict[str, float] = field(default_factory=lambda: dict(KIND_WEIGHTS))
    # autocast where the CPU has bf16 matrix units (~20% more steps in the time cap); fp32 elsewhere
    bf16: bool = field(default_factory=cpu_has_bf16)
    lr: float = 3e-3
    warmup: int = 50
    weight_decay: float = 0.05
    threads: int = 2
    # torch.compile of the model with its loss (inductor; needs a C++ compiler): with eager attention, 1.5x
    # faster steps than eager PyTorch with SDPA, so more of them fit in the time cap. The smoke mode skips
    # it (a compile is ~25 s).
    compile: bool = True
    # Loss weight of the digit tokens the model writes, against 1 for the rest: copying numbers is the one
    # skill still being learned when the budget ends (at 5,600 steps, 3x: 94.5% of 200 problems solved, 1x: 74.5%).
    number_weight: float = 3.0
    size: ModelSize = field(default_factory=ModelSize)


SMOKE = TrainConfig(
    problems=64,
    steps=12,
    batch=8,
    lr=3e-3,
    warmup=2,
    compile=False,
    size=ModelSize(hidden=64, layers=2, heads=2, intermediate=128),
)


def encode(seed: int, n: int, weights: dict[str, float] | None = None) -> list[tuple[list[int], list[int]]]:
    """Token ids and labels for `n` training problems (deterministic in `seed`)."""
    tok = build_tokenizer()
    r = random.Random(seed + 1)  # separate stream for the error-display variants
    eos = tok.convert_tokens_to_ids(END)
    traces = [list(segments(p, r)) for p in generate(seed, n, weights)]
    # One batched call: the Rust tokenizer spreads it over the cores (40% less time than one text at a time).
    encoded = iter(tok([seg.text for trace in traces for seg in trace], add_special_tokens=False)["input_ids"])
    out = []
    for trace in traces:
        ids: list[int] = []
        labels: list[int] = []
        for seg in trace:
            seg_ids = next(encoded)
            ids += seg_ids
            labels += seg_ids if seg.trained else [IGNORE] * len(seg_ids)
        ids.append(eos)
        labels.append(eos)
        out.append((ids, labels))
    return out


def encode_sft(path: Path) -> list[tuple[list[int], list[int]]]:
    """Token ids and labels from `aimo export-sft` records: segments marked `train: false` (the prompt,
    tool outputs) are masked, as in the synthetic traces; eos ends each example once."""
    tok = build_tokenizer()
    eos = tok.convert_tokens_to_ids(END)
    out = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        ids: list[int] = []
        labels: list[int] = []
        for seg in json.loads(line)["segments"]:
            seg_ids = tok.encode(seg["text"], add_special_tokens=False)
            ids += seg_ids
            labels += seg_ids if seg["train"] else [IGNORE] * len(seg_ids)
        if not ids or ids[-1] != eos:
            ids.append(eos)
            labels.append(eos)
        out.append((ids, labels))
    return out


def _batch(examples: list[tuple[list[int], list[int]]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    # Right padding needs no attention mask: causal attention never lets a real token see a pad,
    # and pad positions carry label -100.
    width = max(len(ids) for ids, _ in examples)
    x = torch.full((len(examples), width), pad_id, dtype=torch.long)
    y = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    for i, (ids, labels) in enumerate(examples):
        x[i, : len(ids)] = torch.tensor(ids)
        y[i, : len(labels)] = torch.tensor(labels)
    return x, y


def weighted_loss(
    model: LlamaForCausalLM, x: torch.Tensor, y: torch.Tensor, digit_ids: torch.Tensor, number_weight: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, digit tokens predicted right, digit tokens): the loss weighs the digits the model writes
    `number_weight` times the other trained tokens. One function so that torch.compile fuses the loss
    and the greedy check with the model (12% faster steps than compiling the model alone)."""
    logits = model(input_ids=x).logits[:, :-1].float()
    target = y[:, 1:].reshape(-1)
    logits = logits.reshape(-1, logits.size(-1))
    per_token = torch.nn.functional.cross_entropy(logits, target, ignore_index=IGNORE, reduction="none")
    is_digit = torch.isin(target, digit_ids)
    weight = (target != IGNORE).float()
    weight = torch.where(is_digit, weight * number_weight, weight)
    right = ((logits.argmax(-1) == target) & is_digit).sum()
    return (per_token * weight).sum() / weight.sum(), right, is_digit.sum()


def train(
    cfg: TrainConfig, out: Path | None, log_every: int = 50, init_from: Path | None = None,
    sft: Path | None = None,
) -> list[float]:
    """Train and (if `out`) save model + tokenizer; returns the per-step losses.

    `sft`: an `aimo export-sft` file whose records join the synthetic examples."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    t0 = time.time()
    data = encode(cfg.seed, cfg.problems, cfg.kind_weights)
    if sft is not None:
        exported = encode_sft(sft)
        print(f"sft examples {len(exported)} from {sft}", flush=True)
        data += exported
    tok = build_tokenizer()
    # init_from continues from saved weights (experiments only; the shipped model starts from scratch).
    model = LlamaForCausalLM.from_pretrained(str(init_from)) if init_from else make_model(cfg.size)
    # Plain matmul-softmax attention: at these lengths (~130 tokens) the CPU flash-attention kernel's
    # backward took a third of a step; vLLM serves the weights with its own kernels either way.
    model.set_attn_implementation("eager")
    step_loss = torch.compile(weighted_loss, dynamic=True) if cfg.compile else weighted_loss
    n_params = sum(p.numel() for p in model.parameters())
    print(f"params {n_params:,}  examples {len(data)}  encode {time.time() - t0:.1f}s", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.95),
        fused=True,  # one kernel for the whole update: 2% of a step
    )

    def lr_at(step: int) -> float:
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))

    order = random.Random(cfg.seed + 2)
    idx: list[int] = []

    def refill() -> list[int]:
        # Length bucketing: sort chunks of 16 batches by length so a batch pads little (padding
        # was ~45% of the compute with random batches), then shuffle the batches themselves.
        fresh = list(range(len(data)))
        order.shuffle(fresh)
        chunk = cfg.batch * 16
        batches = []
        for c in range(0, len(fresh), chunk):
            part = sorted(fresh[c : c + chunk], key=lambda i: len(data[i][0]))
            batches += [part[b : b + cfg.batch] for b in range(0, len(part), cfg.batch)]
        order.shuffle(batches)
        return [i for b in batches for i in b]

    losses: list[float] = []
    copies: list[float] = []  # per step: share of the numbers' tokens the model would write right
    digit_ids = torch.tensor(sorted(tok.convert_tokens_to_ids(g) for g in DIGIT_GROUPS))
    model.train()
    for step in range(cfg.steps):
        if len(idx) < cfg.batch:
            idx = refill()  # drops a partial batch at the end of an epoch
        chosen, idx = idx[: cfg.batch], idx[cfg.batch :]
        x, y = _batch([data[i] for i in chosen], tok.pad_token_id)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            loss, right, digits = step_loss(model, x, y, digit_ids, cfg.number_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        copies.append(right.item() / digits.item() if digits.item() else 1.0)
        if step % log_every == 0 or step == cfg.steps - 1:
            recent = sum(losses[-log_every:]) / len(losses[-log_every:])
            copied = sum(copies[-log_every:]) / len(copies[-log_every:])
            elapsed = time.time() - t0
            print(f"step {step:5d}  loss {recent:.4f}  numbers right {copied:.1%}  lr {lr_at(step):.2e}  "
                  f"{elapsed:.0f}s", flush=True)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(out), safe_serialization=True)
        save_tokenizer(out)
        meta = {
            "train_config": asdict(cfg),
            "params": n_params,
            "seconds": round(time.time() - t0, 1),
            "final_loss": sum(losses[-50:]) / len(losses[-50:]),
        }
        (out / "training_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return losses


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None, help="where to save the model (default: don't save)")
    ap.add_argument("--smoke", action="store_true", help="a few steps of a tiny model; the loss must fall")
    ap.add_argument("--seed", type=int, default=TRAIN_SEED)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--problems", type=int, default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--number-weight", type=float, default=None, help="loss weight of the digit tokens")
    ap.add_argument("--no-compile", action="store_true", help="train eager (no C++ compiler; slower, other weights)")
    ap.add_argument("--init-from", type=Path, default=None, help="continue from saved weights (experiments)")
    ap.add_argument("--sft", type=Path, default=None, help="also train on an `aimo export-sft` file")
    args = ap.parse_args(argv)
    cfg = SMOKE if args.smoke else TrainConfig()
    overrides = {
        k: v
        for k, v in {"seed": args.seed, "steps": args.steps, "problems": args.problems, "batch": args.batch,
                    "lr": args.lr, "number_weight": args.number_weight,
                    "compile": False if args.no_compile else None}.items()
        if v is not None
    }
    cfg = TrainConfig(**{**asdict(cfg), "size": cfg.size, **overrides})
    losses = train(cfg, args.out, log_every=2 if args.smoke else 50, init_from=args.init_from, sft=args.sft)
    if args.smoke:
        check_loss_fell(losses, 3)


def check_loss_fell(losses: list[float], window: int) -> None:
    """Smoke modes: the mean of the last `window` losses must be below that of the first."""
    first, last = sum(losses[:window]) / window, sum(losses[-window:]) / window
    print(f"smoke: loss {first:.3f} -> {last:.3f}")
    if not last < first:
        raise SystemExit("smoke: the loss did not fall")


if __name__ == "__main__":
    main()
