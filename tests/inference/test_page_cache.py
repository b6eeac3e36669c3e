"""Pre-reading weights into the page cache: every byte is read, and (where the kernel lets a test evict
a file first) the file is resident afterwards."""

from __future__ import annotations

import os

import pytest

from inference.page_cache import evict, resident_fraction, warm_page_cache, weight_files


def test_warming_reads_every_file_under_the_folder_largest_first(tmp_path):
    (tmp_path / "sub").mkdir()
    sizes = {"model-00001.safetensors": 3 << 20, "sub/model-00002.safetensors": (5 << 20) + 17, "config.json": 300}
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(os.urandom(size))
    assert [p.name for p in weight_files(tmp_path)] == ["model-00002.safetensors", "model-00001.safetensors",
                                                         "config.json"]
    stats = warm_page_cache(tmp_path, workers=2)
    assert (stats.files, stats.bytes, stats.failed) == (3, sum(sizes.values()), ())


def test_a_warmed_file_is_in_the_page_cache(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(os.urandom(8 << 20))
    evict(weights)
    before = resident_fraction(weights)
    if before is None or before > 0.5:
        pytest.skip(f"this file system keeps the file cached ({before}): residency cannot be shown here")
    warm_page_cache(weights)
    assert resident_fraction(weights) > 0.95


def test_a_missing_folder_is_an_error_and_an_unreadable_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError):
        warm_page_cache(tmp_path / "absent")
    locked = tmp_path / "locked.bin"
    locked.write_bytes(b"x" * 100)
    locked.chmod(0)
    stats = warm_page_cache(tmp_path)
    if os.geteuid() == 0:  # root reads it anyway
        assert stats.failed == ()
    else:
        assert stats.failed == (str(locked),)
