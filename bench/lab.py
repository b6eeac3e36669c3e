"""The policy lab's speed: 10,000 simulated problem runs per policy, against the issue's one-minute goal.

    .venv/bin/python bench/lab.py [--runs 10000] [--problems 50] [--samples 16]

A synthetic recording (50 problems x 16 samples, 1-4 turns of 200-2000 tokens, tool calls of 20-500 ms)
under a decode rate like a large model's on one GPU; each policy is scored on `--runs` simulated problem
runs (runs / problems simulated runs of the set). Prints one table: wall time per policy, the ratio to
the 60 s goal, and how much faster the lab is than running those problems for real would be.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference.lab import Policy, score_policy
from inference.lab.synthetic import SyntheticSpec, synthetic_recording
from inference.lab.timing import Timing

GOAL_S = 60.0
# About what a 20B model decodes at on one H100: 12 ms a step, plus 0.15 ms per sequence in the batch.
TIMING = Timing(step_ms=12.0, per_sequence_ms=0.15, turn_ms=40.0, problem_ms=500.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--problems", type=int, default=50)
    ap.add_argument("--samples", type=int, default=16)
    args = ap.parse_args()
    recording = synthetic_recording(SyntheticSpec(problems=args.problems, samples=args.samples))
    replicates = args.runs // args.problems
    policies = [Policy(samples=args.samples, agree=4, total_s=5 * 3600),
                Policy(samples=args.samples, agree=args.samples, total_s=5 * 3600),
                Policy(samples=8, agree=3, total_s=3600, slots=4)]
    print(f"\nPolicy lab, {replicates * args.problems:,} simulated problem runs per policy "
          f"({replicates} runs of a {args.problems}-problem set, {args.samples} recorded samples each)\n")
    print("| policy | wall s | goal s | ratio to goal | simulated s per wall s | score [95%] |")
    print("|---|---:|---:|---:|---:|---|")
    for policy in policies:
        started = time.perf_counter()
        s = score_policy(recording, policy, TIMING, replicates=replicates)
        wall = time.perf_counter() - started
        print(f"| samples={policy.samples} agree={policy.agree} slots={policy.slots or 'all'} | {wall:.1f} | "
              f"{GOAL_S:.0f} | {wall / GOAL_S:.2f}x | {s.seconds * replicates / wall:,.0f} | "
              f"{s.score:.3f} [{s.low:.3f}, {s.high:.3f}] |")


if __name__ == "__main__":
    main()
