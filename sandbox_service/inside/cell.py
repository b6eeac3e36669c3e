"""Run one notebook cell in a namespace: capture its output, display its last expression, format its error.

Runs inside the sandbox (stdlib plus whatever the zygote preloaded); never imported by the server.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import linecache
import os
import sys
import time
import traceback
import types
from collections.abc import Callable


def _load_ipython_pretty():
    """IPython's pretty printer (what Jupyter shows; gpt-oss was trained on that format), without IPython.

    `import IPython` drags in the terminal, prompt_toolkit and jedi: 34 MB more in every zygote, which
    made each fork three times slower. The printer itself needs two tiny helper modules, so we import
    those three files under a stand-in `IPython` package, then step aside for a real `import IPython`.
    """
    spec = importlib.util.find_spec("IPython")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = spec.submodule_search_locations[0]
    saved = {name: sys.modules.get(name) for name in ("IPython", "IPython.utils", "IPython.lib")}
    try:
        for name, folder in (("IPython", root), ("IPython.utils", "utils"), ("IPython.lib", "lib")):
            package = types.ModuleType(name)
            package.__path__ = [os.path.join(root, folder) if name != "IPython" else root]
            sys.modules[name] = package
        return importlib.import_module("IPython.lib.pretty").pretty
    except Exception:  # noqa: BLE001 - an IPython that changed shape: fall back to repr
        return None
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


_ipython_pretty = _load_ipython_pretty()

_INTERNAL_FILES = {__file__}
DISPLAY_MODES = ("pretty", "repr", "none")


def truncation_marker(omitted: int) -> str:
    return f"\n[... {omitted} bytes of output omitted ...]\n"


class CappedStream(io.TextIOBase):
    """A text stream keeping the first and last bytes of what was written, and counting the rest.

    `on_flood` is called once the total passes `flood_bytes`: a cell printing without end is stopped
    there instead of burning its whole time limit.
    """

    def __init__(self, cap: int, flood_bytes: int, on_flood: Callable[[], None]) -> None:
        self.cap = cap
        self._head_cap = cap // 2
        self._tail_cap = cap - self._head_cap
        self._head = bytearray()
        self._tail = bytearray()
        self.total = 0
        self._flood_bytes = flood_bytes
        self._on_flood = on_flood
        self.buffer = _BinaryView(self)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.write_bytes(text.encode("utf-8", "surrogateescape"))
        return len(text)

    def write_bytes(self, data: bytes) -> None:
        self.total += len(data)
        room = self._head_cap - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if data:
            self._tail += data
            if len(self._tail) > 2 * self._tail_cap:  # trim in batches, not on every write
                del self._tail[: len(self._tail) - self._tail_cap]
        if self.total > self._flood_bytes:
            self._on_flood()

    def getvalue(self) -> tuple[str, bool]:
        """The kept text, with a marker where bytes were dropped, and whether any were."""
        tail = bytes(self._tail[-self._tail_cap:]) if self._tail_cap else b""
        omitted = self.total - len(self._head) - len(tail)
        head = self._head.decode("utf-8", "replace")
        if omitted <= 0:
            return head + tail.decode("utf-8", "replace"), False
        return head + truncation_marker(omitted) + tail.decode("utf-8", "replace"), True


class _BinaryView:
    """`sys.stdout.buffer`, for code that writes bytes."""

    def __init__(self, stream: CappedStream) -> None:
        self._stream = stream

    def write(self, data: bytes) -> int:
        self._stream.write_bytes(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


def cap_text(text: str, cap: int) -> str:
    """At most about `cap` bytes of `text`, head and tail, as output is kept: a displayed value or an
    exception message can be as large as memory allows, and must still fit in one answer."""
    data = text.encode("utf-8", "surrogatepass")  # lone surrogates (a cell can make them) pass, then U+FFFD
    if len(data) <= cap:
        return text
    head, tail = data[: cap // 2], data[len(data) - (cap - cap // 2):]
    return head.decode("utf-8", "replace") + truncation_marker(len(data) - cap) + tail.decode("utf-8", "replace")


def display_text(value: object, mode: str) -> str:
    """What a notebook shows for the value of a cell's last expression."""
    if value is None or mode == "none":
        return ""
    if mode == "pretty" and _ipython_pretty is not None:
        return _ipython_pretty(value, max_width=79, max_seq_length=1000)
    return repr(value)


def _split_last_expression(tree: ast.Module, code: str) -> ast.Expression | None:
    # A trailing semicolon hides the value, as in Jupyter.
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not code.rstrip().endswith(";"):
        return ast.Expression(tree.body.pop().value)
    return None


def format_error(exc: BaseException) -> dict:
    """The exception's type, message and a traceback without the sandbox's own frames."""
    te = traceback.TracebackException.from_exception(exc, capture_locals=False)
    te.stack = traceback.StackSummary.from_list(
        [frame for frame in te.stack if frame.filename not in _INTERNAL_FILES]
    )
    name = type(exc).__qualname__
    module = type(exc).__module__
    if module not in ("builtins", "__main__"):
        name = f"{module}.{name}"
    try:
        message = str(exc)
    except BaseException:  # noqa: BLE001 - a hostile __str__ must not take the worker down with it
        message = "<exception str() failed>"
    return {"type": name, "message": message, "traceback": "".join(te.format())}


def run_cell(
    code: str,
    namespace: dict,
    *,
    cell_index: int,
    display: str,
    stdout: CappedStream,
    stderr: CappedStream,
) -> dict:
    """Execute `code` in `namespace` with output going to the given streams; return the result fields."""
    filename = f"<cell-{cell_index}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    result: dict = {"status": "OK", "display": ""}
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = stdout, stderr
    try:
        tree = ast.parse(code, filename, "exec")
        last = _split_last_expression(tree, code) if display != "none" else None
        exec(compile(tree, filename, "exec"), namespace)
        if last is not None:
            value = eval(compile(last, filename, "eval"), namespace)
            if value is not None:
                namespace["_"] = value
                result["display"] = cap_text(display_text(value, display), stdout.cap)
    except MemoryError as exc:
        result.update(status="MEMORY_EXCEEDED", error=format_error(exc))
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are the cell's errors too
        result.update(status="ERROR", error=format_error(exc))
    finally:
        sys.stdout, sys.stderr = saved
    if "error" in result:
        result["error"] = {k: cap_text(v, stderr.cap) for k, v in result["error"].items()}
    return result


def elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
