"""Length-prefixed JSON frames: the byte-level wire format between the server, the zygote and its workers.

JSON rather than pickle because the zygote and its workers run untrusted code: nothing they send may be
able to execute anything on the reading side. Every reader names the largest frame it takes
(`protocol.MAX_*_FRAME`) and refuses a longer one from its header, before buffering a byte of it.
What the frames may contain is `protocol.py`'s business. Stdlib only: imported inside the jail.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

try:  # as part of the server's package, or as a plain module inside the jail
    from . import protocol
except ImportError:
    import protocol

HEADER = struct.Struct(">I")
FrameError = protocol.Violation  # a frame that is too long or undecodable breaks the protocol too


def encode(message: dict) -> bytes:
    body = protocol.encode_body(message)
    return HEADER.pack(len(body)) + body


def write_frame(fd: int, message: dict) -> None:
    """Blocking write of one whole frame to a file descriptor."""
    data = memoryview(encode(message))
    while data:
        data = data[os.write(fd, data):]


def read_exact(fd: int, size: int) -> bytes | None:
    """Blocking read of exactly `size` bytes; None on end of file."""
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, max_frame: int = protocol.MAX_SERVER_FRAME) -> object | None:
    """Blocking read of one frame; None on end of file."""
    header = read_exact(fd, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if size > max_frame:
        raise FrameError(f"frame of {size} bytes exceeds {max_frame}")
    body = read_exact(fd, size)
    if body is None:
        return None
    return protocol.parse_body(body)


class FrameBuffer:
    """Reassembles frames from a non-blocking byte stream; holds at most one frame of `max_frame` bytes."""

    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[object]:
        """The frames completed by `data`, one at a time: a reader that stops at a bad one parses no more."""
        self._buf += data
        while len(self._buf) >= HEADER.size:
            (size,) = HEADER.unpack_from(self._buf)
            if size > self.max_frame:
                raise FrameError(f"frame of {size} bytes exceeds {self.max_frame}")
            end = HEADER.size + size
            if len(self._buf) < end:
                break
            body = self._buf[HEADER.size:end]
            del self._buf[:end]
            yield protocol.parse_body(body)

    def clear(self) -> None:
        self._buf.clear()
