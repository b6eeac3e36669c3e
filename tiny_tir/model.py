"""The tiny model's architecture: a small Llama that vLLM's CPU backend can load.

head_dim is 32 because vLLM's CPU attention kernels only accept a few head sizes (32/64/128...).
Weights are tied (embedding = LM head) to save space; the vocabulary is ~100 characters anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import LlamaConfig, LlamaForCausalLM

from tiny_tir.tokenizer import END, PAD, build_tokenizer


@dataclass(frozen=True)
class ModelSize:
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    intermediate: int = 512
    max_positions: int = 1024


def make_config(size: ModelSize = ModelSize()) -> LlamaConfig:
    """A LlamaConfig for the character vocabulary (head_dim = hidden / heads = 32)."""
    tok = build_tokenizer()
    head_dim = size.hidden // size.heads
    assert head_dim in (32, 64, 128), "vLLM CPU attention accepts head sizes 32/64/128"
    return LlamaConfig(
        vocab_size=len(tok),
        hidden_size=size.hidden,
        intermediate_size=size.intermediate,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.heads,
        head_dim=head_dim,
        max_position_embeddings=size.max_positions,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tok.convert_tokens_to_ids(END),
        pad_token_id=tok.convert_tokens_to_ids(PAD),
        torch_dtype="float32",
    )


def make_model(size: ModelSize = ModelSize()) -> LlamaForCausalLM:
    return LlamaForCausalLM(make_config(size))
