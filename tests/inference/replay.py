"""ReplayEngine: a stand-in engine that replays scripted generations, token for token.

The only fake engine in the tests, and named so: no gpt-oss or OpenMath model can run on these
machines, so their dialects are driven through the real loop by replaying what such a model writes,
tokenized by a real tokenizer, cut at stop strings and stop tokens exactly as vLLM cuts them.
"""

from __future__ import annotations

from inference.engine import Generation, GenerationRequest
from inference.sample import sample_and_turn


class ReplayEngine:
    name = "replay"

    def __init__(self, tokenizer, scripts: list[list[str]], max_model_len: int = 100_000) -> None:
        self.tokenizer = tokenizer  # encode(text) -> ids, decode(ids) -> text, with special tokens
        self.scripts = scripts  # per sample: the raw text the model writes in each turn
        self.max_model_len = max_model_len
        self.requests: list[GenerationRequest] = []
        self.aborted: list[str] = []

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        sample, turn = sample_and_turn(request.request_id)
        raw = self.tokenizer.encode(self.scripts[sample][turn])
        ids, text, reason, stop = self._cut(raw, request)
        return Generation(token_ids=ids, text=text, finish_reason=reason, stop_reason=stop,
                          prompt_tokens=len(request.prompt_ids))

    def _cut(self, raw: list[int], request: GenerationRequest):
        """Stop where vLLM would: after a stop token (kept), or at a stop string (text cut at its end, but
        the token that completed it kept whole, overshoot and all), else after `max_tokens` tokens (or at
        the model's length) with finish reason "length" and no stop reason. A stop token or string on the
        last allowed token is still "stop": vLLM checks stops before length. The script's end is the
        model's end of sequence: "stop", no stop reason."""
        limit = min(request.max_tokens, self.max_model_len - len(request.prompt_ids))
        for i, token in enumerate(raw):
            if token in request.stop_token_ids:
                ids = raw[: i + 1]
                return ids, self.tokenizer.decode(ids), "stop", token
            text = self.tokenizer.decode(raw[: i + 1])
            for stop in request.stop:
                at = text.find(stop)
                if at >= 0:
                    return raw[: i + 1], text[: at + len(stop)], "stop", stop
            if i + 1 >= limit:
                return raw[: i + 1], text, "length", None
        return raw, self.tokenizer.decode(raw), "stop", None

    async def abort(self, request_ids: list[str]) -> None:
        self.aborted += request_ids

    async def close(self) -> None:
        pass


class HarmonyTokenizer:
    """The o200k_harmony encoding (gpt-oss's real tokenizer, from openai_harmony) with the methods the
    markdown-family dialects call, so that OpenMath's format is tested on a real BPE tokenizer too."""

    def __init__(self) -> None:
        from openai_harmony import HarmonyEncodingName, load_harmony_encoding

        self.encoding = load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(self.encoding.encode(text, allowed_special="all"))

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self.encoding.decode_utf8(list(ids))

    def apply_chat_template(self, messages, add_generation_prompt=True, tokenize=False) -> str:
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")
