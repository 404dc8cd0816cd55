"""ModelConfig: every knob of a decoder-only transformer, in one validated, frozen value.

The tree of sub-configs mirrors the module tree: `norm` builds the norms, `attention`
(an `AttentionConfig` or an `MLAConfig`) builds each attention mixer, `ffn` the dense
feed-forward, `moe` the mixture of experts. Optional parts are optional sub-configs
(`qk_norm: NormConfig | None`, `moe: MoEConfig | None`), not boolean flags.

Per-layer differences (sliding vs global attention, NoPE layers, dense-then-MoE) are
lists resolved once into `ModelConfig.layers`, a tuple of `LayerSpec`; modules read
their spec and never compute `layer_id % k` themselves.

Fields that can be derived (`n_kv_heads`, `head_dim`, the per-layer lists) are derived
only when left unset; a given value that contradicts the others is an error naming
the field, never silently overwritten.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Union

__all__ = [
    "ConfigError",
    "NormConfig",
    "RopeScaling",
    "RopeConfig",
    "AttentionConfig",
    "MLAConfig",
    "AttnTemperature",
    "LengthTemperature",
    "DeltaNetConfig",
    "FFNConfig",
    "RouterConfig",
    "MoEConfig",
    "LayerSpec",
    "ModelConfig",
]


class ConfigError(ValueError):
    """A model configuration that cannot be built. The message names the field."""


def _require(ok: bool, where: str, msg: str) -> None:
    if not ok:
        raise ConfigError(f"{where}: {msg}")


NORM_KINDS = ("layernorm", "rmsnorm", "l2norm")
POSITION_KINDS = ("learned", "rope", "alibi", "none")
ROPE_SCALINGS = ("linear", "llama3", "yarn")
ACTIVATIONS = ("gelu", "gelu_tanh", "silu", "relu")
FFN_KINDS = ("mlp", "glu")
ROUTER_SCORES = ("softmax", "sigmoid")
GROUP_SCORES = ("max", "top2_sum")
ROUTER_WEIGHTS_ON = ("output", "input")
QK_NORM_SCOPES = ("head", "all")
# Residual layouts, one Block class each (nn/block.py):
#   pre       x + f(norm(x))                    GPT-2, LLaMA, Qwen, DeepSeek
#   post      norm(x + f(x))                    GPT-1, the original Transformer
#   sandwich  x + norm(f(norm(x)))              Gemma 2/3, Grok
#   output    x + norm(f(x))                    OLMo 2
#   parallel  x + attn(norm(x)) + ffn(norm'(x)) GPT-J, GPT-NeoX, PaLM
BLOCK_KINDS = ("pre", "post", "sandwich", "output", "parallel")
# Per-layer mixer kinds. A "global" layer attends to every earlier token, "sliding" to the
# last attention.window, "chunked" to the earlier tokens of its attention.chunk-sized block;
# "linear" is a linear-attention layer (ModelConfig.linear_attention). Which attention module
# the softmax kinds get is the type of ModelConfig.attention (AttentionConfig or MLAConfig).
LAYER_TYPES = ("global", "sliding", "chunked", "linear")
FFN_TYPES = ("dense", "moe")


@dataclass(frozen=True)
class NormConfig:
    """A normalisation layer.

    layernorm: (x - mean) / std * w (+ b when bias).  rmsnorm: x / rms(x) * w; with
    unit_offset the scale is (1 + w) with w starting at 0 (Gemma; Qwen3-Next's "zero-centred"
    RMSNorm).  l2norm: x / rms(x) with no learned scale (Llama 4's QK-norm)."""

    kind: str = "rmsnorm"
    eps: float = 1e-6
    bias: bool = False
    unit_offset: bool = False

    def __post_init__(self) -> None:
        _require(self.kind in NORM_KINDS, "norm.kind", f"expected one of {NORM_KINDS}, got {self.kind!r}")
        _require(self.eps > 0, "norm.eps", f"must be > 0, got {self.eps}")
        _require(not (self.bias and self.kind != "layernorm"), "norm.bias", "only LayerNorm has a bias")
        _require(not (self.unit_offset and self.kind != "rmsnorm"), "norm.unit_offset", "only RMSNorm takes a (1 + w) scale")


@dataclass(frozen=True)
class RopeScaling:
    """Context-extension rescaling of RoPE frequencies.

    linear: all frequencies / factor.  llama3: Llama 3.1's wavelength-banded scaling
    (low/high_freq_factor).  yarn: NTK-by-parts ramp between beta_fast and beta_slow,
    with an attention temperature (mscale) on cos/sin and, for DeepSeek, on the
    softmax scale (mscale_all_dim).
    """

    kind: str
    factor: float
    original_max_seq_len: int
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    mscale: float | None = None
    mscale_all_dim: float | None = None
    attention_factor: float | None = None
    truncate: bool = True

    def __post_init__(self) -> None:
        _require(self.kind in ROPE_SCALINGS, "rope.scaling.kind", f"expected one of {ROPE_SCALINGS}, got {self.kind!r}")
        _require(self.factor > 0, "rope.scaling.factor", f"must be > 0, got {self.factor}")
        _require(self.original_max_seq_len > 0, "rope.scaling.original_max_seq_len", "must be > 0")
        if self.kind == "llama3":
            _require(
                self.high_freq_factor >= self.low_freq_factor,
                "rope.scaling.high_freq_factor",
                f"must be at least low_freq_factor ({self.low_freq_factor}), got {self.high_freq_factor}",
            )

    @staticmethod
    def _yarn_mscale(factor: float, mscale: float = 1.0) -> float:
        return 1.0 if factor <= 1 else 0.1 * mscale * math.log(factor) + 1.0

    def cos_sin_factor(self) -> float:
        """The multiplier YaRN puts on cos/sin (1.0 for the other kinds)."""
        if self.kind != "yarn":
            return 1.0
        if self.attention_factor is not None:
            return self.attention_factor
        if self.mscale and self.mscale_all_dim:
            return self._yarn_mscale(self.factor, self.mscale) / self._yarn_mscale(self.factor, self.mscale_all_dim)
        return self._yarn_mscale(self.factor)

    def softmax_factor(self) -> float:
        """DeepSeek's YaRN multiplies the softmax scale by mscale(factor, mscale_all_dim)^2."""
        if self.kind != "yarn" or not self.mscale_all_dim:
            return 1.0
        return self._yarn_mscale(self.factor, self.mscale_all_dim) ** 2


@dataclass(frozen=True)
class RopeConfig:
    """Rotary position embedding. `partial` < 1 rotates only the first fraction of each head."""

    theta: float = 10000.0
    partial: float = 1.0
    scaling: RopeScaling | None = None

    def __post_init__(self) -> None:
        _require(self.theta > 0, "rope.theta", f"must be > 0, got {self.theta}")
        _require(0 < self.partial <= 1, "rope.partial", f"must be in (0, 1], got {self.partial}")

    def rotary_dim(self, head_dim: int) -> int:
        return int(head_dim * self.partial)


@dataclass(frozen=True)
class AttnTemperature:
    """Llama 4's attention temperature tuning for its NoPE layers: queries at position p are
    scaled by 1 + scale * log(1 + floor((p + 1) / floor_scale)), so attention stays sharp
    over very long contexts without positional signal."""

    floor_scale: float = 8192.0
    scale: float = 0.1


@dataclass(frozen=True)
class LengthTemperature:
    """Grok's attention temperature: in every layer, the logits of a query at 0-based position
    p > length are multiplied by log2(p) / log2(length), after the logit softcap (SGLang's
    xai_temperature_len)."""

    length: int = 1024

    def __post_init__(self) -> None:
        _require(self.length > 1, "attention.temperature.length", f"must be > 1, got {self.length}")


@dataclass(frozen=True)
class AttentionConfig:
    """Softmax attention over n_kv_heads key/value groups: MHA when n_kv_heads == n_heads,
    GQA in between, MQA when 1. Unset n_kv_heads means MHA; unset head_dim means d_model // n_heads."""

    n_heads: int
    n_kv_heads: int | None = None
    head_dim: int | None = None
    qkv_bias: bool = False
    out_bias: bool = False
    # Softmax scale; None means 1/sqrt(head_dim) (Gemma: query_pre_attn_scalar ** -0.5).
    scale: float | None = None
    # Tokens a "sliding" layer sees, itself included (Mistral, Gemma, GPT-OSS).
    window: int | None = None
    # Block size of "chunked" layers: a token sees the earlier tokens of its own block (Llama 4).
    chunk: int | None = None
    # Normalise queries and keys before RoPE: per head (Qwen3, Gemma 3, GLM-4.5, Llama 4's l2norm)
    # or across all heads' projection at once (OLMo 2).
    qk_norm: NormConfig | None = None
    qk_norm_scope: str = "head"
    # Llama 4 normalises queries and keys only in its RoPE layers; its NoPE layers skip it.
    qk_norm_in_nope_layers: bool = True
    # A learned logit per head that joins every softmax as an extra key with no value (GPT-OSS).
    sinks: bool = False
    # Attention logits squashed to softcap * tanh(logits / softcap) (Gemma 2, Grok).
    softcap: float | None = None
    # Output multiplied by sigmoid of a second query projection (Qwen3-Next's gated attention).
    output_gate: bool = False
    temperature: AttnTemperature | LengthTemperature | None = None

    @property
    def kind(self) -> str:
        return "attention"


@dataclass(frozen=True)
class MLAConfig:
    """DeepSeek's multi-head latent attention. Keys and values are rebuilt from a
    kv_lora_rank latent; the RoPE part of the key (qk_rope_head_dim) is computed
    separately and shared by all heads. q_lora_rank None means an uncompressed query."""

    n_heads: int
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int
    q_lora_rank: int | None = None
    # DeepSeek's `attention_bias`: biases on the down projections and the output.
    bias: bool = False

    @property
    def kind(self) -> str:
        return "mla"

    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim


@dataclass(frozen=True)
class DeltaNetConfig:
    """Gated DeltaNet linear attention (Qwen3-Next's "linear_attention" layers): a causal
    depthwise convolution over [q | k | v], then a fixed-size per-head state S (k_head_dim x
    v_head_dim) updated by the gated delta rule S <- a S + b k (v - S^T k)^T, read out by q,
    normalised and gated. n_v_heads is a multiple of n_k_heads (grouped like GQA)."""

    n_k_heads: int
    n_v_heads: int
    k_head_dim: int
    v_head_dim: int
    conv_kernel: int = 4

    def __post_init__(self) -> None:
        for k in ("n_k_heads", "n_v_heads", "k_head_dim", "v_head_dim", "conv_kernel"):
            v = getattr(self, k)
            _require(isinstance(v, int) and v > 0, f"linear_attention.{k}", f"must be a positive integer, got {v!r}")
        _require(
            self.n_v_heads % self.n_k_heads == 0,
            "linear_attention.n_v_heads",
            f"must be a multiple of n_k_heads ({self.n_k_heads}), got {self.n_v_heads}",
        )

    @property
    def conv_channels(self) -> int:
        return 2 * self.n_k_heads * self.k_head_dim + self.n_v_heads * self.v_head_dim


@dataclass(frozen=True)
class FFNConfig:
    """Dense feed-forward. mlp: down(act(up(x))).  glu: down(act(gate(x)) * up(x)),
    which is SwiGLU with silu and GeGLU with gelu."""

    hidden: int
    kind: str = "glu"
    activation: str = "silu"
    bias: bool = False

    def __post_init__(self) -> None:
        _require(self.hidden > 0, "ffn.hidden", f"must be > 0, got {self.hidden}")
        _require(self.kind in FFN_KINDS, "ffn.kind", f"expected one of {FFN_KINDS}, got {self.kind!r}")
        _require(self.activation in ACTIVATIONS, "ffn.activation", f"expected one of {ACTIVATIONS}, got {self.activation!r}")


@dataclass(frozen=True)
class RouterConfig:
    """How a token picks its experts.

    score: softmax over all experts (Mixtral, DeepSeek-V2) or independent sigmoids (DeepSeek-V3).
    score_bias: a learned per-expert bias that only affects which experts are selected,
        not their weights (DeepSeek-V3's e_score_correction_bias, for aux-loss-free balancing).
    n_groups / topk_groups: group-limited routing; experts are split into n_groups, the
        best topk_groups groups (by group_score) survive, top_k is taken among them.
    norm_topk: renormalise the selected weights to sum to 1.  scale: then multiply them.
    logit_bias: a learned bias in the router's linear layer itself (GPT-OSS).
    logit_softcap: router logits squashed to cap * tanh(logits / cap) before scoring (Grok).
    weights_on: "output" weighs each expert's output (most models); "input" scales the token
        before it enters the expert (Llama 4).
    """

    score: str = "softmax"
    norm_topk: bool = False
    scale: float = 1.0
    n_groups: int = 1
    topk_groups: int = 1
    group_score: str = "max"
    score_bias: bool = False
    logit_bias: bool = False
    logit_softcap: float | None = None
    weights_on: str = "output"

    def __post_init__(self) -> None:
        _require(self.score in ROUTER_SCORES, "moe.router.score", f"expected one of {ROUTER_SCORES}, got {self.score!r}")
        _require(self.weights_on in ROUTER_WEIGHTS_ON, "moe.router.weights_on", f"expected one of {ROUTER_WEIGHTS_ON}, got {self.weights_on!r}")
        _require(self.group_score in GROUP_SCORES, "moe.router.group_score", f"expected one of {GROUP_SCORES}, got {self.group_score!r}")
        _require(self.n_groups >= 1, "moe.router.n_groups", f"must be >= 1, got {self.n_groups}")
        _require(
            1 <= self.topk_groups <= self.n_groups,
            "moe.router.topk_groups",
            f"must be between 1 and n_groups ({self.n_groups}), got {self.topk_groups}",
        )


@dataclass(frozen=True)
class MoEConfig:
    """Routed experts (each a GLU of `hidden`) plus optional always-on shared experts.
    The shared part is one GLU of n_shared * hidden (how DeepSeek stores it).

    bias: biases in every expert's projections (GPT-OSS).  swiglu_limit: GPT-OSS's clamped
    SwiGLU, (up + 1) * gate * sigmoid(1.702 gate) with gate <= limit and |up| <= limit.
    shared_gate: the shared expert's output is scaled by sigmoid(w . x) (Qwen3-Next).
    output_scale: the whole layer's output (routed + shared) is multiplied by this (Grok's
    "residual MoE" averages a dense GeGLU, its shared part, with the experts: 1/sqrt(2))."""

    n_experts: int
    top_k: int
    hidden: int
    n_shared: int = 0
    activation: str = "silu"
    router: RouterConfig = field(default_factory=RouterConfig)
    bias: bool = False
    swiglu_limit: float | None = None
    shared_gate: bool = False
    output_scale: float = 1.0

    def __post_init__(self) -> None:
        _require(self.n_experts >= 1, "moe.n_experts", f"must be >= 1, got {self.n_experts}")
        _require(
            1 <= self.top_k <= self.n_experts,
            "moe.top_k",
            f"must be between 1 and n_experts ({self.n_experts}), got {self.top_k}",
        )
        _require(self.hidden > 0, "moe.hidden", f"must be > 0, got {self.hidden}")
        _require(self.n_shared >= 0, "moe.n_shared", f"must be >= 0, got {self.n_shared}")
        _require(self.activation in ACTIVATIONS, "moe.activation", f"expected one of {ACTIVATIONS}, got {self.activation!r}")
        r = self.router
        _require(
            self.n_experts % r.n_groups == 0,
            "moe.router.n_groups",
            f"must divide n_experts ({self.n_experts}), got {r.n_groups}",
        )
        per_group = self.n_experts // r.n_groups
        _require(
            self.top_k <= r.topk_groups * per_group,
            "moe.top_k",
            f"{self.top_k} experts cannot be chosen from topk_groups ({r.topk_groups}) groups of {per_group}",
        )
        if r.group_score == "top2_sum" and r.n_groups > 1:
            _require(per_group >= 2, "moe.router.group_score", "top2_sum needs at least 2 experts per group")
        _require(not (self.shared_gate and not self.n_shared), "moe.shared_gate", "gates a shared expert, but n_shared is 0")
        if self.swiglu_limit is not None:
            _require(self.swiglu_limit > 0, "moe.swiglu_limit", f"must be > 0, got {self.swiglu_limit}")


@dataclass(frozen=True)
class LayerSpec:
    """What one layer is, resolved from the config's per-layer lists."""

    index: int
    mixer: str  # "attention" | "mla" | "deltanet"
    window: int | None  # keys visible to a query (itself included); None = all previous
    chunk: int | None  # attend only within blocks of this many tokens; None = no blocks
    rope: RopeConfig | None  # None: no positional rotation in this layer (NoPE)
    ffn: str  # "dense" | "moe"


Attention = Union[AttentionConfig, MLAConfig]


@dataclass(frozen=True)
class ModelConfig:
    """A decoder-only transformer: embed -> [Block(norms, mixer, ffn)] x n_layers -> norm -> head."""

    name: str
    vocab_size: int
    d_model: int
    n_layers: int
    max_seq_len: int
    attention: Attention
    ffn: FFNConfig
    norm: NormConfig = field(default_factory=NormConfig)
    position: str = "rope"
    rope: RopeConfig | None = field(default_factory=RopeConfig)
    # RoPE of the "sliding" layers when it differs from the global layers' (Gemma 3: 10K vs 1M).
    rope_local: RopeConfig | None = None
    moe: MoEConfig | None = None
    linear_attention: DeltaNetConfig | None = None
    block: str = "pre"
    tie_embeddings: bool = False
    # Embeddings multiplied by this (Gemma: sqrt(d_model)); logits by logit_scale, then
    # squashed to logit_softcap * tanh(logits / logit_softcap) (Gemma 2, Grok).
    embed_scale: float | None = None
    logit_scale: float | None = None
    logit_softcap: float | None = None
    # A norm (of kind `norm`) right after the token embedding (BLOOM).
    embed_norm: bool = False
    # Per-layer plan; None derives it: all "global"; all "dense", or all "moe" when moe is set;
    # RoPE in every layer (False marks a NoPE layer: SmolLM3, Llama 4).
    layer_types: tuple[str, ...] | None = None
    ffn_types: tuple[str, ...] | None = None
    rope_layers: tuple[bool, ...] | None = None
    # Free text: the family a preset belongs to and where its numbers come from.
    family: str = ""
    source: str = ""

    # ---- derivation and validation -------------------------------------------------
    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        for k in ("vocab_size", "d_model", "n_layers", "max_seq_len"):
            v = getattr(self, k)
            _require(isinstance(v, int) and not isinstance(v, bool) and v > 0, k, f"must be a positive integer, got {v!r}")
        _require(self.position in POSITION_KINDS, "position", f"expected one of {POSITION_KINDS}, got {self.position!r}")
        _require(self.block in BLOCK_KINDS, "block", f"expected one of {BLOCK_KINDS}, got {self.block!r}")
        if self.position == "rope":
            _require(self.rope is not None, "rope", "position='rope' needs a RopeConfig")
        else:
            _require(self.rope is None, "rope", f"position={self.position!r} takes no RopeConfig; set rope=None")
            _require(self.rope_local is None, "rope_local", f"position={self.position!r} takes no RopeConfig; set rope_local=None")
        for k in ("embed_scale", "logit_scale", "logit_softcap"):
            v = getattr(self, k)
            _require(v is None or v > 0, k, f"must be None or > 0, got {v!r}")
        set_("attention", self._resolve_attention(self.attention))

        n = self.n_layers
        set_("layer_types", ("global",) * n if self.layer_types is None else tuple(self.layer_types))
        default_ffn = "moe" if self.moe is not None else "dense"
        set_("ffn_types", (default_ffn,) * n if self.ffn_types is None else tuple(self.ffn_types))
        set_("rope_layers", (self.position == "rope",) * n if self.rope_layers is None else tuple(bool(r) for r in self.rope_layers))
        for name, allowed in (("layer_types", LAYER_TYPES), ("ffn_types", FFN_TYPES)):
            seq = getattr(self, name)
            _require(len(seq) == n, name, f"needs one entry per layer (n_layers={n}), got {len(seq)}")
            bad = sorted({t for t in seq if t not in allowed})
            _require(not bad, name, f"unknown kinds {bad}; expected some of {allowed}")
        _require(len(self.rope_layers) == n, "rope_layers", f"needs one entry per layer (n_layers={n}), got {len(self.rope_layers)}")
        if self.position != "rope":
            _require(not any(self.rope_layers), "rope_layers", f"position={self.position!r}: no layer can use RoPE")
        if "moe" in self.ffn_types:
            _require(self.moe is not None, "moe", "ffn_types has 'moe' layers but no MoEConfig is set")
        a = self.attention
        if isinstance(a, MLAConfig):
            bad = sorted(set(self.layer_types) - {"global", "linear"})
            _require(not bad, "layer_types", f"MLA layers attend globally; {bad} layers need an AttentionConfig")
        if "sliding" in self.layer_types:
            _require(getattr(a, "window", None), "attention.window", "layer_types has 'sliding' layers but no window size is set")
        if "chunked" in self.layer_types:
            _require(getattr(a, "chunk", None), "attention.chunk", "layer_types has 'chunked' layers but no chunk size is set")
        if "linear" in self.layer_types:
            _require(self.linear_attention is not None, "linear_attention", "layer_types has 'linear' layers but no DeltaNetConfig is set")
        if self.rope_local is not None:
            _require("sliding" in self.layer_types, "rope_local", "is the RoPE of 'sliding' layers, but there are none")

    def _resolve_attention(self, a: Attention) -> Attention:
        if isinstance(a, MLAConfig):
            for k in ("n_heads", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
                v = getattr(a, k)
                _require(isinstance(v, int) and v > 0, f"attention.{k}", f"must be a positive integer, got {v!r}")
            _require(a.q_lora_rank is None or a.q_lora_rank > 0, "attention.q_lora_rank", "must be None or > 0")
            _require(a.qk_rope_head_dim % 2 == 0, "attention.qk_rope_head_dim", f"must be even for RoPE, got {a.qk_rope_head_dim}")
            _require(self.position == "rope", "position", "MLA carries its position in the decoupled RoPE key; use position='rope'")
            return a
        _require(isinstance(a, AttentionConfig), "attention", f"expected AttentionConfig or MLAConfig, got {type(a).__name__}")
        _require(isinstance(a.n_heads, int) and a.n_heads > 0, "attention.n_heads", f"must be a positive integer, got {a.n_heads!r}")
        kv = a.n_kv_heads if a.n_kv_heads is not None else a.n_heads
        _require(isinstance(kv, int) and kv > 0, "attention.n_kv_heads", f"must be a positive integer, got {kv!r}")
        _require(
            a.n_heads % kv == 0,
            "attention.n_kv_heads",
            f"must divide n_heads ({a.n_heads}) so each key/value head serves a whole group; got {kv}",
        )
        hd = a.head_dim
        if hd is None:
            _require(
                self.d_model % a.n_heads == 0,
                "attention.head_dim",
                f"unset, and d_model ({self.d_model}) is not divisible by n_heads ({a.n_heads}); set head_dim explicitly",
            )
            hd = self.d_model // a.n_heads
        _require(isinstance(hd, int) and hd > 0, "attention.head_dim", f"must be a positive integer, got {hd!r}")
        for rope, where in ((self.rope, "rope"), (self.rope_local, "rope_local")):
            if rope is not None:
                rd = rope.rotary_dim(hd)
                _require(
                    rd > 0 and rd % 2 == 0,
                    f"{where}.partial",
                    f"rotates {rd} of head_dim {hd} dimensions; RoPE needs an even, positive number",
                )
        for k in ("window", "chunk", "softcap", "scale"):
            v = getattr(a, k)
            _require(v is None or v > 0, f"attention.{k}", f"must be None or > 0, got {v!r}")
        _require(a.qk_norm_scope in QK_NORM_SCOPES, "attention.qk_norm_scope", f"expected one of {QK_NORM_SCOPES}, got {a.qk_norm_scope!r}")
        return replace(a, n_kv_heads=kv, head_dim=hd)

    # ---- the resolved per-layer plan ------------------------------------------------
    @property
    def layers(self) -> tuple[LayerSpec, ...]:
        a = self.attention
        specs = []
        for i, (t, f, use_rope) in enumerate(zip(self.layer_types, self.ffn_types, self.rope_layers)):
            if t == "linear":
                specs.append(LayerSpec(i, "deltanet", None, None, None, f))
                continue
            rope = (self.rope_local if t == "sliding" and self.rope_local is not None else self.rope) if use_rope else None
            specs.append(LayerSpec(
                index=i,
                mixer=a.kind,
                window=a.window if t == "sliding" else None,
                chunk=a.chunk if t == "chunked" else None,
                rope=rope,
                ffn=f,
            ))
        return tuple(specs)

    # ---- serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        return _from_dict(cls, d)

    def replace(self, **changes: Any) -> "ModelConfig":
        return replace(self, **changes)


# Sub-configs are told apart in dicts by a "type" tag, so a saved config reads back exactly.
_TAGGED = {
    c.__name__: c
    for c in (NormConfig, RopeScaling, RopeConfig, AttnTemperature, LengthTemperature, AttentionConfig, MLAConfig, DeltaNetConfig, FFNConfig, RouterConfig, MoEConfig)
}


def _to_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        out = {f.name: _to_dict(getattr(obj, f.name)) for f in fields(obj)}
        if type(obj).__name__ in _TAGGED:
            out["type"] = type(obj).__name__
        return out
    if isinstance(obj, tuple):
        return list(obj)
    return obj


def _from_dict(cls: type, d: dict[str, Any]) -> Any:
    if not isinstance(d, dict):
        raise ConfigError(f"{cls.__name__}: expected a mapping, got {type(d).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known - {"type"})
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown fields {unknown}")
    kw = {}
    for k, v in d.items():
        if k == "type":
            continue
        if isinstance(v, dict) and "type" in v:
            sub = _TAGGED.get(v["type"])
            if sub is None:
                raise ConfigError(f"{cls.__name__}.{k}: unknown config type {v['type']!r}")
            v = _from_dict(sub, v)
        elif isinstance(v, list):
            v = tuple(v)
        kw[k] = v
    try:
        return cls(**kw)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"{cls.__name__}: {e}") from None
