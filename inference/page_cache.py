"""Pre-read model weights into the operating system's page cache before the engine starts.

vLLM then loads the weights from memory instead of the disk: the AIMO3 winners read the 65 GB of
gpt-oss-120b this way (about 100 s) before starting the server, which was then ready in about 128 s.
Reading (not `posix_fadvise(WILLNEED)`, which the kernel may ignore or cap) is what they did, with
several threads so that network or NVMe storage sees parallel requests.

    stats = warm_page_cache("/kaggle/input/gpt-oss-120b/transformers/default/1")
    print(stats.bytes / stats.seconds / 1e9, "GB/s")
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 16 << 20  # large reads: fewer system calls, full read-ahead


@dataclass(frozen=True)
class WarmStats:
    files: int
    bytes: int  # bytes read (every byte of every file, when nothing failed)
    seconds: float
    failed: tuple[str, ...] = ()  # files that could not be read (named, not raised: warming is an optimisation)


def weight_files(path: str | os.PathLike) -> list[Path]:
    """Every regular file under `path` (or `path` itself), largest first so the long reads start early."""
    root = Path(path)
    files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    return sorted(files, key=lambda p: p.stat().st_size, reverse=True)


def _read_all(path: Path) -> int:
    read = 0
    with path.open("rb", buffering=0) as f:
        buffer = bytearray(CHUNK_BYTES)
        view = memoryview(buffer)
        while n := f.readinto(view):
            read += n
    return read


def warm_page_cache(path: str | os.PathLike, workers: int = 16) -> WarmStats:
    """Read every file under `path` once, `workers` files at a time, so that the page cache holds them.

    A missing path is an error; a file that cannot be read is reported in `failed`, not raised.
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"no weights at {root}")
    files = weight_files(root)
    started = time.perf_counter()
    total, failed = 0, []

    def read(file: Path) -> tuple[Path, int | None]:
        try:
            return file, _read_all(file)
        except OSError:
            return file, None

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(files) or 1))) as pool:
        for file, n in pool.map(read, files):
            if n is None:
                failed.append(str(file))
            else:
                total += n
    return WarmStats(files=len(files), bytes=total, seconds=time.perf_counter() - started, failed=tuple(failed))


def resident_fraction(path: str | os.PathLike) -> float | None:
    """The share of a file's pages that are in the page cache now (Linux `mincore`); None where it cannot
    be asked (not Linux, an empty file, or a file system that refuses to map it)."""
    libc_name = ctypes.util.find_library("c")
    size = os.path.getsize(path)
    if not libc_name or size == 0:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)
    page = mmap.PAGESIZE
    pages = (size + page - 1) // page
    with open(path, "rb") as f:
        try:
            # A private, copy-on-write mapping: ctypes needs a writable buffer to take its address, and
            # untouched private pages are the page cache's own, so mincore reports the cache's state.
            mapped = mmap.mmap(f.fileno(), size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        except (OSError, ValueError):
            return None
    try:
        anchor = ctypes.c_char.from_buffer(mapped)  # holds the buffer export; dropped before the unmap
        vector = (ctypes.c_ubyte * pages)()
        libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
        failed = libc.mincore(ctypes.c_void_p(ctypes.addressof(anchor)), ctypes.c_size_t(size), vector) != 0
        del anchor
        return None if failed else sum(b & 1 for b in vector) / pages
    finally:
        mapped.close()


def evict(path: str | os.PathLike) -> None:
    """Ask the kernel to drop a file's clean pages from the page cache (for tests and cold-start benchmarks)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
