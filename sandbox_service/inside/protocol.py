"""The messages that cross between a session's processes, the zygote and the server: one schema, checked.

A session's processes run the cell's code, which can write anything to the sockets it inherits. So every
frame they send is hostile input: it is bounded before it is buffered (`MAX_*_FRAME`), parsed without
trusting its shape (deep nesting, invalid UTF-8, numbers of any size), and validated field by field
against the schema below before anything acts on it. A frame that fails is a `Violation`; the zygote
then ends that session alone (its processes killed, its caller answered CRASHED with the reason).

The same module bounds what goes up to the server: one answer-size budget (`ANSWER_BUDGET`, in encoded
bytes) that every result is trimmed to by the worker, checked by the zygote and by the server, and that
fits in one gRPC message (`GRPC_MAX_MESSAGE`, which both the server and the clients set).

Stdlib only: this module is imported inside the jail as well as by the server.
"""

from __future__ import annotations

import json
import math
import re

VERSION = 1  # in the configuration frame and the zygote's hello; a mismatch refuses the zygote

# -- sizes ------------------------------------------------------------------------------------------

GRPC_MAX_MESSAGE = 4 << 20  # the server's send and receive limit, and the clients' (see client.py)
ANSWER_BUDGET = 2 << 20  # encoded bytes of all text in one result: stdout, stderr, display, error, message
MAX_RESULT_FRAME = ANSWER_BUDGET + (16 << 10)  # a worker's result frame: the text plus its keys and numbers
MAX_EVENT_FRAME = 4 << 10  # a holder's events (worker started, worker died, failed): small by nature
MAX_ZYGOTE_FRAME = MAX_RESULT_FRAME + (16 << 10)  # what the server reads from a zygote
MAX_SERVER_FRAME = 8 << 20  # what a zygote reads from the server (trusted: the prelude, code of 128 KiB)
MAX_FRAMES_PER_CELL = 16  # frames a session may send per cell; legitimately about 3 (flooding is a violation)
MAX_ERROR_TEXT = 1000  # a "failed" event's error, as logged
PID_MAX = 1 << 22  # the kernel's upper bound on pid_max
WAIT_STATUS_MAX = 0xFFFF  # a wait status is 16 bits

# -- statuses ----------------------------------------------------------------------------------------

STATUSES = ("OK", "ERROR", "TIMEOUT", "MEMORY_EXCEEDED", "OUTPUT_LIMIT_EXCEEDED", "CRASHED", "REJECTED")
WORKER_STATUSES = ("OK", "ERROR", "MEMORY_EXCEEDED", "OUTPUT_LIMIT_EXCEEDED")  # what a cell can end with itself
TEXT_FIELDS = ("stdout", "stderr", "display", "message")
ERROR_FIELDS = ("type", "message", "traceback")
WORKER_RESULT_FIELDS = {
    "status", "stdout", "stderr", "display", "message", "stdout_truncated", "stderr_truncated", "error",
    "wall_ms", "cpu_ms", "peak_memory_bytes",
}
ZYGOTE_RESULT_FIELDS = WORKER_RESULT_FIELDS | {"state_rolled_back"}
MAX_MS = 1e12
MAX_BYTES = (1 << 63) - 1


class Violation(Exception):
    """A frame that breaks the schema: the peer that sent it is hostile or broken."""


# -- encoding and parsing --------------------------------------------------------------------------


def encode_body(message: dict) -> bytes:
    # ensure_ascii=False: non-ASCII text stays its UTF-8 size instead of tripling as \uXXXX escapes;
    # "replace" keeps the bytes valid UTF-8 even if a lone surrogate slipped through.
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


def parse_body(body: bytes | bytearray | memoryview) -> object:
    """JSON from a hostile peer: any failure (bad UTF-8, bad JSON, nesting past the recursion limit,
    memory) is a Violation, never an exception of another kind."""
    try:
        return json.loads(bytes(body))
    except (ValueError, RecursionError, MemoryError, TypeError) as exc:
        raise Violation(f"undecodable frame ({type(exc).__name__})") from None


