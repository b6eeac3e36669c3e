"""The outcome of one cell, as every client (gRPC or in-process) returns it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ExecResult:
    """One cell's outcome, as every client (gRPC or in-process) returns it."""

    status: str  # "OK", "ERROR", "TIMEOUT", "MEMORY_EXCEEDED", "OUTPUT_LIMIT_EXCEEDED", "CRASHED", "REJECTED"
    stdout: str = ""
    stderr: str = ""
    display: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    error: dict | None = None  # {"type", "message", "traceback"}
    wall_ms: float = 0.0
    cpu_ms: float = 0.0
    peak_memory_bytes: int = 0
    state_rolled_back: bool = False
    cell_index: int = 0
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "OK"

    @property
    def output(self) -> str:
        """What a notebook would show: stdout, then the displayed value."""
        if self.display:
            return self.stdout + self.display + "\n"
        return self.stdout

    @classmethod
    def from_dict(cls, result: dict) -> ExecResult:
        known = {k: v for k, v in result.items() if k in cls.__dataclass_fields__}
        return cls(**known)
