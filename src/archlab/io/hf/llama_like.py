"""How the Llama-shaped HF families (llama, mistral, mixtral, qwen3, qwen3_moe, olmo2, gemma3,
smollm3, glm4_moe, gpt_oss, llama4, qwen3_next, deepseek) read config.json alike: the fields
every one of them has (`llama_like_config`), their class defaults, HF's per-layer
`layer_types`, and RoPE with a family's own default theta. Each family passes only what it
reads differently. Not a family itself: it registers nothing. Their tensor names are
llama_rules.py's."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ...model_config import AttentionConfig, ConfigError, FFNConfig, MLAConfig, ModelConfig, MoEConfig, NormConfig, RopeConfig, RouterConfig
from .core import QWEN_MOE_NAMES, CheckpointError, activation, ffn_parts, get_field, in_config_json_names
from .values import bool_field
from .rope import read_rope, rope_dict

# HF `layer_types` entries -> ours (transformers/configuration_utils.py ALLOWED_LAYER_TYPES)
HF_LAYER_TYPES = {"full_attention": "global", "sliding_attention": "sliding"}


def with_defaults(hf: dict, defaults: dict[str, Any]) -> dict:
    """config.json over the HF config class's defaults: hub configs may leave out what equals
    the default (Gemma 3's text_config lists only what differs from Gemma3TextConfig), and HF
    fills it in from the class, so we must too. A null in config.json stays null."""
    return {**defaults, **hf}


def layer_types(hf: dict, n_layers: int, derived: list[str], kinds: dict[str, str] = HF_LAYER_TYPES) -> tuple[str, ...]:
    """config.json `layer_types` (HF's names, `kinds` maps them to ours) as ours; `derived` (HF
    names) when absent, the list the HF config class's __post_init__ would build."""
    given = hf.get("layer_types")
    names = derived if given is None else given
    if not isinstance(names, list) or len(names) != n_layers:
        raise CheckpointError(
            f"config.json: layer_types needs one entry per layer (num_hidden_layers={n_layers}), got {names!r}"
        )
    bad = sorted({str(t) for t in names if t not in kinds})
    if bad:
        raise CheckpointError(
            f"config.json: layer_types has {bad}; model_type {hf.get('model_type')!r} supports {sorted(kinds)}"
        )
    return tuple(kinds[t] for t in names)


def rope_layers(hf: dict, n_layers: int) -> tuple[bool, ...]:
    """Which layers rotate (the others are NoPE): `no_rope_layers`, 1 where layer i uses RoPE
    and 0 where not; when null or empty (Meta's Llama 4 configs say `[]`), every
    no_rope_layer_interval-th layer is NoPE, as SmolLM3Config and Llama4TextConfig derive it."""
    given = hf.get("no_rope_layers")
    if given is None or given == []:
        interval = positive_int(hf, "no_rope_layer_interval")
        return tuple((i + 1) % interval != 0 for i in range(n_layers))
    if not isinstance(given, list) or len(given) != n_layers or any(v not in (0, 1) for v in given):
        raise CheckpointError(
            f"config.json: no_rope_layers needs one 0 (NoPE) or 1 (RoPE) per layer (num_hidden_layers={n_layers}), got {given!r}"
        )
    return tuple(bool(v) for v in given)


def sparse_ffn_types(hf: dict, n_layers: int, n_experts: int) -> tuple[str, ...]:
    """Qwen's MoE layer plan (Qwen3MoeConfig, Qwen3NextConfig): layer i is MoE when there are
    experts, (i + 1) % decoder_sparse_step == 0 and i is not in mlp_only_layers; else dense."""
    step = positive_int(hf, "decoder_sparse_step")
    dense = hf.get("mlp_only_layers") or []
    if not isinstance(dense, list) or not all(isinstance(i, int) for i in dense):
        raise CheckpointError(f"config.json: mlp_only_layers must be a list of layer indices, got {dense!r}")
    return tuple("moe" if n_experts > 0 and (i + 1) % step == 0 and i not in dense else "dense" for i in range(n_layers))


def sliding_window(hf: dict, types: Iterable[str], key: str = "sliding_window") -> int | None:
    """The window of the sliding layers; an error naming the field when they have none."""
    if "sliding" not in types:
        return None
    w = hf.get(key)
    if not isinstance(w, int) or isinstance(w, bool) or w <= 0:
        raise CheckpointError(f"config.json: layer_types has sliding_attention layers, but {key}={w!r} (expected a positive integer)")
    return w


def rope(hf: dict, default_theta: float, honours_partial: bool = False) -> RopeConfig:
    """read_rope, with the theta HF's config class uses when config.json gives none
    (`default_theta`: 1e6 for Mixtral, 2e6 for SmolLM3, 10000 for most). Llama's attention
    rotates the whole head (partial_rotary_factor: read_rope); `honours_partial` for the
    families whose attention rotates only part of it (GLM-4.5, Qwen3-Next)."""
    if rope_dict(hf).get("rope_theta") is None and hf.get("rope_theta") is None:
        hf = {**hf, "rope_theta": default_theta}
    return read_rope(hf, honours_partial=honours_partial)


def positive_int(hf: dict, key: str, default: Any = None) -> int:
    v = get_field(hf, key) if default is None else get_field(hf, key, default)
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise CheckpointError(f"config.json: {key} must be a positive integer, got {v!r}")
    return v


def head_dim(hf: dict, default: int | None = None) -> int:
    """head_dim from config.json; absent or null: `default`, else hidden_size // heads (HF's
    `getattr(config, "head_dim", None) or hidden_size // num_attention_heads`)."""
    v = hf.get("head_dim")
    if v is None:
        return default if default is not None else positive_int(hf, "hidden_size") // positive_int(hf, "num_attention_heads")
    return positive_int(hf, "head_dim")


def flag(hf: dict, key: str) -> bool:
    """A true/false field. Anything else is refused: HF tests these for truth, so a string
    "false" would silently mean true."""
    v = hf.get(key)
    if not isinstance(v, bool):
        raise CheckpointError(f"config.json: {key} must be true or false, got {v!r}")
    return v


def kv_heads(hf: dict, n_heads: int) -> int:
    """num_key_value_heads; null means one per query head, as the HF config classes read it."""
    return n_heads if hf.get("num_key_value_heads") is None else positive_int(hf, "num_key_value_heads")


def rms_norm(hf: dict, unit_offset: bool = False) -> NormConfig:
    """RMSNorm of rms_norm_eps; unit_offset: scaled by (1 + w) (Gemma 3, Qwen3-Next)."""
    return NormConfig("rmsnorm", eps=get_field(hf, "rms_norm_eps"), unit_offset=unit_offset)


def _fill(given: dict[str, Any], **read: Callable[[], Any]) -> dict[str, Any]:
    """`given`, plus each field it lacks read from config.json by `read[field]`. Only missing
    fields are read: a family that gives one does not need config.json to hold it."""
    return {**{k: f() for k, f in read.items() if k not in given}, **given}


def llama_like_config(
    hf: dict,
    *,
    family: str,
    theta: float = 10000.0,
    act: str = "hidden_act",
    attention: dict[str, Any] | AttentionConfig | MLAConfig | None = None,
    ffn: dict[str, Any] | None = None,
    **fields: Any,
) -> ModelConfig:
    """The ModelConfig of a Llama-shaped config.json (over its class's defaults: with_defaults):
    vocab_size, hidden_size, num_hidden_layers, max_position_embeddings, an RMSNorm of
    rms_norm_eps, RoPE (`theta` when config.json gives none), attention of num_attention_heads
    / num_key_value_heads / head_dim with `attention_bias` on q, k, v and o, a GLU of
    intermediate_size and `act` (kept only if some layer is dense, given `moe` and
    `ffn_types`), tie_word_embeddings; named by model_type.

    A family passes only where it differs: `attention` and `ffn` fields that replace or add to
    these (or a whole attention config, such as DeepSeek's MLA), and any other ModelConfig
    field in `fields`. What a family passes is not read from config.json."""
    if not isinstance(attention, (AttentionConfig, MLAConfig)):
        given = attention or {}
        n_heads = given.get("n_heads") or positive_int(hf, "num_attention_heads")
        attention = AttentionConfig(**_fill(
            given,
            n_heads=lambda: n_heads,
            n_kv_heads=lambda: kv_heads(hf, n_heads),
            head_dim=lambda: head_dim(hf),
            qkv_bias=lambda: flag(hf, "attention_bias"),
            out_bias=lambda: flag(hf, "attention_bias"),
        ))
    dense = FFNConfig(**_fill(
        {"kind": "glu", **(ffn or {})},
        hidden=lambda: positive_int(hf, "intermediate_size"),
        activation=lambda: activation(hf, act),
    ))
    parts = ffn_parts(dense, fields.pop("moe", None), fields.pop("ffn_types", None))  # a dense FFN only if some layer uses it
    return ModelConfig(family=family, attention=attention, **parts, **_fill(
        fields,
        name=lambda: str(hf.get("model_type")),
        vocab_size=lambda: positive_int(hf, "vocab_size"),
        d_model=lambda: positive_int(hf, "hidden_size"),
        n_layers=lambda: positive_int(hf, "num_hidden_layers"),
        max_seq_len=lambda: positive_int(hf, "max_position_embeddings"),
        norm=lambda: rms_norm(hf),
        position=lambda: rope(hf, theta),
        tie_embeddings=lambda: bool_field(hf, "tie_word_embeddings", False),
    ))


def gated_shared_moe(hf: dict, act: str, norm_topk: bool) -> MoEConfig:
    """The MoE of Qwen2-MoE and Qwen3-Next: softmax top-k experts beside one shared GLU of
    shared_expert_intermediate_size behind a sigmoid gate (Qwen2MoeSparseMoeBlock,
    Qwen3NextSparseMoeBlock: the same block)."""
    hidden = positive_int(hf, "moe_intermediate_size")
    shared = get_field(hf, "shared_expert_intermediate_size")
    if not isinstance(shared, int) or isinstance(shared, bool) or shared < 0:
        raise CheckpointError(f"config.json: shared_expert_intermediate_size must be a non-negative integer, got {shared!r}")
    if shared == 0:
        # a zero-width shared expert adds sigmoid(gate) * 0, the same as none
        n_shared, shared_hidden, gate = 0, None, False
    else:
        # said as n_shared routed experts' widths where it is a multiple of theirs, as the presets say it
        n_shared, shared_hidden = (shared // hidden, None) if shared % hidden == 0 else (1, shared)
        gate = True
    try:
        return MoEConfig(
            n_experts=hf["num_experts"],
            top_k=positive_int(hf, "num_experts_per_tok"),
            hidden=hidden,
            n_shared=n_shared,
            shared_hidden=shared_hidden,
            shared_gate=gate,
            activation=act,
            router=RouterConfig(score="softmax", norm_topk=norm_topk),
        )
    except ConfigError as e:
        raise in_config_json_names(e, QWEN_MOE_NAMES) from None
