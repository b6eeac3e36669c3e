"""What happened, sample by sample and turn by turn: the record every report, benchmark and the lab reads.

The format is documented in docs/trace-format.md; TRACE_FORMAT goes up when a field changes meaning
or goes away (adding one does not).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

TRACE_FORMAT = 1


@dataclass
class TurnTrace:
    text: str  # what the model wrote in this turn
    finish_reason: str
    prompt_tokens: int
    generated_tokens: int
    cached_tokens: int | None  # prompt tokens vLLM served from its prefix cache
    reusable_tokens: int  # prompt tokens whose KV was already computed by an earlier turn of this sample
    generate_ms: float
    start_ms: float = 0.0  # when the generation request went out, from the problem's start
    code: str | None = None
    status: str | None = None  # the sandbox result's status
    output: str | None = None  # what the model was shown
    sandbox_ms: float | None = None  # the cell's own wall time, as the sandbox measured it
    tool_ms: float | None = None  # from the end of generation to the continuation being ready


@dataclass
class SampleTrace:
    index: int
    seed: int
    turns: list[TurnTrace] = field(default_factory=list)
    answer: int | None = None
    finish: str = ""  # "answered", "no_answer", "length", "aborted", "error"
    error: str | None = None
    start_ms: float = 0.0  # when the sample began, from the problem's start
    wall_ms: float = 0.0  # from its start to its end (answer, abort or error)
    entropy_sum: float = 0.0  # top-k logprob entropy summed over generated tokens (when logprobs are on)
    entropy_tokens: int = 0
    entropy_tail: list[float] = field(default_factory=list)  # the last ENTROPY_TAIL_TOKENS tokens' entropies
    source: str = "main"  # the sample source it came from (its name; "revision" for a revision round's)
    verifier_score: float | None = None  # the verifier's aggregate score, when the solver has one
    round: int = 0  # 0: the first round; 1: a revision round's sample, which saw the leading answers
    weight: float = 1.0  # its weight in the vote (its round's)

    @property
    def mean_entropy(self) -> float | None:
        return self.entropy_sum / self.entropy_tokens if self.entropy_tokens else None

    @property
    def tail_entropy(self) -> float | None:
        return sum(self.entropy_tail) / len(self.entropy_tail) if self.entropy_tail else None

    @property
    def tool_calls(self) -> int:
        return sum(1 for t in self.turns if t.code is not None)

    @property
    def code_ok(self) -> int:
        return sum(1 for t in self.turns if t.status == "OK")

    @property
    def generated_tokens(self) -> int:
        return sum(t.generated_tokens for t in self.turns)


@dataclass
class Result:
    problem: str
    answer: int  # always an integer: the vote's winner, or the fallback
    answered: bool  # False when no sample produced an answer and `answer` is the fallback
    votes: dict[int, int]
    samples: list[SampleTrace]
    elapsed_s: float
    early_stopped: bool = False
    failure: str | None = None  # why the problem could not be fully attempted (the answer still stands)

    def to_dict(self) -> dict:
        data = {"trace_format": TRACE_FORMAT, **asdict(self)}
        data["votes"] = {str(k): v for k, v in self.votes.items()}
        return data
