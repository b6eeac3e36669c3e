"""Per-request limits: their defaults, the server's maxima, and validation of what a caller asks for."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

MAX_CODE_BYTES = 128 * 1024  # fits a session socket's buffer, so sending a cell never blocks the zygote


@dataclass(frozen=True)
class Limits:
    """Resource limits for one stateless call or one session (its cells share them)."""

    timeout_ms: int = 10_000  # wall clock per cell, enforced by the server to the millisecond
    memory_bytes: int = 2 << 30  # address space of the process running the cell
    cpu_seconds: int = 30  # CPU time per cell
    max_processes: int = 16  # processes and threads the cell may add
    max_file_bytes: int = 16 << 20  # largest file (and fd-level write) the cell may make
    max_output_bytes: int = 64 << 10  # stdout and stderr each keep this many bytes, head and tail

    def for_zygote(self) -> dict:
        """The limits a session's processes apply to themselves (the rest are enforced outside)."""
        return {k: v for k, v in asdict(self).items() if k not in ("timeout_ms", "max_output_bytes")}


DEFAULT_LIMITS = Limits()
MAX_LIMITS = Limits(
    timeout_ms=600_000,
    memory_bytes=16 << 30,
    cpu_seconds=600,
    max_processes=256,
    max_file_bytes=1 << 30,
    max_output_bytes=16 << 20,  # each stream; all of an answer is then trimmed to the 2 MiB budget (protocol.py)
)
LIMIT_NAMES = tuple(f.name for f in fields(Limits))


class InvalidRequest(ValueError):
    """A request the server refuses; the message names the field."""


def resolve(requested: dict[str, int], base: Limits, maxima: Limits) -> Limits:
    """Merge the limits a caller set (absent ones keep `base`), checking each against `maxima`."""
    for name, value in requested.items():
        if name not in LIMIT_NAMES:
            raise InvalidRequest(f"limits.{name}: unknown limit")
        if value <= 0:
            raise InvalidRequest(f"limits.{name}: must be positive, got {value}")
        ceiling = getattr(maxima, name)
        if value > ceiling:
            raise InvalidRequest(f"limits.{name}: {value} exceeds the server maximum {ceiling}")
    return replace(base, **requested)


def check_code(code: str) -> None:
    if not code.strip():
        raise InvalidRequest("code: empty")
    if "\x00" in code:
        raise InvalidRequest("code: contains a NUL byte")
    size = len(code.encode("utf-8", "surrogatepass"))
    if size > MAX_CODE_BYTES:
        raise InvalidRequest(f"code: {size} bytes exceeds the maximum {MAX_CODE_BYTES}")
