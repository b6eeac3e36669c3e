"""Length-prefixed JSON frames: the wire format between the server, the zygote and its workers.

JSON rather than pickle because the zygote and its workers run untrusted code: nothing they send may be
able to execute anything on the reading side. Stdlib only: this module is imported inside the jail.
"""

from __future__ import annotations

import json
import os
import struct

HEADER = struct.Struct(">I")
MAX_FRAME = 64 << 20  # a frame larger than this means a corrupt or hostile stream


class FrameError(Exception):
    """The peer sent something that is not a valid frame."""


def encode(message: dict) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
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


def read_frame(fd: int) -> dict | None:
    """Blocking read of one frame; None on end of file."""
    header = read_exact(fd, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if size > MAX_FRAME:
        raise FrameError(f"frame of {size} bytes exceeds {MAX_FRAME}")
    body = read_exact(fd, size)
    if body is None:
        return None
    return json.loads(body)


class FrameBuffer:
    """Reassembles frames from a non-blocking byte stream."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[dict]:
        self._buf += data
        frames = []
        while len(self._buf) >= HEADER.size:
            (size,) = HEADER.unpack_from(self._buf)
            if size > MAX_FRAME:
                raise FrameError(f"frame of {size} bytes exceeds {MAX_FRAME}")
            end = HEADER.size + size
            if len(self._buf) < end:
                break
            try:
                frames.append(json.loads(self._buf[HEADER.size:end]))
            except ValueError as exc:
                raise FrameError(f"undecodable frame: {exc}") from exc
            del self._buf[:end]
        return frames

    def clear(self) -> None:
        self._buf.clear()
