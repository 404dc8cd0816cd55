"""The concepts of the notes tree: one page each, its prose written once in concepts/<slug>.md,
everything else (which presets use it, their numbers, the source files, the lab's verdicts)
generated from the configs.

A concept says which presets use it with a predicate over the ModelConfig, and what to show
for each of them with a function of the preset's Description (describe.py): both read config
fields only, never family names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from typing import Callable

from ..analysis import Analysis
from ..describe import Description, fmt_bytes, fmt_count
from ..model_config import AttentionConfig, MLAConfig, ModelConfig

# The device size the parallelism page counts in: an 80 GB accelerator (NVIDIA A100/H100 80GB),
# the most common training and serving part of 2023-2025. Decimal GB, as the vendors sell it.
DEVICE_BYTES = 80 * 10**9
DEVICE_NAME = "80 GB"

# Weight precisions the precision page tabulates: (name, bytes per parameter).
PRECISIONS = (("float32", 4), ("bfloat16", 2), ("int8", 1), ("int4", 0.5))


@dataclass(frozen=True)
class Concept:
    slug: str
    title: str
    group: str
    uses: Callable[[ModelConfig], bool]
    # the header(s) and the cell(s) of one preset's row in the generated "used by" table
    column: str | tuple[str, ...]
    detail: Callable[[ModelConfig, Description, Analysis], str | tuple[str, ...]]
    sources: tuple[str, ...]  # files under src/archlab that implement it
    claims: tuple[str, ...] = ()  # lab claims (lab/<module>.py CLAIM.name) that measure it

    def prose(self) -> str:
        return resources.files(__package__).joinpath("concepts", f"{self.slug}.md").read_text(encoding="utf-8").strip()


def _softmax_attention(cfg: ModelConfig) -> AttentionConfig | None:
    a = cfg.resolved_attention
    return a if isinstance(a, AttentionConfig) else None


def _kv_heads(cfg: ModelConfig) -> tuple[int, int] | None:
    a = _softmax_attention(cfg)
    return None if a is None else (a.n_heads, a.n_kv_heads or a.n_heads)


def _heads(cfg: ModelConfig) -> str:
    h = _kv_heads(cfg)
    return "-" if h is None else f"{h[0]} query / {h[1]} KV heads"


def _kinds(cfg: ModelConfig) -> set[str]:
    return {s.kind for s in cfg.layers}


def _ffn_kinds(cfg: ModelConfig) -> set[tuple[str, str]]:
    """(kind, activation family) of every FFN the layers use; MoE experts are gated units."""
    out = set()
    used = {s.ffn for s in cfg.layers}
    if "dense" in used and cfg.ffn is not None:
        out.add((cfg.ffn.kind, cfg.ffn.activation.split("_")[0]))
    if "moe" in used and cfg.moe is not None:
        out.add(("glu", cfg.moe.activation.split("_")[0]))
    return out


def _uses_moe(cfg: ModelConfig) -> bool:
    return any(s.ffn == "moe" for s in cfg.layers)


def _kv(cfg: ModelConfig, d: Description, a: Analysis) -> str:
    return d.text("kv")


def _weights(bytes_per_param: float) -> Callable[[ModelConfig, Description, Analysis], str]:
    return lambda cfg, d, a: fmt_bytes(a.total_params * bytes_per_param)


def _devices(cfg: ModelConfig, d: Description, a: Analysis) -> str:
    return str(math.ceil(a.total_params * 2 / DEVICE_BYTES))


ATTN = ("nn/attention.py", "parts/attention.py")
CONCEPTS: tuple[Concept, ...] = (
    Concept("mha", "Multi-head attention (MHA)", "attention",
            lambda c: (h := _kv_heads(c)) is not None and h[0] == h[1],
            "heads; KV cache per token", lambda c, d, a: f"{_heads(c)}; {d.text('kv')}", ATTN, ("kv-cache", "gqa")),
    Concept("mqa", "Multi-query attention (MQA)", "attention",
            lambda c: (h := _kv_heads(c)) is not None and h[1] == 1 < h[0],
            "heads; KV cache per token", lambda c, d, a: f"{_heads(c)}; {d.text('kv')}", ATTN, ("kv-cache", "gqa")),
    Concept("gqa", "Grouped-query attention (GQA)", "attention",
            lambda c: (h := _kv_heads(c)) is not None and 1 < h[1] < h[0],
            "heads; KV cache per token", lambda c, d, a: f"{_heads(c)}; {d.text('kv')}", ATTN, ("kv-cache", "gqa")),
    Concept("mla", "Multi-head latent attention (MLA)", "attention",
            lambda c: isinstance(c.resolved_attention, MLAConfig),
            "attention; KV cache per token", lambda c, d, a: f"{d.text('attention')}; {d.text('kv')}",
            ("nn/mla.py", "parts/mla.py", "cache.py"), ("kv-cache",)),
    Concept("sliding-window", "Sliding-window attention", "attention", lambda c: "sliding" in _kinds(c),
            "layer pattern; KV cache per token", lambda c, d, a: f"{d.text('pattern')}; {d.text('kv')}",
            ATTN + ("nn/context.py", "cache.py"), ("kv-cache",)),
    Concept("chunked", "Chunked attention", "attention", lambda c: "chunked" in _kinds(c),
            "layer pattern; KV cache per token", lambda c, d, a: f"{d.text('pattern')}; {d.text('kv')}",
            ATTN + ("nn/context.py", "cache.py")),
    Concept("linear-deltanet", "Linear attention and Gated DeltaNet", "attention", lambda c: "linear" in _kinds(c),
            "layer pattern; cache", lambda c, d, a: f"{d.text('pattern')}; {d.text('kv')}",
            ("nn/deltanet.py", "parts/deltanet.py", "cache.py")),
    Concept("sinks", "Attention sinks", "attention",
            lambda c: (a := _softmax_attention(c)) is not None and a.sinks,
            "attention", lambda c, d, a: d.text("attention"), ("nn/attention.py",)),
    Concept("learned-positions", "Learned absolute positions", "position", lambda c: c.position == "learned",
            "position; its parameters", lambda c, d, a: f"{d.text('position')}; {fmt_count(c.max_seq_len * c.d_model)}",
            ("model.py",), ("positions",)),
    Concept("rope", "Rotary position embeddings (RoPE)", "position", lambda c: c.position_kind == "rope",
            "position", lambda c, d, a: d.text("position"), ("nn/position.py",), ("positions",)),
    Concept("alibi", "ALiBi", "position", lambda c: c.position == "alibi",
            "position", lambda c, d, a: d.text("position"), ("nn/attention.py",), ("positions",)),
    Concept("nope", "No positional encoding (NoPE)", "position",
            lambda c: c.position == "none" or (c.position_kind == "rope" and any(
                s.rope is None for s in c.layers if s.kind != "linear")),
            "position", lambda c, d, a: d.text("position"), ("model_config.py", "nn/attention.py"), ("positions",)),
    Concept("rope-scaling", "RoPE scaling and YaRN", "position",
            lambda c: c.position_kind == "rope" and any(r is not None and r.scaling is not None for r in (c.rope, c.rope_local)),
            "position; max context", lambda c, d, a: f"{d.text('position')}; {d.text('context')}",
            ("nn/position.py",), ("positions",)),
    Concept("normalization", "Normalisation and its placement", "normalisation", lambda c: True,
            "norm", lambda c, d, a: d.text("norm"), ("nn/norm.py", "nn/block.py"), ("norm-speed", "norm-placement")),
    Concept("gelu-mlp", "GELU MLP", "feed-forward", lambda c: ("mlp", "gelu") in _ffn_kinds(c),
            "feed-forward", lambda c, d, a: d.text("ffn"), ("nn/ffn.py", "parts/dense.py"), ("ffn",)),
    Concept("swiglu", "SwiGLU", "feed-forward", lambda c: ("glu", "silu") in _ffn_kinds(c),
            "feed-forward", lambda c, d, a: d.text("ffn"), ("nn/ffn.py", "parts/dense.py"), ("ffn",)),
    Concept("geglu", "GeGLU", "feed-forward", lambda c: ("glu", "gelu") in _ffn_kinds(c),
            "feed-forward", lambda c, d, a: d.text("ffn"), ("nn/ffn.py", "parts/dense.py"), ("ffn",)),
    Concept("moe-routing", "Mixture of experts: routing", "mixture of experts", _uses_moe,
            "feed-forward; active / total", lambda c, d, a: f"{d.text('ffn')}; {fmt_count(a.active_params)} / {fmt_count(a.total_params)}",
            ("nn/moe.py", "parts/moe.py"), ("moe",)),
    Concept("moe-shared-experts", "Mixture of experts: shared experts", "mixture of experts",
            lambda c: _uses_moe(c) and c.moe.n_shared > 0,
            "feed-forward", lambda c, d, a: d.text("ffn"), ("nn/moe.py", "parts/moe.py"), ("moe",)),
    Concept("moe-balancing", "Mixture of experts: load balancing", "mixture of experts", _uses_moe,
            "router; selection-only bias", lambda c, d, a: f"{c.moe.router.score}, top-{c.moe.top_k}; "
            + ("yes" if c.moe.router.score_bias else "no"),
            ("nn/moe.py", "training/balance.py"), ("balancing",)),
    Concept("kv-cache", "KV caching", "inference", lambda c: True,
            "KV cache per token", _kv, ("cache.py", "generation.py", "analysis.py"), ("kv-cache",)),
    Concept("fused-attention", "Fused attention kernels", "inference",
            lambda c: any(s.kind != "linear" for s in c.layers),
            "attention", lambda c, d, a: d.parts["attention"].short, ("nn/attention.py",), ("attention-kernel",)),
    Concept("precision", "Numeric precision", "training and scale", lambda c: True,
            tuple(f"weights in {n}" for n, _ in PRECISIONS),
            lambda c, d, a: tuple(_weights(b)(c, d, a) for _, b in PRECISIONS),
            ("quant/packed.py", "training/loop.py", "analysis.py"), ("precision",)),
    Concept("parallelism", "Parallelism", "training and scale", lambda c: True,
            f"{DEVICE_NAME} devices the bfloat16 weights fill", _devices,
            ("training/distributed.py", "nn/moe.py"), ("scale-vs-architecture",)),
)

BY_SLUG = {c.slug: c for c in CONCEPTS}
