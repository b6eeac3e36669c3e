"""The policy lab: replay recorded traces under other policies (samples, early stop, selector, time budget)
without a GPU, score them with confidence intervals, and search for the best.

    recording = load_runs(["runs/rec"])
    timing = fit_timing(recording)
    score = score_policy(recording, Policy(samples=8, agree=4, total_s=3600), timing)
"""

from .recording import Recording, load_runs
from .replay import Policy, replay_recorded_policy
from .score import score_policy
from .timing import Timing, fit_timing

__all__ = ["Policy", "Recording", "Timing", "fit_timing", "load_runs", "replay_recorded_policy", "score_policy"]
