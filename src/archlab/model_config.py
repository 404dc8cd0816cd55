"""ModelConfig: every knob of a decoder-only transformer, in one validated, frozen value.

The tree of sub-configs mirrors the module tree: `norm` builds the norms, `attention`
(an `AttentionConfig` or an `MLAConfig`) builds each attention mixer, `ffn` the dense
feed-forward, `moe` the mixture of experts. Optional parts are optional sub-configs
(`qk_norm: NormConfig | None`, `moe: MoEConfig | None`), not boolean flags.

A config holds what the user (or the authors) gave, and nothing else. What follows from it
is computed on demand, never written back, so `replace()` re-derives it:
- `head_dim` unset is d_model // n_heads, `n_kv_heads` unset is n_heads (`resolved_attention`);
- an FFN given as a multiple of the width (GPT-2's 4x) is as wide as the width says (`resolved_ffn`);
- per-layer kinds are stated as the authors state them, as a `Pattern` (5 sliding : 1 global,
  NoPE every 4th layer, the first 3 layers dense), and resolved for the depth at hand into
  `ModelConfig.layers`, a tuple of `LayerSpec`; modules read their spec and never compute
  `layer_id % k` themselves.

A knob that contradicts another, or that nothing would read (a window with no sliding layer,
an activation that the clamped SwiGLU replaces), is an error naming the field.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
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
    "Pattern",
    "LayerSpec",
    "ModelConfig",
    "SQRT_D_MODEL",
    "INV_SQRT_D_MODEL",
]


class ConfigError(ValueError):
    """A model configuration that cannot be built. The message names the field."""


def _require(ok: bool, where: str, msg: str) -> None:
    if not ok:
        raise ConfigError(f"{where}: {msg}")


NORM_KINDS = ("layernorm", "rmsnorm", "l2norm")
POSITION_KINDS = ("learned", "rope", "alibi", "none")
# Scalings whose frequencies are fixed, and those whose frequencies follow the length of the
# sequence in each forward pass (HF modeling_rope_utils.py's dynamic_rope_update).
FIXED_ROPE_SCALINGS = ("linear", "llama3", "yarn")
ROPE_SCALINGS = FIXED_ROPE_SCALINGS + ("dynamic", "longrope")
# quick_gelu: x * sigmoid(1.702 x) (HF activations.py QuickGELUActivation; CLIP, some GPT-2 configs)
# tanh: HF's ACT2FN "tanh" (nn.Tanh), which GPT-2's activation_function accepts
ACTIVATIONS = ("gelu", "gelu_tanh", "silu", "relu", "quick_gelu", "tanh")
FFN_KINDS = ("mlp", "glu")
ROUTER_SCORES = ("softmax", "sigmoid")
GROUP_SCORES = ("max", "top2_sum")
GROUP_DROPS = ("excluded", "zeroed")
ROUTER_WEIGHTS_ON = ("output", "input")
QK_NORM_SCOPES = ("head", "all")
# Residual layouts, one Block class each (nn/block.py):
#   pre       x + f(norm(x))                    GPT-2, LLaMA, Qwen, DeepSeek
#   post      norm(x + f(x))                    GPT-1, the original Transformer
#   sandwich  x + norm(f(norm(x)))              Gemma 2/3, Grok
#   output    x + norm(f(x))                    OLMo 2
#   parallel  x + attn(norm(x)) + ffn(norm'(x)) GPT-J, GPT-NeoX, PaLM
#   normed_residual  norm(x) + f(norm(x))       BLOOM's apply_residual_connection_post_layernorm
BLOCK_KINDS = ("pre", "post", "sandwich", "output", "parallel", "normed_residual")
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

    Two kinds depend on the length L = (largest position in the forward pass) + 1, as HF's
    dynamic_rope_update recomputes them in every forward (modeling_rope_utils.py); in cached
    decoding each step's queries and keys rotate with that step's frequencies, and the cached
    keys keep theirs, as in HF's generate:
    dynamic: NTK-aware theta growth once L passes original_max_seq_len (HF's
        max_position_embeddings): theta * (factor L / original - (factor - 1)) ** (d / (d - 2)).
    longrope: Phi-3's per-frequency divisors, short_factor while L <= original_max_seq_len and
        long_factor beyond, and cos/sin times attention_factor (default sqrt(1 + ln(factor) /
        ln(original_max_seq_len))) at every length.
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
    short_factor: tuple[float, ...] | None = None
    long_factor: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        _require(self.kind in ROPE_SCALINGS, "rope.scaling.kind", f"expected one of {ROPE_SCALINGS}, got {self.kind!r}")
        _require(self.factor > 0, "rope.scaling.factor", f"must be > 0, got {self.factor}")
        bounded(self.original_max_seq_len, "rope.scaling.original_max_seq_len", "positions")
        for k in ("short_factor", "long_factor"):
            v = getattr(self, k)
            if isinstance(v, list):
                object.__setattr__(self, k, tuple(v))  # the same value, made hashable
                v = getattr(self, k)
            if self.kind == "longrope":
                _require(
                    isinstance(v, tuple) and len(v) > 0 and all(isinstance(x, (int, float)) and x > 0 for x in v),
                    f"rope.scaling.{k}",
                    f"longrope needs a list of positive numbers, one per rotated frequency; got {v!r}",
                )
            else:
                _require(v is None, f"rope.scaling.{k}", f"only longrope reads it; kind is {self.kind!r}")
        if self.kind == "longrope":
            _require(
                len(self.short_factor) == len(self.long_factor),
                "rope.scaling.long_factor",
                f"has {len(self.long_factor)} entries, short_factor {len(self.short_factor)}; one per rotated frequency each",
            )
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
        """The multiplier YaRN and LongRoPE put on cos/sin (1.0 for the other kinds)."""
        if self.kind == "longrope":
            # HF _compute_longrope_parameters: the paper's default unless config.json gives one
            if self.attention_factor is not None:
                return self.attention_factor
            if self.factor <= 1.0:
                return 1.0
            return math.sqrt(1 + math.log(self.factor) / math.log(self.original_max_seq_len))
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
    # Layer i's softmax scale further divided by i + 1 (GPT-2's scale_attn_by_inverse_layer_idx,
    # modeling_gpt2.py: `self.scaling /= float(self.layer_idx + 1)`).
    scale_by_inverse_layer: bool = False
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
    # Normalise (per head) after the rotation instead of before (Llama 4: modeling_llama4.py's
    # Llama4TextAttention applies qk_norm after apply_rotary_emb). A rotation keeps the norm, so
    # the order matters only where RoPE scales cos/sin (YaRN's attention factor): normalising
    # afterwards cancels that factor.
    qk_norm_after_rope: bool = False
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
    # Epsilon of the RMSNorms on the query and key/value latents (q_a_layernorm, kv_a_layernorm).
    # Both references build them with RMSNorm's default 1e-6 whatever rms_norm_eps says
    # (HF modeling_deepseek_v2/v3.py: DeepseekV3RMSNorm(config.kv_lora_rank); DeepSeek-V3's
    # inference/model.py: RMSNorm(self.kv_lora_rank)); the block norms take `norm.eps`.
    latent_norm_eps: float = 1e-6

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
    normalised and gated. n_v_heads is a multiple of n_k_heads (grouped like GQA).
    conv_activation: applied after the convolution (Qwen3-Next's published config: silu; HF's
    Qwen3NextGatedDeltaNet applies its hidden_act there)."""

    n_k_heads: int
    n_v_heads: int
    k_head_dim: int
    v_head_dim: int
    conv_kernel: int = 4
    conv_activation: str = "silu"

    def __post_init__(self) -> None:
        for k in ("n_k_heads", "n_v_heads", "k_head_dim", "v_head_dim", "conv_kernel"):
            bounded(getattr(self, k), f"linear_attention.{k}", "counts" if k.startswith("n_") else "widths")
        _require(self.conv_activation in ACTIVATIONS, "linear_attention.conv_activation",
                 f"expected one of {ACTIVATIONS}, got {self.conv_activation!r}")
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
    which is SwiGLU with silu and GeGLU with gelu.

    Its width is either given (`hidden`, as LLaMA's intermediate_size) or a multiple of the
    model's width (`mult`, as GPT-2's n_inner=None means 4 x n_embd), never both."""

    hidden: int | None = None
    kind: str = "glu"
    activation: str = "silu"
    bias: bool = False
    mult: float | None = None

    def __post_init__(self) -> None:
        _require(
            (self.hidden is None) != (self.mult is None),
            "ffn.hidden",
            f"give the width (hidden) or a multiple of d_model (mult), exactly one; got hidden={shown(self.hidden)}, mult={shown(self.mult)}",
        )
        if self.hidden is not None:
            bounded(self.hidden, "ffn.hidden", "widths")
        else:
            # finite and at most MAX_WIDTH: width() multiplies it by d_model (itself <= MAX_WIDTH)
            _require(isinstance(self.mult, (int, float)) and 0 < self.mult <= MAX_WIDTH, "ffn.mult",
                     f"must be a number in (0, {MAX_WIDTH:,}], got {shown(self.mult)}")
        _require(self.kind in FFN_KINDS, "ffn.kind", f"expected one of {FFN_KINDS}, got {self.kind!r}")
        _require(self.activation in ACTIVATIONS, "ffn.activation", f"expected one of {ACTIVATIONS}, got {self.activation!r}")

    def width(self, d_model: int) -> int:
        """The hidden width at model width d_model."""
        return self.hidden if self.hidden is not None else int(self.mult * d_model)


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
    dropped_groups: what group-limited routing does with the experts of the groups it drops.
        It matters only when top_k exceeds the experts of the kept groups, and then the
        references differ: "excluded" scores them -inf for the choice, so top-k fills up with
        dropped experts in topk's order of ties, weighed by their real scores (DeepSeek-V3's
        inference/model.py Gate; HF deepseek_v3 and glm4_moe); "zeroed" sets their scores to
        0.0, so the ones picked weigh nothing (HF deepseek_v2's group_limited_greedy).
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
    dropped_groups: str = "excluded"

    def __post_init__(self) -> None:
        _require(self.dropped_groups in GROUP_DROPS, "moe.router.dropped_groups", f"expected one of {GROUP_DROPS}, got {self.dropped_groups!r}")
        _require(self.score in ROUTER_SCORES, "moe.router.score", f"expected one of {ROUTER_SCORES}, got {self.score!r}")
        _require(self.weights_on in ROUTER_WEIGHTS_ON, "moe.router.weights_on", f"expected one of {ROUTER_WEIGHTS_ON}, got {self.weights_on!r}")
        _require(self.group_score in GROUP_SCORES, "moe.router.group_score", f"expected one of {GROUP_SCORES}, got {self.group_score!r}")
        bounded(self.n_groups, "moe.router.n_groups", "counts")
        _require(
            1 <= self.topk_groups <= self.n_groups,
            "moe.router.topk_groups",
            f"must be between 1 and n_groups ({self.n_groups}), got {shown(self.topk_groups)}",
        )
        _require(
            self.n_groups > 1 or self.group_score == "max",
            "moe.router.group_score",
            f"{self.group_score!r} scores groups of experts, but n_groups is 1 (no group-limited routing)",
        )


@dataclass(frozen=True)
class MoEConfig:
    """Routed experts (each a GLU of `hidden`) plus optional always-on shared experts.
    The shared part is one GLU of n_shared * hidden (how DeepSeek stores it), or of
    shared_hidden when given (Qwen3-Next's shared_expert_intermediate_size need not be a
    multiple of the routed experts' width); shared_bias: biases on its projections
    (HF deepseek_v2's mlp_bias).

    bias: biases in every expert's projections (GPT-OSS).  swiglu_limit: GPT-OSS's clamped
    SwiGLU, (up + 1) * gate * sigmoid(swiglu_alpha gate) with gate <= limit and |up| <= limit.
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
    swiglu_alpha: float = 1.702  # OpenAI's gpt_oss/torch/model.py swiglu(alpha=1.702); HF's GptOssConfig default
    shared_gate: bool = False
    output_scale: float = 1.0
    shared_hidden: int | None = None
    shared_bias: bool = False

    @property
    def shared_width(self) -> int:
        """The width of the one GLU that holds every shared expert (0: none)."""
        return self.shared_hidden if self.shared_hidden is not None else self.n_shared * self.hidden

    def __post_init__(self) -> None:
        bounded(self.n_experts, "moe.n_experts", "counts")
        bounded(self.hidden, "moe.hidden", "widths")
        bounded(self.n_shared, "moe.n_shared", "counts", zero=True)
        _require(
            1 <= self.top_k <= self.n_experts,
            "moe.top_k",
            f"must be between 1 and n_experts ({self.n_experts}), got {shown(self.top_k)}",
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
        if r.group_score == "top2_sum" and r.n_groups > 1:
            _require(per_group >= 2, "moe.router.group_score", "top2_sum needs at least 2 experts per group")
        _require(not (self.shared_gate and not self.n_shared), "moe.shared_gate", "gates a shared expert, but n_shared is 0")
        _require(not (self.shared_bias and not self.n_shared), "moe.shared_bias", "biases a shared expert, but n_shared is 0")
        if self.shared_hidden is not None:
            bounded(self.shared_hidden, "moe.shared_hidden", "widths")
            _require(self.n_shared == 1, "moe.shared_hidden",
                     f"is the width of one shared expert, but n_shared is {self.n_shared} (use n_shared alone for multiples of hidden)")
        _require(self.swiglu_limit is not None or self.swiglu_alpha == 1.702, "moe.swiglu_alpha",
                 f"{self.swiglu_alpha} would be ignored: only GPT-OSS's clamped SwiGLU (swiglu_limit) reads it")
        if self.swiglu_limit is not None:
            _require(self.swiglu_limit > 0, "moe.swiglu_limit", f"must be > 0, got {self.swiglu_limit}")
            # GPT-OSS's clamped SwiGLU brings its own sigmoid(alpha x) gate: another activation would be ignored
            _require(
                self.activation == "silu",
                "moe.activation",
                f"{self.activation!r} would be ignored: swiglu_limit ({self.swiglu_limit}) selects GPT-OSS's clamped SwiGLU",
            )


def _check_longrope(rope: RopeConfig, rotary_dim: int, where: str) -> None:
    s = rope.scaling
    if s is not None and s.kind == "longrope":
        # one factor per frequency: HF's _compute_longrope_parameters multiplies them into
        # arange(0, rotary_dim, 2), ceil(rotary_dim / 2) of them (an odd width runs in HF too)
        n = (rotary_dim + 1) // 2
        _require(
            len(s.short_factor) == n,
            f"{where}.scaling.short_factor",
            f"has {len(s.short_factor)} entries; RoPE of {rotary_dim} dimensions has {n} frequencies",
        )


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


# Bounds on the sizes a config may state, checked here so that every source (config.json, GGUF,
# our JSON, replace()) meets them before anything is allocated or looped over: a hostile or
# corrupt file's 10**9 layers would otherwise hang or exhaust memory. Each is far above any
# published model, so none is refused:
MAX_LAYERS = 4096  # 32x the deepest, Llama 3.1 405B's num_hidden_layers 126 (meta-llama/Llama-3.1-405B config.json)
MAX_WIDTH = 2**20  # widths and ranks: ~20x the widest, Llama 3.1 405B's intermediate_size 53248 (same file)
MAX_VOCAB = 2**24  # 64x the largest, Gemma 3's 262,208 (google/gemma-3-4b-it config.json)
MAX_COUNT = 2**16  # heads and experts: 128x Qwen3-Next's num_experts 512 (Qwen/Qwen3-Next-80B-A3B-Instruct config.json)
MAX_POSITIONS = 2**28  # positions, windows, chunks: 25x Llama 4 Scout's max_position_embeddings 10,485,760
BOUNDS = {"layers": MAX_LAYERS, "widths": MAX_WIDTH, "vocabulary": MAX_VOCAB, "counts": MAX_COUNT, "positions": MAX_POSITIONS}


def shown(v: Any) -> str:
    """`v` for an error message: an integer too long to print (str() refuses > 4300 digits) by its size."""
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 64:
        return f"an integer of {len(hex(v)) - 2} hex digits (~2**{v.bit_length() - 1})"
    return repr(v)


def bounded(v: Any, where: str, kind: str, *, zero: bool = False) -> None:
    """`v` is a positive integer (or 0 when `zero`) within the bound on `kind` (BOUNDS)."""
    ok = isinstance(v, int) and not isinstance(v, bool) and (v >= 0 if zero else v > 0)
    _require(ok, where, f"must be a {'non-negative' if zero else 'positive'} integer, got {shown(v)}")
    limit = BOUNDS[kind]
    _require(v <= limit, where, f"{shown(v)} exceeds {limit:,}, archlab's bound on {kind}, far above any published "
             "model (archlab.model_config.BOUNDS): the file that states it is corrupt or not a real model")


@dataclass(frozen=True)
class Pattern:
    """A per-layer value stated as a rule, the way the authors state it: layer i < len(first)
    takes first[i]; every later layer takes the next value of `repeat`, cycling. A change of
    depth re-derives the layers from the rule.

        Pattern(("sliding",) * 5 + ("global",))      Gemma 3: 5 sliding : 1 global
        Pattern(("moe",), first=("dense",) * 3)       DeepSeek-V3: the first 3 layers dense
        Pattern((True, True, True, False))            SmolLM3: NoPE every 4th layer
    """

    repeat: tuple
    first: tuple = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "repeat", tuple(self.repeat))
        object.__setattr__(self, "first", tuple(self.first))
        _require(len(self.repeat) > 0, "Pattern.repeat", "needs at least one value to repeat")

    @classmethod
    def every(cls, n: int, value: Any, otherwise: Any) -> "Pattern":
        """`value` at every n-th layer (layers n-1, 2n-1, ...), `otherwise` elsewhere."""
        _require(_is_count(n), "Pattern.every", f"n must be a positive integer, got {n!r}")
        return cls((otherwise,) * (n - 1) + (value,))

    def resolve(self, n_layers: int) -> tuple:
        k = len(self.first)
        return tuple(self.first[i] if i < k else self.repeat[(i - k) % len(self.repeat)] for i in range(n_layers))

    def values(self) -> set:
        """Every value the rule can give some layer, at some depth."""
        return set(self.first) | set(self.repeat)


PerLayer = Union[Pattern, tuple, None]


def _rule_values(rule: PerLayer, default: Any) -> set:
    if rule is None:
        return {default}
    return rule.values() if isinstance(rule, Pattern) else set(rule)


def _resolve_rule(rule: PerLayer, default: Any, n: int, where: str) -> tuple:
    if rule is None:
        return (default,) * n
    if isinstance(rule, Pattern):
        return rule.resolve(n)
    _require(
        len(rule) == n,
        where,
        f"lists {len(rule)} layers but n_layers is {n}; give one entry per layer, or a Pattern "
        "(archlab.Pattern) to derive the layers from a rule at any depth",
    )
    return tuple(rule)


@dataclass(frozen=True)
class LayerSpec:
    """What one layer is, resolved from the config's per-layer rules."""

    index: int
    kind: str  # "global" | "sliding" | "chunked" | "linear"
    mixer: str  # "attention" | "mla" | "deltanet"
    window: int | None  # keys visible to a query (itself included); None = all previous
    chunk: int | None  # attend only within blocks of this many tokens; None = no blocks
    rope: RopeConfig | None  # None: no positional rotation in this layer (NoPE)
    ffn: str  # "dense" | "moe"


Attention = Union[AttentionConfig, MLAConfig]

# Gemma and Grok multiply embeddings by sqrt(d_model): a rule, so it follows a change of width.
SQRT_D_MODEL = "sqrt(d_model)"
# PaLM scales the logits of its shared embedding by 1 / sqrt(d_model): a rule too.
INV_SQRT_D_MODEL = "1/sqrt(d_model)"


@dataclass(frozen=True)
class ModelConfig:
    """A decoder-only transformer: embed -> [Block(norms, mixer, ffn)] x n_layers -> norm -> head."""

    name: str
    vocab_size: int
    d_model: int
    n_layers: int
    max_seq_len: int
    attention: Attention
    # The dense FFN; None when no layer is dense (Mixtral, where every layer is MoE).
    ffn: FFNConfig | None = None
    norm: NormConfig = field(default_factory=NormConfig)
    # Positions: a RopeConfig (rotary), or "learned" (absolute embeddings), "alibi" or "none".
    position: RopeConfig | str = field(default_factory=RopeConfig)
    # RoPE of the "sliding" layers when it differs from the global layers' (Gemma 3: 10K vs 1M).
    rope_local: RopeConfig | None = None
    moe: MoEConfig | None = None
    linear_attention: DeltaNetConfig | None = None
    block: str = "pre"
    tie_embeddings: bool = False
    # Embeddings multiplied by this: a number, or SQRT_D_MODEL (Gemma, Grok). Logits by
    # logit_scale (a number, or INV_SQRT_D_MODEL: PaLM), then squashed to
    # logit_softcap * tanh(logits / logit_softcap) (Gemma 2, Grok).
    embed_scale: float | str | None = None
    logit_scale: float | str | None = None
    logit_softcap: float | None = None
    # A norm (of kind `norm`) right after the token embedding (BLOOM).
    embed_norm: bool = False
    # Per-layer rules: a Pattern, one entry per layer, or None for the default: every layer
    # "global"; every FFN "moe" when moe is set, else "dense"; RoPE in every layer (False marks
    # a NoPE layer: SmolLM3, Llama 4).
    layer_types: PerLayer = None
    ffn_types: PerLayer = None
    rope_layers: PerLayer = None
    # Free text: the family a preset belongs to and where its numbers come from.
    family: str = ""
    source: str = ""

    # ---- validation: nothing is written back --------------------------------------------
    def __post_init__(self) -> None:
        for k, kind in (("vocab_size", "vocabulary"), ("d_model", "widths"), ("n_layers", "layers"), ("max_seq_len", "positions")):
            bounded(getattr(self, k), k, kind)
        p = self.position
        _require(
            isinstance(p, RopeConfig) or p in POSITION_KINDS,
            "position",
            f"expected a RopeConfig or one of {tuple(k for k in POSITION_KINDS if k != 'rope')}, got {p!r}",
        )
        _require(self.block in BLOCK_KINDS, "block", f"expected one of {BLOCK_KINDS}, got {self.block!r}")
        if self.position_kind != "rope":
            _require(self.rope_local is None, "rope_local", f"position={p!r} has no RoPE; set rope_local=None")
        if isinstance(self.embed_scale, str):
            _require(self.embed_scale == SQRT_D_MODEL, "embed_scale", f"expected a number or {SQRT_D_MODEL!r}, got {self.embed_scale!r}")
        if isinstance(self.logit_scale, str):
            _require(self.logit_scale == INV_SQRT_D_MODEL, "logit_scale",
                     f"expected a number or {INV_SQRT_D_MODEL!r}, got {self.logit_scale!r}")
        _require(not isinstance(self.logit_softcap, str), "logit_softcap", f"expected a number, got {self.logit_softcap!r}")
        for k in ("embed_scale", "logit_scale", "logit_softcap"):
            v = getattr(self, k)
            _require(v is None or isinstance(v, str) or v > 0, k, f"must be None or > 0, got {v!r}")
        _require(
            isinstance(self.attention, (AttentionConfig, MLAConfig)),
            "attention",
            f"expected AttentionConfig or MLAConfig, got {type(self.attention).__name__}",
        )
        for name in ("layer_types", "ffn_types", "rope_layers"):
            rule = getattr(self, name)
            _require(
                rule is None or isinstance(rule, (Pattern, tuple, list)),
                name,
                f"expected a Pattern, one entry per layer, or None; got {type(rule).__name__}",
            )
            if isinstance(rule, list):
                object.__setattr__(self, name, tuple(rule))  # the same value, made hashable
        self.resolved_attention  # noqa: B018  (validates the attention against the width)
        if self.ffn is not None and self.ffn.mult is not None:
            bounded(self.ffn.width(self.d_model), "ffn.mult", "widths")  # the width it gives at this d_model
        self._check_layer_rules()
        self.layers  # noqa: B018  (validates the rules against the depth)

    @property
    def position_kind(self) -> str:
        """"rope", "learned", "alibi" or "none"."""
        return "rope" if isinstance(self.position, RopeConfig) else self.position

    @property
    def rope(self) -> RopeConfig | None:
        """The RoPE of the global layers (of every layer but the sliding ones with rope_local)."""
        if isinstance(self.position, RopeConfig):
            return self.position
        return RopeConfig() if self.position == "rope" else None

    @property
    def embed_multiplier(self) -> float | None:
        return math.sqrt(self.d_model) if self.embed_scale == SQRT_D_MODEL else self.embed_scale

    @property
    def logit_multiplier(self) -> float | None:
        return 1 / math.sqrt(self.d_model) if self.logit_scale == INV_SQRT_D_MODEL else self.logit_scale

    def _check_layer_rules(self) -> None:
        """Every kind a rule names has the part it needs, and every part set is used by some
        kind the rules can give (at some depth: a smaller stack may leave a part unused)."""
        kinds = _rule_values(self.layer_types, "global")
        ffns = _rule_values(self.ffn_types, "moe" if self.moe is not None else "dense")
        ropes = {bool(r) for r in _rule_values(self.rope_layers, True)}
        for name, values, allowed in (("layer_types", kinds, LAYER_TYPES), ("ffn_types", ffns, FFN_TYPES)):
            bad = sorted(str(t) for t in values if t not in allowed)
            _require(not bad, name, f"unknown kinds {bad}; expected some of {allowed}")
        a = self.attention
        window, chunk = getattr(a, "window", None), getattr(a, "chunk", None)
        needs = (
            # (field, it is set, the kind that uses it, that kind can occur)
            ("attention.window", window is not None, "'sliding' layers in layer_types", "sliding" in kinds),
            ("attention.chunk", chunk is not None, "'chunked' layers in layer_types", "chunked" in kinds),
            ("linear_attention", self.linear_attention is not None, "'linear' layers in layer_types", "linear" in kinds),
            ("rope_local", self.rope_local is not None, "'sliding' layers in layer_types", "sliding" in kinds),
            ("moe", self.moe is not None, "'moe' layers in ffn_types", "moe" in ffns),
            ("ffn", self.ffn is not None, "'dense' layers in ffn_types", "dense" in ffns),
        )
        for where, is_set, used_by, occurs in needs:
            _require(not is_set or occurs, where, f"is set, but nothing uses it: it needs {used_by}, and there are none")
            # sliding layers without a RoPE of their own rotate with the global one
            _require(is_set or not occurs or where == "rope_local", where, f"is not set, but {used_by} need it")
        if self.position_kind != "rope":
            _require(
                self.rope_layers is None or True not in ropes,
                "rope_layers",
                f"position={self.position!r}: no layer can use RoPE; set rope_layers=None",
            )
        if isinstance(a, MLAConfig):
            bad = sorted(kinds - {"global", "linear"})
            _require(not bad, "layer_types", f"MLA layers attend globally; {bad} layers need an AttentionConfig")
            _require(self.position_kind == "rope", "position", "MLA carries its position in the decoupled RoPE key; give a RopeConfig")
            _require(
                self.rope.partial == 1.0,
                "position.partial",
                f"{self.rope.partial} would be ignored: MLA rotates exactly qk_rope_head_dim ({a.qk_rope_head_dim}) dimensions",
            )
            return
        nope = self.position_kind == "rope" and False in ropes
        if isinstance(a.temperature, AttnTemperature):
            _require(nope, "attention.temperature", "AttnTemperature tunes NoPE layers (Llama 4), and rope_layers has none")
        if a.qk_norm is None:
            _require(a.qk_norm_scope == "head", "attention.qk_norm_scope", "is set, but there is no qk_norm")
            _require(a.qk_norm_in_nope_layers, "attention.qk_norm_in_nope_layers", "is set, but there is no qk_norm")
            _require(not a.qk_norm_after_rope, "attention.qk_norm_after_rope", "is set, but there is no qk_norm")
        else:
            _require(
                not (a.qk_norm_after_rope and a.qk_norm_scope != "head"),
                "attention.qk_norm_after_rope",
                f"normalises each head after its rotation; qk_norm_scope={a.qk_norm_scope!r} normalises before heads are split",
            )

    @cached_property
    def resolved_attention(self) -> Attention:
        """`attention` with what follows from it filled in (n_kv_heads, head_dim)."""
        a = self.attention
        if isinstance(a, MLAConfig):
            for k in ("n_heads", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "q_lora_rank"):
                v = getattr(a, k)
                if v is not None or k != "q_lora_rank":
                    bounded(v, f"attention.{k}", "counts" if k == "n_heads" else "widths")
            _require(a.qk_rope_head_dim % 2 == 0, "attention.qk_rope_head_dim", f"must be even for RoPE, got {a.qk_rope_head_dim}")
            if self.rope is not None:  # NoPE (position="none"), learned or ALiBi positions: the rope dims stay unrotated
                _check_longrope(self.rope, a.qk_rope_head_dim, "position")
            _require(a.latent_norm_eps > 0, "attention.latent_norm_eps", f"must be > 0, got {a.latent_norm_eps}")
            return a
        bounded(a.n_heads, "attention.n_heads", "counts")
        kv = a.n_kv_heads if a.n_kv_heads is not None else a.n_heads
        bounded(kv, "attention.n_kv_heads", "counts")
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
        bounded(hd, "attention.head_dim", "widths")
        for k in ("window", "chunk"):
            if getattr(a, k) is not None:
                bounded(getattr(a, k), f"attention.{k}", "positions")
        for rope, where in ((self.rope, "position"), (self.rope_local, "rope_local")):
            if rope is not None:
                rd = rope.rotary_dim(hd)
                # An odd rd (head_dim 12 x 0.25 = 3) is what HF runs too: its rope init makes
                # ceil(rd / 2) frequencies theta**(-2i / rd), and apply_rotary_pos_emb rotates
                # cos.shape[-1] = rd + 1 dimensions (modeling_qwen3_next.py, _glm4_moe, _gpt_neox);
                # nn/position.py does the same. It needs that one more dimension in the head.
                _require(
                    rd > 0 and rd + rd % 2 <= hd,
                    f"{where}.partial",
                    f"rotates {rd} of head_dim {hd} dimensions; RoPE needs a positive number, and an odd one "
                    "rotates one more (as HF does), which must fit in the head",
                )
                _check_longrope(rope, rd, where)
        for k in ("window", "chunk", "softcap", "scale"):
            v = getattr(a, k)
            _require(v is None or v > 0, f"attention.{k}", f"must be None or > 0, got {v!r}")
        _require(a.qk_norm_scope in QK_NORM_SCOPES, "attention.qk_norm_scope", f"expected one of {QK_NORM_SCOPES}, got {a.qk_norm_scope!r}")
        return replace(a, n_kv_heads=kv, head_dim=hd)

    @cached_property
    def resolved_ffn(self) -> FFNConfig | None:
        """`ffn` with its width at this d_model (GPT-2's 4 x d_model), or None."""
        f = self.ffn
        return None if f is None else replace(f, hidden=f.width(self.d_model), mult=None)

    # ---- the resolved per-layer plan ------------------------------------------------
    @cached_property
    def layers(self) -> tuple[LayerSpec, ...]:
        """Each layer as the rules give it at this depth: its kind, mixer, window or chunk,
        RoPE (None: NoPE) and FFN kind."""
        n = self.n_layers
        types = _resolve_rule(self.layer_types, "global", n, "layer_types")
        ffns = _resolve_rule(self.ffn_types, "moe" if self.moe is not None else "dense", n, "ffn_types")
        ropes = _resolve_rule(self.rope_layers, self.position_kind == "rope", n, "rope_layers")
        a = self.attention
        specs = []
        for i, (t, f, use_rope) in enumerate(zip(types, ffns, ropes)):
            if t == "linear":
                specs.append(LayerSpec(i, t, "deltanet", None, None, None, f))
                continue
            rope = (self.rope_local if t == "sliding" and self.rope_local is not None else self.rope) if use_rope else None
            specs.append(LayerSpec(
                index=i,
                kind=t,
                mixer=a.kind,
                window=a.window if t == "sliding" else None,
                chunk=a.chunk if t == "chunked" else None,
                rope=rope,
                ffn=f,
            ))
        return tuple(specs)

    def resolved(self) -> "ModelConfig":
        """The same model with everything derived written out: resolved attention and FFN
        width, one entry per layer, the embedding multiplier as a number. Two configs describe
        the same model when their resolved() are equal, however each was stated (a Pattern or
        config.json's per-layer list, head_dim given or left to the width)."""
        layers = self.layers
        return self.replace(
            attention=self.resolved_attention,
            ffn=self.resolved_ffn,
            embed_scale=self.embed_multiplier,
            logit_scale=self.logit_multiplier,
            layer_types=tuple(s.kind for s in layers),
            ffn_types=tuple(s.ffn for s in layers),
            rope_layers=tuple(s.rope is not None for s in layers) if self.position_kind == "rope" else None,
        )

    # ---- serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        if isinstance(d, dict) and "rope" in d:
            # configs saved before `position` took the RopeConfig itself: {"position": "rope", "rope": {...}}
            d = dict(d)
            rope = d.pop("rope")
            if rope is not None:
                d["position"] = rope
        return _from_dict(cls, d)

    @classmethod
    def from_json_file(cls, path: "str | Path") -> "ModelConfig":
        """A config saved as JSON (`archlab config NAME > f.json`, edited or not)."""
        import json
        from pathlib import Path

        # the capped reader of model files (a link to /dev/zero or a FIFO must not hang this);
        # imported here, the one place the config layer reads a file
        from .io.files import CONFIG_CAP, read_text
        from .errors import CheckpointError

        p = Path(path)
        try:
            d = json.loads(read_text(p, CONFIG_CAP))
        except CheckpointError as e:
            raise ConfigError(str(e)) from None
        except (OSError, ValueError) as e:  # ValueError: JSONDecodeError, an integer over 4300 digits
            raise ConfigError(f"{path}: not a readable JSON config ({e})") from None
        except RecursionError:
            raise ConfigError(f"{path}: JSON nested too deeply to read") from None
        if isinstance(d, dict):
            d.pop("params", None)  # `archlab config` prints the count beside the fields
        try:
            return cls.from_dict(d)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    def replace(self, **changes: Any) -> "ModelConfig":
        """A new config with `changes`, validated again; everything derived follows.

        A sub-config may be changed in part by a dict: `replace(attention={"n_kv_heads": 2})`.
        `rope=` is accepted for `position=` (rope=None leaves a non-RoPE position as it is)."""
        if "rope" in changes:
            rope = changes.pop("rope")
            if rope is not None:
                _require(changes.setdefault("position", rope) == rope, "rope",
                         f"and position={changes['position']!r} both given; they are one field, position")
            elif "position" not in changes:
                _require(self.position_kind != "rope", "rope", "rope=None: say which position replaces it, e.g. position='learned'")
        for k, v in list(changes.items()):
            if isinstance(v, dict):
                current = getattr(self, k, None)
                _require(dataclasses.is_dataclass(current), k, f"a dict changes a sub-config in part, but {k} is {current!r}")
                try:
                    changes[k] = replace(current, **v)
                except TypeError as e:
                    raise ConfigError(f"{k}: {e}") from None
        try:
            return replace(self, **changes)
        except TypeError as e:  # an unknown field
            raise ConfigError(f"replace: {e}") from None


# Sub-configs are told apart in dicts by a "type" tag, so a saved config reads back exactly.
_TAGGED = {
    c.__name__: c
    for c in (NormConfig, RopeScaling, RopeConfig, AttnTemperature, LengthTemperature, AttentionConfig, MLAConfig, DeltaNetConfig, FFNConfig, RouterConfig, MoEConfig, Pattern)
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


def _require_sub_config(cls: type, key: str, v: Any) -> None:
    """A field that holds a sub-config (moe, norm, attention, ...) given something else: the
    dataclasses do not check their own types, so `"moe": "x"` would be kept as a string and
    fail, or silently do nothing, far from the file that said it."""
    hint = str(next(f.type for f in fields(cls) if f.name == key))
    names = {n for n in _TAGGED if n in hint} | ({"AttentionConfig", "MLAConfig"} if hint == "Attention" else set())
    if not names or v is None or isinstance(v, tuple(_TAGGED[n] for n in names)):
        return
    if isinstance(v, str) and "str" in hint.split(" | "):
        return
    raise ConfigError(
        f"{cls.__name__}.{key}: expected a {' or '.join(sorted(names))} (a mapping with its \"type\" tag)"
        f"{' or null' if 'None' in hint else ''}, got {v!r}"
    )


_SCALARS = {"bool", "int", "float", "str", "None"}


def _check_scalar(cls: type, key: str, v: Any) -> None:
    """A field whose annotation is only scalars (`bool`, `float | str | None`, ...) given a value
    of another JSON type: the dataclasses do not check types, and a 1 or "false" where a bool
    belongs is truthy. Numbers must be finite (no field means anything by NaN or infinity)."""
    if isinstance(v, float) and not math.isfinite(v):
        raise ConfigError(f"{cls.__name__}.{key}: {v!r} is not a finite number")
    hint = str(next(f.type for f in fields(cls) if f.name == key))
    alts = set(hint.split(" | "))
    if not alts <= _SCALARS:
        return
    ok = ((v is None and "None" in alts) or (isinstance(v, bool) and "bool" in alts)
          or (isinstance(v, int) and not isinstance(v, bool) and alts & {"int", "float"})
          or (isinstance(v, float) and "float" in alts) or (isinstance(v, str) and "str" in alts))
    if not ok:
        shown = repr(v) if len(repr(v)) <= 60 else repr(v)[:57] + "..."
        raise ConfigError(f"{cls.__name__}.{key}: expected {' or '.join(sorted(alts))}, got {shown} ({type(v).__name__})")


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
            sub = _TAGGED.get(v["type"]) if isinstance(v["type"], str) else None
            if sub is None:
                raise ConfigError(f"{cls.__name__}.{k}: unknown config type {v['type']!r}")
            v = _from_dict(sub, v)
        _require_sub_config(cls, k, v)
        _check_scalar(cls, k, v)
        if isinstance(v, list):
            v = tuple(v)
        kw[k] = v
    try:
        return cls(**kw)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"{cls.__name__}: {e}") from None
