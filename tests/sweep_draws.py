"""Drawing small HF configs nobody chose: pieces shared by every model type's sampler.

A draw is a dict of keyword arguments for the HF config class; HF's own validation and
modeling code decide what is valid (the sweep records what HF refuses). The field ranges come
from reading the installed transformers' configuration_*.py / modeling_*.py and
modeling_rope_utils.py (the v5 `rope_parameters` dict: rope_type, rope_theta, factor,
partial_rotary_factor, and each type's own keys)."""

from __future__ import annotations

import math
import random

VOCAB = (97, 301)


def log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def eps(rng: random.Random) -> float:
    """Norm epsilons across 1e-6..1e-2: the common published values half of the time, a
    log-uniform draw otherwise, so that a reader dropping or mixing up an epsilon shows."""
    if rng.random() < 0.5:
        return rng.choice([1e-6, 1e-5, 1e-2])
    return float(f"{log_uniform(rng, 1e-6, 1e-2):.3g}")


def flip(rng: random.Random, p: float = 0.5) -> bool:
    return rng.random() < p


def base(rng: random.Random, eos: bool = True) -> dict:
    """Vocabulary and special tokens; every model type has them."""
    kw = {"vocab_size": rng.randint(*VOCAB)}
    if eos:
        kw.update(bos_token_id=0, eos_token_id=1, pad_token_id=0)
    return kw


def heads(rng: random.Random, *, explicit_head_dim: bool = True, gqa: bool = True) -> dict:
    """hidden_size, num_attention_heads, num_key_value_heads and, some of the time, a head_dim
    apart from hidden / heads (Gemma, Qwen3, Mistral NeMo do so)."""
    n_heads = rng.choice([1, 2, 3, 4, 6, 8])
    per_head = rng.choice([8, 12, 16, 24])
    kw = {"hidden_size": n_heads * per_head, "num_attention_heads": n_heads}
    if explicit_head_dim and flip(rng, 0.4):
        kw["hidden_size"] = rng.choice([32, 48, 64])
        kw["head_dim"] = rng.choice([8, 12, 16, 20, 24])
    if gqa:
        kw["num_key_value_heads"] = rng.choice([d for d in range(1, n_heads + 1) if n_heads % d == 0])
    return kw


def head_dim_of(kw: dict) -> int:
    return kw.get("head_dim") or kw["hidden_size"] // kw["num_attention_heads"]


ROPE_TYPES = ("default", "linear", "dynamic", "yarn", "longrope", "llama3")


def rope(rng: random.Random, head_dim: int, *, types=ROPE_TYPES, partial: bool = False,
         max_positions: int = 128) -> dict:
    """A v5 `rope_parameters` dict of one of `types`, with its parameters drawn; the original
    context (16..64) is below the test sequences (37 tokens + generation) so that the scaled
    branches (dynamic, longrope's long factors, YaRN's ramp) are what gets compared."""
    kind = rng.choice(types)
    p: dict = {"rope_type": kind, "rope_theta": rng.choice([10000.0, 500000.0, float(f"{log_uniform(rng, 50, 1e6):.4g}")])}
    if partial and flip(rng):
        p["partial_rotary_factor"] = rng.choice([0.25, 0.5, 0.75, 1.0])
    rotary = int(head_dim * p.get("partial_rotary_factor", 1.0))
    original = rng.choice([16, 32, 64])
    if kind in ("linear", "dynamic"):
        p["factor"] = rng.choice([1.0, 2.0, 4.0, round(rng.uniform(1.0, 8.0), 2)])
    if kind == "yarn":
        p.update(factor=rng.choice([2.0, 4.0, 8.0, 32.0]), original_max_position_embeddings=original,
                 beta_fast=rng.choice([32.0, 16.0, 8.0]), beta_slow=rng.choice([1.0, 2.0]))
        if flip(rng):
            p["mscale"] = rng.choice([0.707, 1.0])
            p["mscale_all_dim"] = rng.choice([0.0, 0.707, 1.0])
        if flip(rng, 0.25):
            p["attention_factor"] = round(rng.uniform(0.8, 1.5), 3)
        if flip(rng, 0.3):
            p["truncate"] = flip(rng)
    if kind == "longrope":
        p["original_max_position_embeddings"] = original
        p["short_factor"] = [round(rng.uniform(1.0, 2.0), 3) for _ in range(rotary // 2)]
        p["long_factor"] = [round(rng.uniform(1.0, 8.0), 3) for _ in range(rotary // 2)]
        if flip(rng, 0.3):
            p["attention_factor"] = round(rng.uniform(0.8, 1.5), 3)
        else:
            p["factor"] = rng.choice([2.0, 4.0])
    if kind == "llama3":
        p.update(factor=rng.choice([2.0, 8.0, 32.0]), low_freq_factor=rng.choice([1.0, 2.0]),
                 high_freq_factor=rng.choice([4.0, 8.0]), original_max_position_embeddings=original)
    return p


def act(rng: random.Random, choices=("silu", "gelu", "gelu_pytorch_tanh", "relu")) -> str:
    return rng.choice(choices)


def sliding_window(rng: random.Random) -> int | None:
    """A window shorter than the 37-token test sequence most of the time; sometimes none."""
    return rng.choice([None, 3, 5, 8, 16, 64])


def layer_types(rng: random.Random, n: int, kinds=("full_attention", "sliding_attention")) -> list[str]:
    return [rng.choice(kinds) for _ in range(n)]


def moe_sizes(rng: random.Random) -> tuple[int, int]:
    """(experts, top-k) with top-k <= experts; top-k = experts and top-k = 1 included."""
    n = rng.choice([2, 3, 4, 6, 8])
    return n, rng.randint(1, n)