def encoded_size(text: str) -> int:
    """Bytes `text` takes inside a frame (JSON string escapes included)."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8", "replace")) - 2


# -- field checks ------------------------------------------------------------------------------------

_SURROGATES = re.compile("[\ud800-\udfff]")


def text(value: object, name: str) -> str:
    if type(value) is not str:
        raise Violation(f"{name}: not a string")
    if _SURROGATES.search(value):  # JSON can carry lone surrogates; protobuf and UTF-8 cannot
        value = _SURROGATES.sub("\ufffd", value)
    return value


def flag(value: object, name: str) -> bool:
    if type(value) is not bool:
        raise Violation(f"{name}: not a boolean")
    return value


def integer(value: object, name: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise Violation(f"{name}: not an integer in {low}..{high}")
    return value


def number(value: object, name: str, high: float) -> float:
    if type(value) not in (int, float) or not (0 <= value <= high) or not math.isfinite(value):
        raise Violation(f"{name}: not a number in 0..{high:g}")
    return float(value)


def pid(value: object, name: str = "pid") -> int:
    return integer(value, name, 1, PID_MAX)


# -- messages from a session's processes --------------------------------------------------------------


def check_result(value: object, *, from_zygote: bool = False) -> dict:
    """A cell's result, field by field; returns a clean copy (surrogates replaced)."""
    if type(value) is not dict:
        raise Violation("result: not an object")
    allowed = ZYGOTE_RESULT_FIELDS if from_zygote else WORKER_RESULT_FIELDS
    unknown = set(value) - allowed
    if unknown:
        raise Violation(f"result: unknown fields {sorted(unknown)[:5]}")
    status = value.get("status")
    if status not in (STATUSES if from_zygote else WORKER_STATUSES):
        raise Violation(f"result.status: {str(status)[:40]!r} is not allowed")
    clean: dict = {"status": status}
    for name in TEXT_FIELDS:
        if name in value:
            clean[name] = text(value[name], f"result.{name}")
    for name in ("stdout_truncated", "stderr_truncated", "state_rolled_back"):
        if name in value:
            clean[name] = flag(value[name], f"result.{name}")
    for name in ("wall_ms", "cpu_ms"):
        if name in value:
            clean[name] = number(value[name], f"result.{name}", MAX_MS)
    if "peak_memory_bytes" in value:
        clean["peak_memory_bytes"] = integer(value["peak_memory_bytes"], "result.peak_memory_bytes", 0, MAX_BYTES)
    error = value.get("error")
    if error is not None:
        if type(error) is not dict or set(error) != set(ERROR_FIELDS):
            raise Violation("result.error: not an object of type, message and traceback")
        clean["error"] = {k: text(error[k], f"result.error.{k}") for k in ERROR_FIELDS}
    return clean


def check_cell_frame(value: object) -> tuple[str, dict]:
    """A worker's answer on the cell socket: (rid, result)."""
    if type(value) is not dict or set(value) != {"rid", "result"}:
        raise Violation("cell frame: not an object of rid and result")
    rid = text(value["rid"], "rid")
    if len(rid) > 64:
        raise Violation("rid: too long")
    return rid, check_result(value["result"])


def check_event(value: object) -> dict:
    """A holder's event on the control socket."""
    if type(value) is not dict:
        raise Violation("event: not an object")
    event = value.get("event")
    if event == "worker" and set(value) == {"event", "pid", "holder"}:
        return {"event": event, "pid": pid(value["pid"]), "holder": pid(value["holder"], "holder")}
    if event == "worker_died" and set(value) == {"event", "pid", "status"}:
        return {"event": event, "pid": pid(value["pid"]),
                "status": integer(value["status"], "status", 0, WAIT_STATUS_MAX)}
    if event == "failed" and set(value) == {"event", "error"}:
        return {"event": event, "error": text(value["error"], "error")[:MAX_ERROR_TEXT]}
    raise Violation(f"event: {str(event)[:40]!r} with fields {sorted(map(str, value))[:5]} is not in the schema")


# -- the answer budget --------------------------------------------------------------------------------


def _cap(text_value: str, cap: int) -> str:
    """Head and tail of `text_value` in about `cap` raw bytes, with a marker (cell.cap_text's shape)."""
    data = text_value.encode("utf-8", "surrogatepass")
    if len(data) <= cap:
        return text_value
    head, tail = data[: cap // 2], data[len(data) - (cap - cap // 2):]
    omitted = len(data) - cap
    return (head.decode("utf-8", "replace") + f"\n[... {omitted} bytes omitted to fit the answer ...]\n"
            + tail.decode("utf-8", "replace"))


def fit_budget(result: dict, budget: int = ANSWER_BUDGET) -> dict:
    """Trim the text of a result (in place) until all of it fits `budget` encoded bytes together.

    Each field was capped on its own (max_output_bytes); this is the one budget for all of them at once,
    so the answer always fits one gRPC message. The largest fields give up the most."""
    error = result.get("error") or {}
    slots = [(result, k) for k in TEXT_FIELDS if result.get(k)] + [(error, k) for k in ERROR_FIELDS if error.get(k)]
    for _ in range(8):
        sizes = [encoded_size(owner[key]) for owner, key in slots]
        total = sum(sizes)
        if total <= budget:
            return result
        scale = budget / total * 0.9
        for owner, key in slots:
            raw = len(owner[key].encode("utf-8", "surrogatepass"))
            owner[key] = _cap(owner[key], max(0, int(raw * scale) - 128))
            if owner is result and key in ("stdout", "stderr"):
                result[f"{key}_truncated"] = True
    for owner, key in slots:  # escapes everywhere (control characters): give up on the text
        owner[key] = ""
    result["message"] = "the answer did not fit the answer budget and was dropped"
    return result
