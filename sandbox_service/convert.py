"""Between the wire (protobuf messages) and the pool (plain dicts and `Limits`)."""

from __future__ import annotations

import re
from dataclasses import asdict

from aimo.sandbox.v1 import sandbox_pb2 as pb

from .limits import LIMIT_NAMES, InvalidRequest, Limits
from .result import ExecResult

DISPLAY_NAMES = {pb.DISPLAY_PRETTY: "pretty", pb.DISPLAY_REPR: "repr", pb.DISPLAY_NONE: "none"}
DISPLAY_VALUES = {v: k for k, v in DISPLAY_NAMES.items()}


def requested_limits(message: pb.Limits) -> dict[str, int]:
    """Only the limits the caller set: unset ones fall back to the server's defaults."""
    return {name: getattr(message, name) for name in LIMIT_NAMES if message.HasField(name)}


def limits_message(limits: Limits) -> pb.Limits:
    return pb.Limits(**asdict(limits))


def display_name(value: int) -> str:
    try:
        return DISPLAY_NAMES[value]
    except KeyError:
        raise InvalidRequest(f"display: unknown value {value}") from None


def _text(value: object) -> str:
    """A string protobuf can carry. A cell controls these (an exception message with a lone surrogate,
    a forged result frame): lone surrogates become U+FFFD and non-strings their str()."""
    text = value if isinstance(value, str) else "" if value is None else str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATES.sub("\ufffd", text)
    return text


def _number(value: object, kind: type) -> int | float:
    try:
        return max(kind(value), 0)
    except (TypeError, ValueError, OverflowError):
        return kind(0)


_SURROGATES = re.compile("[\ud800-\udfff]")


def result_message(result: dict) -> pb.ExecuteResult:
    error = result.get("error")
    status = f"STATUS_{result.get('status')}"
    return pb.ExecuteResult(
        status=pb.Status.Value(status) if status in pb.Status.keys() else pb.STATUS_CRASHED,
        stdout=_text(result.get("stdout")),
        stderr=_text(result.get("stderr")),
        display=_text(result.get("display")),
        stdout_truncated=bool(result.get("stdout_truncated")),
        stderr_truncated=bool(result.get("stderr_truncated")),
        error=pb.Error(**{k: _text(error.get(k)) for k in ("type", "message", "traceback")})
        if isinstance(error, dict) and error else None,
        wall_ms=_number(result.get("wall_ms"), float),
        cpu_ms=_number(result.get("cpu_ms"), float),
        peak_memory_bytes=_number(result.get("peak_memory_bytes"), int),
        state_rolled_back=bool(result.get("state_rolled_back")),
        cell_index=_number(result.get("cell_index"), int),
        message=_text(result.get("message")),
    )


def result_from_message(message: pb.ExecuteResult) -> ExecResult:
    return ExecResult(
        status=pb.Status.Name(message.status).removeprefix("STATUS_"),
        stdout=message.stdout,
        stderr=message.stderr,
        display=message.display,
        stdout_truncated=message.stdout_truncated,
        stderr_truncated=message.stderr_truncated,
        error={"type": message.error.type, "message": message.error.message,
               "traceback": message.error.traceback} if message.HasField("error") else None,
        wall_ms=message.wall_ms,
        cpu_ms=message.cpu_ms,
        peak_memory_bytes=message.peak_memory_bytes,
        state_rolled_back=message.state_rolled_back,
        cell_index=message.cell_index,
        message=message.message,
    )
