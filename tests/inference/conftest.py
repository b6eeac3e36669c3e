"""Fixtures for the engine tests: the bundled tiny model in vLLM (CPU build), on one long-lived loop.

AsyncLLM belongs to the event loop that started it, so the engine lives on a private loop thread and
tests run their coroutines there with `on_engine_loop`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox_service.bridge import LoopThread

MODEL = Path(__file__).resolve().parents[2] / "models" / "tiny-tir"
KAGGLE_DOUBLE = Path(__file__).resolve().parents[2] / "tests" / "kaggle_double"  # the AIMO3 gateway double


@pytest.fixture(scope="session")
def engine_loop():
    thread = LoopThread("engine-tests")
    yield thread
    thread.stop()


@pytest.fixture(scope="session")
def tiny_engine(engine_loop):
    if not (MODEL / "config.json").exists():
        pytest.fail(f"the tiny model is missing from {MODEL}")
    from inference.vllm_engine import VLLMEngine

    async def start():
        return VLLMEngine.for_cpu(str(MODEL), max_model_len=1024, max_num_seqs=16)

    engine = engine_loop.run(start())
    yield engine
    engine_loop.run(engine.close())


@pytest.fixture(scope="session")
def tiny_dialect():
    from transformers import AutoTokenizer

    from inference.dialects import MarkdownDialect

    return MarkdownDialect(AutoTokenizer.from_pretrained(str(MODEL)))
