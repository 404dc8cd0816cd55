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


NORM_KINDS = ("layernorm", "rmsnorm")
POSITION_KINDS = ("learned", "rope", "none")
ROPE_SCALINGS = ("linear", "llama3", "yarn")
ACTIVATIONS = ("gelu", "gelu_tanh", "silu", "relu")
FFN_KINDS = ("mlp", "glu")
ROUTER_SCORES = ("softmax", "sigmoid")
GROUP_SCORES = ("max", "top2_sum")
BLOCK_KINDS = ("pre",)
# Per-layer mixer kinds; which attention module a "global" layer gets is the type of
# ModelConfig.attention (AttentionConfig -> "attention", MLAConfig -> "mla").
LAYER_TYPES = ("global", "sliding")
FFN_TYPES = ("dense", "moe")


@dataclass(frozen=True)
class NormConfig:
    """A normalisation layer. `bias` only exists for LayerNorm."""

    kind: str = "rmsnorm"
    eps: float = 1e-6
    bias: bool = False

    def __post_init__(self) -> None:
        _require(self.kind in NORM_KINDS, "norm.kind", f"expected one of {NORM_KINDS}, got {self.kind!r}")
        _require(self.eps > 0, "norm.eps", f"must be > 0, got {self.eps}")
        _require(not (self.bias and self.kind != "layernorm"), "norm.bias", "only LayerNorm has a bias")


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
                self.high_freq_factor > self.low_freq_factor,
                "rope.scaling.high_freq_factor",
                f"must exceed low_freq_factor ({self.low_freq_factor}), got {self.high_freq_factor}",
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
class AttentionConfig:
    """Softmax attention over n_kv_heads key/value groups: MHA when n_kv_heads == n_heads,
    GQA in between, MQA when 1. Unset n_kv_heads means MHA; unset head_dim means d_model // n_heads."""

    n_heads: int
    n_kv_heads: int | None = None
    head_dim: int | None = None
    qkv_bias: bool = False
    out_bias: bool = False
    # Softmax scale; None means 1/sqrt(head_dim).
    scale: float | None = None
    # Tokens a sliding-window layer sees, itself included.
    window: int | None = None

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
    """

    score: str = "softmax"
    norm_topk: bool = False
    scale: float = 1.0
    n_groups: int = 1
    topk_groups: int = 1
    group_score: str = "max"
    score_bias: bool = False

    def __post_init__(self) -> None:
        _require(self.score in ROUTER_SCORES, "moe.router.score", f"expected one of {ROUTER_SCORES}, got {self.score!r}")
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
    The shared part is one GLU of n_shared * hidden (how DeepSeek stores it)."""

    n_experts: int
    top_k: int
    hidden: int
    n_shared: int = 0
    activation: str = "silu"
    router: RouterConfig = field(default_factory=RouterConfig)

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


@dataclass(frozen=True)
class LayerSpec:
    """What one layer is, resolved from the config's per-layer lists."""

    index: int
    mixer: str  # "attention" | "mla"
    window: int | None  # keys visible to a query (itself included); None = all previous
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
    moe: MoEConfig | None = None
    block: str = "pre"
    tie_embeddings: bool = False
    # Per-layer plan; None derives it: all "global"; all "dense", or all "moe" when moe is set.
    layer_types: tuple[str, ...] | None = None
    ffn_types: tuple[str, ...] | None = None
    # Free text: the family a preset belongs to and where its numbers come from.
    family: str = ""
    source: str = ""

    # ---- derivation and validation -------------------------------------------------
    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        for k in ("vocab_size", "d_model", "n_layers", "max_seq_len"):
            v = getattr(self, k)
            _require(isinstance(v, int) and v > 0, k, f"must be a positive integer, got {v!r}")
        _require(self.position in POSITION_KINDS, "position", f"expected one of {POSITION_KINDS}, got {self.position!r}")
        _require(self.block in BLOCK_KINDS, "block", f"expected one of {BLOCK_KINDS}, got {self.block!r}")
        if self.position == "rope":
            _require(self.rope is not None, "rope", "position='rope' needs a RopeConfig")
        else:
            _require(self.rope is None, "rope", f"position={self.position!r} takes no RopeConfig; set rope=None")
        set_("attention", self._resolve_attention(self.attention))

        n = self.n_layers
        if self.layer_types is None:
            set_("layer_types", ("global",) * n)
        else:
            set_("layer_types", tuple(self.layer_types))
        if self.ffn_types is None:
            set_("ffn_types", (("moe" if self.moe is not None else "dense"),) * n)
        else:
            set_("ffn_types", tuple(self.ffn_types))
        for name, allowed in (("layer_types", LAYER_TYPES), ("ffn_types", FFN_TYPES)):
            seq = getattr(self, name)
            _require(len(seq) == n, name, f"needs one entry per layer (n_layers={n}), got {len(seq)}")
            bad = sorted({t for t in seq if t not in allowed})
            _require(not bad, name, f"unknown kinds {bad}; expected some of {allowed}")
        if "moe" in self.ffn_types:
            _require(self.moe is not None, "moe", "ffn_types has 'moe' layers but no MoEConfig is set")
        if "sliding" in self.layer_types:
            _require(
                isinstance(self.attention, AttentionConfig) and self.attention.window,
                "attention.window",
                "layer_types has 'sliding' layers but no window size is set",
            )

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
        if self.rope is not None:
            rd = self.rope.rotary_dim(hd)
            _require(
                rd > 0 and rd % 2 == 0,
                "rope.partial",
                f"rotates {rd} of head_dim {hd} dimensions; RoPE needs an even, positive number",
            )
        if a.window is not None:
            _require(a.window > 0, "attention.window", f"must be > 0, got {a.window}")
        return replace(a, n_kv_heads=kv, head_dim=hd)

    # ---- the resolved per-layer plan ------------------------------------------------
    @property
    def layers(self) -> tuple[LayerSpec, ...]:
        mixer = self.attention.kind
        window = getattr(self.attention, "window", None)
        return tuple(
            LayerSpec(
                index=i,
                mixer=mixer,
                window=window if t == "sliding" else None,
                rope=self.rope,
                ffn=f,
            )
            for i, (t, f) in enumerate(zip(self.layer_types, self.ffn_types))
        )

    # ---- serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        return _from_dict(cls, d)

    def replace(self, **changes: Any) -> "ModelConfig":
        return replace(self, **changes)


# Sub-configs are told apart in dicts by a "type" tag, so a saved config reads back exactly.
_TAGGED = {c.__name__: c for c in (NormConfig, RopeScaling, RopeConfig, AttentionConfig, MLAConfig, FFNConfig, RouterConfig, MoEConfig)}


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
