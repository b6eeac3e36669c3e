"""An OpenAI-compatible completions server (`vllm serve`, SGLang) as an engine.

Prompts go as token ids and token ids come back (`return_token_ids`), so splicing stays in token space.
Closing the stream makes the server abort the request.
"""

from __future__ import annotations

import httpx
import openai

from .engine import EngineError, Generation, GenerationRequest


class OpenAIEngine:
    def __init__(self, base_url: str, model: str, *, max_model_len: int = 4096, api_key: str = "none",
                 timeout_s: float = 3600.0) -> None:
        self.client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0)
        self.model = model
        self.name = model
        self.max_model_len = max_model_len

    async def generate(self, request: GenerationRequest) -> Generation:
        extra = {
            "include_stop_str_in_output": True, "return_token_ids": True, "skip_special_tokens": False,
            "min_p": request.min_p, "stop_token_ids": list(request.stop_token_ids),
        }
        result = Generation(prompt_tokens=len(request.prompt_ids))
        try:
            stream = await self.client.completions.create(
                model=self.model, prompt=list(request.prompt_ids), max_tokens=request.max_tokens,
                temperature=request.temperature, top_p=request.top_p, seed=request.seed,
                stop=list(request.stop) or None, logprobs=request.logprobs or None, stream=True,
                stream_options={"include_usage": True}, extra_body=extra,
            )
            async with stream:
                async for chunk in stream:
                    usage = getattr(chunk, "usage", None)
                    details = getattr(usage, "prompt_tokens_details", None) if usage else None
                    if details is not None and getattr(details, "cached_tokens", None) is not None:
                        result.cached_tokens = details.cached_tokens
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    result.text += choice.text or ""
                    result.token_ids += getattr(choice, "token_ids", None) or []
                    logprobs = getattr(choice, "logprobs", None)
                    for top in (getattr(logprobs, "top_logprobs", None) or []) if logprobs else []:
                        result.add_entropy(list(top.values()))
                    if choice.finish_reason:
                        result.finish_reason = choice.finish_reason
                        result.stop_reason = getattr(choice, "stop_reason", None)
        except (openai.APIConnectionError, openai.APIStatusError, httpx.HTTPError) as exc:
            raise EngineError(f"completions server failed: {exc}") from exc
        return result

    async def abort(self, request_ids: list[str]) -> None:
        """Nothing to send: cancelling `generate` closes its stream, and the server aborts on disconnect."""

    async def close(self) -> None:
        await self.client.close()
