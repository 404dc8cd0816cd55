"""HF transformers format <-> archlab, per model_type.

Each family is an `HFFamily`: how to read its config.json into a ModelConfig, and a list
of `Rule`s pairing our tensor names with the checkpoint's (with the layout changes in
between: GPT-2's transposed Conv1D weights and fused qkv, DeepSeek's adjacent-pair RoPE
rows, per-expert tensors stacked into one). Loading checks the whole checkpoint against
what the config says the model holds and reports every missing, unexpected or wrongly
shaped tensor at once; nothing is loaded partially.

Saving runs the same rules backwards. The model_type is chosen from the config's parts, and a
config no family expresses exactly is refused with what each family lacks: a checkpoint that
HF would load as a different model is worse than none. The written config.json must read back
as the model's own config, and the directory appears complete or not at all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Collection

import torch

from ..config import (
    AttentionConfig,
    ConfigError,
    FFNConfig,
    MLAConfig,
    ModelConfig,
    MoEConfig,
    NormConfig,
    RopeConfig,
    RopeScaling,
    RouterConfig,
)
from ..nn.position import interleaved_to_halves
from .atomic import atomic_directory, fsync_path
from .safetensors_dir import CheckpointError, TensorSource, write_safetensors

Tensors = list[torch.Tensor]


def _same(ts: Tensors, cfg: ModelConfig) -> Tensors:
    return ts


@dataclass(frozen=True)
class Rule:
    """Our tensors `ours` are made from the checkpoint's tensors `theirs` by `load`, and
    back by `save`. Templates may hold {i} (layer); `theirs` may hold {e} (expert), in which
    case the per-expert tensors arrive stacked along a new first dimension."""

    ours: tuple[str, ...]
    theirs: tuple[str, ...]
    load: Callable[[Tensors, ModelConfig], Tensors] = _same
    save: Callable[[Tensors, ModelConfig], Tensors] = _same


def rename(ours: str, theirs: str, load=_same, save=_same) -> Rule:
    return Rule((ours,), (theirs,), load, save)


def _template_regex(t: str) -> re.Pattern:
    return re.compile(re.escape(t).replace(r"\{i\}", r"(?P<i>\d+)") + "$")


def _instances(rule: Rule, keys: Collection[str]) -> list[tuple[int | None, list[str]]]:
    """Where `rule` applies to a set of our tensor names: each layer (None for a rule without
    {i}) at which every one of rule.ours is present, with the names filled in. Shared by
    loading (keys: what the model expects) and saving (keys: what the model holds)."""
    if "{i}" not in rule.ours[0]:
        return [(None, list(rule.ours))] if all(k in keys for k in rule.ours) else []
    pattern = _template_regex(rule.ours[0])
    layers = sorted({int(m["i"]) for k in keys if (m := pattern.match(k))})
    found = []
    for i in layers:
        names = [t.format(i=i) for t in rule.ours]
        if all(k in keys for k in names):
            found.append((i, names))
    return found


def _their_names(template: str, i: int | None, n_experts: int) -> list[str]:
    """A checkpoint template at layer i; one name per expert where it holds {e}."""
    if "{e}" in template:
        return [template.format(i=i, e=e) for e in range(n_experts)]
    return [template.format(i=i)]


def _state_as_is(state: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    return state


@dataclass
class HFFamily:
    model_types: tuple[str, ...]
    read_config: Callable[[dict[str, Any]], ModelConfig]
    rules: Callable[[ModelConfig, dict], list[Rule]]  # (config, config.json) -> rules
    # checkpoint tensors that carry nothing the model needs (recomputed buffers and the like)
    ignore: tuple[str, ...] = ()
    # ---- saving: written as model_types[0]; a family without write_config is only read ----
    architecture: str = ""  # config.json "architectures"
    mixer: str = "attention"  # the attention kind (AttentionConfig / MLAConfig) it holds
    # what in a config this family cannot express; empty: it writes the config exactly
    problems: Callable[[ModelConfig], list[str]] = lambda cfg: []
    write_config: Callable[[ModelConfig], dict[str, Any]] | None = None
    # our state dict -> what the rules save (tensors the family has and ours lacks, made explicit)
    prepare_state: Callable[[dict[str, torch.Tensor], ModelConfig], dict[str, torch.Tensor]] = _state_as_is


# ---- reading config.json ----------------------------------------------------------------

_MISSING = object()


def _field(hf: dict, key: str, default: Any = _MISSING) -> Any:
    if key in hf and hf[key] is not None:
        return hf[key]
    if default is _MISSING:
        raise CheckpointError(f"config.json: field {key!r} is missing (needed for model_type {hf.get('model_type')!r})")
    return default


_ACTIVATIONS = {
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu": "gelu",
    "silu": "silu",
    "swish": "silu",
    "relu": "relu",
}


def _activation(hf: dict, key: str) -> str:
    name = _field(hf, key)
    if name not in _ACTIVATIONS:
        raise CheckpointError(f"config.json: {key}={name!r} is not supported (supported: {sorted(_ACTIVATIONS)})")
    return _ACTIVATIONS[name]


def _rope(hf: dict) -> RopeConfig:
    """Reads both the v4 layout (rope_theta + rope_scaling) and v5's rope_parameters."""
    legacy = hf.get("rope_scaling") or {}
    params = {**legacy, **(hf.get("rope_parameters") or {})}
    theta = float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))
    partial = float(params.get("partial_rotary_factor", hf.get("partial_rotary_factor", 1.0)))
    kind = params.get("rope_type") or params.get("type") or "default"
    max_pos = _field(hf, "max_position_embeddings")
    original = params.get("original_max_position_embeddings") or hf.get("original_max_position_embeddings") or max_pos
    if kind == "default":
        scaling = None
    elif kind == "linear":
        scaling = RopeScaling("linear", factor=float(params["factor"]), original_max_seq_len=int(original))
    elif kind == "llama3":
        scaling = RopeScaling(
            "llama3",
            factor=float(params["factor"]),
            original_max_seq_len=int(original),
            low_freq_factor=float(params.get("low_freq_factor", 1.0)),
            high_freq_factor=float(params.get("high_freq_factor", 4.0)),
        )
    elif kind == "yarn":
        factor = params.get("factor") or max_pos / original
        scaling = RopeScaling(
            "yarn",
            factor=float(factor),
            original_max_seq_len=int(original),
            beta_fast=float(params.get("beta_fast") or 32.0),
            beta_slow=float(params.get("beta_slow") or 1.0),
            mscale=params.get("mscale"),
            mscale_all_dim=params.get("mscale_all_dim"),
            attention_factor=params.get("attention_factor"),
            truncate=bool(params.get("truncate", True)),
        )
    else:
        raise CheckpointError(f"config.json: rope type {kind!r} is not supported (supported: default, linear, llama3, yarn)")
    return RopeConfig(theta=theta, partial=partial, scaling=scaling)


# ---- writing config.json: the inverse of the readers --------------------------------------

# our activation -> the HF name that computes exactly it (gelu_pytorch_tanh is F.gelu(approximate="tanh"))
_HF_ACTIVATION = {"gelu_tanh": "gelu_pytorch_tanh", "gelu": "gelu", "silu": "silu", "relu": "relu"}


def _rope_json(cfg: ModelConfig) -> dict[str, Any]:
    """v5's rope_parameters and, for older transformers, the v4 rope_theta + rope_scaling.
    v5 lets rope_scaling replace rope_parameters, so the two must say the same thing."""
    rope, s = cfg.rope, cfg.rope.scaling
    params: dict[str, Any] = {"rope_type": "default" if s is None else s.kind, "rope_theta": rope.theta}
    if s is not None:
        params["factor"] = s.factor
        if s.kind == "llama3":
            params.update(low_freq_factor=s.low_freq_factor, high_freq_factor=s.high_freq_factor)
        if s.kind == "yarn":
            params.update(beta_fast=s.beta_fast, beta_slow=s.beta_slow)
            for key in ("mscale", "mscale_all_dim", "attention_factor"):
                if getattr(s, key) is not None:
                    params[key] = getattr(s, key)
            if not s.truncate:
                params["truncate"] = False
        # llama3 and yarn need it; linear ignores it, but a value other than the reader's
        # default (max_seq_len) is written so that the config reads back equal
        if s.kind != "linear" or s.original_max_seq_len != cfg.max_seq_len:
            params["original_max_position_embeddings"] = s.original_max_seq_len
    legacy = None
    if s is not None:
        legacy = {"rope_type": s.kind, "type": s.kind, **{k: v for k, v in params.items() if k not in ("rope_type", "rope_theta")}}
    return {"rope_theta": rope.theta, "rope_parameters": params, "rope_scaling": legacy}


def _common_problems(cfg: ModelConfig) -> list[str]:
    p = []
    if cfg.block != "pre":
        p.append(f"block={cfg.block!r} (its blocks normalise each sublayer's input: block='pre')")
    if "sliding" in cfg.layer_types:
        p.append("layer_types has 'sliding' layers (it has no sliding-window attention)")
    return p


# ---- GPT-2 --------------------------------------------------------------------------------

def _gpt2_config(hf: dict) -> ModelConfig:
    if hf.get("scale_attn_by_inverse_layer_idx"):
        raise CheckpointError("config.json: scale_attn_by_inverse_layer_idx=true is not supported")
    d = _field(hf, "n_embd")
    return ModelConfig(
        name=str(hf.get("model_type")),
        family="gpt2",
        vocab_size=_field(hf, "vocab_size"),
        d_model=d,
        n_layers=_field(hf, "n_layer"),
        max_seq_len=_field(hf, "n_positions"),
        position="learned",
        rope=None,
        norm=NormConfig("layernorm", eps=_field(hf, "layer_norm_epsilon", 1e-5), bias=True),
        attention=AttentionConfig(
            n_heads=_field(hf, "n_head"),
            qkv_bias=True,
            out_bias=True,
            scale=None if hf.get("scale_attn_weights", True) else 1.0,
        ),
        ffn=FFNConfig(hidden=_field(hf, "n_inner", 4 * d), kind="mlp", activation=_activation(hf, "activation_function"), bias=True),
        tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
    )


def _t(ts: Tensors, cfg: ModelConfig) -> Tensors:
    # GPT-2 stores Linear weights as Conv1D: (in, out)
    return [t.T.contiguous() for t in ts]


def _split_qkv(ts: Tensors, cfg: ModelConfig) -> Tensors:
    w = ts[0]
    fused = w.T if w.dim() == 2 else w  # weight (in, 3d) -> (3d, in); bias (3d,)
    return [p.contiguous() for p in fused.chunk(3, dim=0)]


def _fuse_qkv(ts: Tensors, cfg: ModelConfig) -> Tensors:
    fused = torch.cat(ts, dim=0)
    return [fused.T.contiguous() if fused.dim() == 2 else fused]


def _gpt2_problems(cfg: ModelConfig) -> list[str]:
    p = _common_problems(cfg)
    a, n, f = cfg.attention, cfg.norm, cfg.ffn
    if cfg.position != "learned":
        p.append(f"position={cfg.position!r} (GPT-2 has learned absolute positions)")
    if n.kind != "layernorm" or not n.bias:
        p.append(f"norm kind={n.kind!r} bias={n.bias} (GPT-2 uses LayerNorm with a bias)")
    if a.n_kv_heads != a.n_heads:
        p.append(f"attention.n_kv_heads={a.n_kv_heads} (GPT-2 is multi-head: one key/value head per query head, {a.n_heads})")
    if a.head_dim * a.n_heads != cfg.d_model:
        p.append(f"attention.head_dim={a.head_dim} (GPT-2's is d_model / n_heads)")
    if not (a.qkv_bias and a.out_bias):
        p.append(f"attention qkv_bias={a.qkv_bias} out_bias={a.out_bias} (GPT-2's projections all have biases)")
    if a.scale not in (None, 1.0):
        p.append(f"attention.scale={a.scale} (GPT-2 scales by 1/sqrt(head_dim), or by 1 with scale_attn_weights=false)")
    if f.kind != "mlp" or not f.bias:
        p.append(f"ffn kind={f.kind!r} bias={f.bias} (GPT-2's FFN is an ungated MLP with biases)")
    if cfg.moe is not None:
        p.append("moe (GPT-2 has no mixture of experts)")
    return p


def _gpt2_json(cfg: ModelConfig) -> dict[str, Any]:
    return {
        "vocab_size": cfg.vocab_size,
        "n_positions": cfg.max_seq_len,
        "n_embd": cfg.d_model,
        "n_layer": cfg.n_layers,
        "n_head": cfg.attention.n_heads,
        "n_inner": cfg.ffn.hidden,
        "activation_function": _HF_ACTIVATION[cfg.ffn.activation],
        "layer_norm_epsilon": cfg.norm.eps,
        "scale_attn_weights": cfg.attention.scale is None,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        # our model has no dropout; the file should not claim any
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
    }


def _gpt2_rules(cfg: ModelConfig, hf: dict) -> list[Rule]:
    p = "transformer.h.{i}."
    rules = [
        rename("tok_emb.weight", "transformer.wte.weight"),
        rename("pos_emb.weight", "transformer.wpe.weight"),
        rename("norm.weight", "transformer.ln_f.weight"),
        rename("norm.bias", "transformer.ln_f.bias"),
        rename("head.weight", "lm_head.weight"),
    ]
    for ours, theirs in (("attn_norm", "ln_1"), ("ffn_norm", "ln_2")):
        for w in ("weight", "bias"):
            rules.append(rename(f"layers.{{i}}.{ours}.{w}", f"{p}{theirs}.{w}"))
    for w in ("weight", "bias"):
        rules.append(Rule(tuple(f"layers.{{i}}.attn.{n}.{w}" for n in ("wq", "wk", "wv")), (f"{p}attn.c_attn.{w}",), _split_qkv, _fuse_qkv))
    rules += [
        rename("layers.{i}.attn.wo.weight", p + "attn.c_proj.weight", _t, _t),
        rename("layers.{i}.attn.wo.bias", p + "attn.c_proj.bias"),
        rename("layers.{i}.ffn.up.weight", p + "mlp.c_fc.weight", _t, _t),
        rename("layers.{i}.ffn.up.bias", p + "mlp.c_fc.bias"),
        rename("layers.{i}.ffn.down.weight", p + "mlp.c_proj.weight", _t, _t),
        rename("layers.{i}.ffn.down.bias", p + "mlp.c_proj.bias"),
    ]
    return rules


# ---- LLaMA ----------------------------------------------------------------------------------

def _llama_config(hf: dict) -> ModelConfig:
    if int(hf.get("pretraining_tp", 1) or 1) != 1:
        raise CheckpointError("config.json: pretraining_tp > 1 is not supported")
    d = _field(hf, "hidden_size")
    bias = bool(hf.get("attention_bias", False))
    return ModelConfig(
        name=str(hf.get("model_type")),
        family="llama",
        vocab_size=_field(hf, "vocab_size"),
        d_model=d,
        n_layers=_field(hf, "num_hidden_layers"),
        max_seq_len=_field(hf, "max_position_embeddings"),
        norm=NormConfig("rmsnorm", eps=_field(hf, "rms_norm_eps", 1e-6)),
        rope=_rope(hf),
        attention=AttentionConfig(
            n_heads=_field(hf, "num_attention_heads"),
            n_kv_heads=_field(hf, "num_key_value_heads", None),
            head_dim=_field(hf, "head_dim", None),
            qkv_bias=bias,
            out_bias=bias,
        ),
        ffn=FFNConfig(
            hidden=_field(hf, "intermediate_size"), kind="glu", activation=_activation(hf, "hidden_act"),
            bias=bool(hf.get("mlp_bias", False)),
        ),
        tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
    )


def _llama_problems(cfg: ModelConfig) -> list[str]:
    p = _common_problems(cfg)
    a, f = cfg.attention, cfg.ffn
    if cfg.position != "rope":
        p.append(f"position={cfg.position!r} (LLaMA has rotary positions)")
    else:
        if cfg.rope.partial != 1.0:
            p.append(f"rope.partial={cfg.rope.partial} (LLaMA rotates the whole head)")
    if cfg.norm.kind != "rmsnorm":
        p.append(f"norm.kind={cfg.norm.kind!r} (LLaMA uses RMSNorm)")
    if cfg.d_model % a.n_heads:
        p.append(f"d_model={cfg.d_model} with n_heads={a.n_heads} (HF's LlamaConfig requires hidden_size divisible by the heads)")
    if a.qkv_bias != a.out_bias:
        p.append(f"attention qkv_bias={a.qkv_bias} out_bias={a.out_bias} (LLaMA's attention_bias covers q, k, v and o together)")
    if a.scale is not None:
        p.append(f"attention.scale={a.scale} (LLaMA scales by 1/sqrt(head_dim))")
    if f.kind != "glu":
        p.append(f"ffn.kind={f.kind!r} (LLaMA's FFN is gated: 'glu')")
    if cfg.moe is not None:
        p.append("moe (LLaMA has no mixture of experts)")
    return p


def _llama_json(cfg: ModelConfig) -> dict[str, Any]:
    a = cfg.attention
    return {
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.ffn.hidden,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": a.n_heads,
        "num_key_value_heads": a.n_kv_heads,
        "head_dim": a.head_dim,
        "hidden_act": _HF_ACTIVATION[cfg.ffn.activation],
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm.eps,
        **_rope_json(cfg),
        "attention_bias": a.qkv_bias,
        "mlp_bias": cfg.ffn.bias,
        "attention_dropout": 0.0,
        "pretraining_tp": 1,
    }


def _decoder_rules(attn_names: list[tuple[str, str]]) -> list[Rule]:
    """Names shared by the Llama-style decoders (model.layers.{i}.self_attn / mlp)."""
    p = "model.layers.{i}."
    rules = [
        rename("tok_emb.weight", "model.embed_tokens.weight"),
        rename("norm.weight", "model.norm.weight"),
        rename("head.weight", "lm_head.weight"),
        rename("layers.{i}.attn_norm.weight", p + "input_layernorm.weight"),
        rename("layers.{i}.ffn_norm.weight", p + "post_attention_layernorm.weight"),
    ]
    for ours, theirs in attn_names:
        rules.append(rename(f"layers.{{i}}.attn.{ours}", f"{p}self_attn.{theirs}"))
    for ours, theirs in (("gate", "gate_proj"), ("up", "up_proj"), ("down", "down_proj")):
        for w in ("weight", "bias"):
            rules.append(rename(f"layers.{{i}}.ffn.{ours}.{w}", f"{p}mlp.{theirs}.{w}"))
    return rules


_LLAMA_ATTN = [(f"{o}.{w}", f"{t}.{w}") for o, t in (("wq", "q_proj"), ("wk", "k_proj"), ("wv", "v_proj"), ("wo", "o_proj")) for w in ("weight", "bias")]


def _llama_rules(cfg: ModelConfig, hf: dict) -> list[Rule]:
    return _decoder_rules(_LLAMA_ATTN)


# ---- DeepSeek V2 / V3 -------------------------------------------------------------------------

def _deepseek_config(hf: dict, v3: bool) -> ModelConfig:
    if hf.get("mlp_bias"):
        raise CheckpointError("config.json: mlp_bias=true is not supported for DeepSeek")
    n_layers = _field(hf, "num_hidden_layers")
    n_experts = hf.get("n_routed_experts")
    moe = None
    ffn_types = None
    if n_experts:
        if v3:
            router = RouterConfig(
                score="sigmoid",
                norm_topk=bool(hf.get("norm_topk_prob", True)),
                scale=float(hf.get("routed_scaling_factor", 1.0)),
                n_groups=int(hf.get("n_group") or 1),
                topk_groups=int(hf.get("topk_group") or 1),
                group_score="top2_sum",
                score_bias=True,
            )
        else:
            method = hf.get("topk_method", "greedy")
            if method not in ("greedy", "group_limited_greedy"):
                raise CheckpointError(f"config.json: topk_method={method!r} is not supported for deepseek_v2")
            grouped = method == "group_limited_greedy"
            router = RouterConfig(
                score="softmax",
                # DeepSeek-V2's own code honours norm_topk_prob (HF's port ignores it; both
                # published V2 configs set it false, where the two agree).
                norm_topk=bool(hf.get("norm_topk_prob", False)),
                scale=float(hf.get("routed_scaling_factor", 1.0)),
                n_groups=int(hf.get("n_group") or 1) if grouped else 1,
                topk_groups=int(hf.get("topk_group") or 1) if grouped else 1,
                group_score="max",
            )
        try:
            moe = MoEConfig(
                n_experts=int(n_experts),
                top_k=_field(hf, "num_experts_per_tok"),
                hidden=_field(hf, "moe_intermediate_size"),
                n_shared=int(hf.get("n_shared_experts") or 0),
                activation=_activation(hf, "hidden_act"),
                router=router,
            )
        except ConfigError as e:
            raise CheckpointError(f"config.json: {e}") from None
        first_dense = int(hf.get("first_k_dense_replace", 0))
        freq = int(hf.get("moe_layer_freq", 1) or 1)
        ffn_types = tuple("moe" if i >= first_dense and i % freq == 0 else "dense" for i in range(n_layers))
    bias = bool(hf.get("attention_bias", False))
    return ModelConfig(
        name=str(hf.get("model_type")),
        family="deepseek",
        vocab_size=_field(hf, "vocab_size"),
        d_model=_field(hf, "hidden_size"),
        n_layers=n_layers,
        max_seq_len=_field(hf, "max_position_embeddings"),
        norm=NormConfig("rmsnorm", eps=_field(hf, "rms_norm_eps", 1e-6)),
        rope=_rope(hf),
        attention=MLAConfig(
            n_heads=_field(hf, "num_attention_heads"),
            q_lora_rank=hf.get("q_lora_rank"),
            kv_lora_rank=_field(hf, "kv_lora_rank"),
            qk_nope_head_dim=_field(hf, "qk_nope_head_dim"),
            qk_rope_head_dim=_field(hf, "qk_rope_head_dim"),
            v_head_dim=_field(hf, "v_head_dim"),
            bias=bias,
        ),
        ffn=FFNConfig(hidden=_field(hf, "intermediate_size"), kind="glu", activation=_activation(hf, "hidden_act")),
        moe=moe,
        ffn_types=ffn_types,
        tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
    )


def _deepseek_problems(cfg: ModelConfig, v3: bool) -> list[str]:
    p = _common_problems(cfg)
    f, m = cfg.ffn, cfg.moe
    if cfg.norm.kind != "rmsnorm":
        p.append(f"norm.kind={cfg.norm.kind!r} (DeepSeek uses RMSNorm)")
    if f.kind != "glu" or f.bias:
        p.append(f"ffn kind={f.kind!r} bias={f.bias} (DeepSeek's dense FFN is a GLU without biases)")
    if not v3 and cfg.d_model % cfg.attention.n_heads:
        p.append(f"d_model={cfg.d_model} with n_heads={cfg.attention.n_heads} "
                 "(HF's DeepseekV2Config requires hidden_size divisible by the heads)")
    if m is None:
        return p
    if m.activation != f.activation:
        p.append(f"moe.activation={m.activation!r} differs from ffn.activation={f.activation!r} (DeepSeek has one hidden_act)")
    k = cfg.ffn_types.index("moe") if "moe" in cfg.ffn_types else cfg.n_layers
    if cfg.ffn_types != ("dense",) * k + ("moe",) * (cfg.n_layers - k):
        p.append(f"ffn_types={list(cfg.ffn_types)} (DeepSeek's MoE layers are all layers from first_k_dense_replace on)")
    r = m.router
    if v3:
        if r.score != "sigmoid":
            p.append(f"moe.router.score={r.score!r} (deepseek_v3 scores experts with sigmoids)")
        if r.n_groups > 1 and r.group_score != "top2_sum":
            p.append(f"moe.router.group_score={r.group_score!r} (deepseek_v3 ranks groups by their two best experts: 'top2_sum')")
        if m.n_experts // r.n_groups < 2:
            p.append(f"{m.n_experts} experts in {r.n_groups} groups (deepseek_v3 ranks groups by their two best experts, so needs 2 per group)")
    else:
        if r.score != "softmax":
            p.append(f"moe.router.score={r.score!r} (deepseek_v2 scores experts with a softmax)")
        if r.score_bias:
            p.append("moe.router.score_bias (deepseek_v2 has no selection bias)")
        if r.norm_topk:
            p.append("moe.router.norm_topk=True (HF's deepseek_v2 ignores norm_topk_prob and never renormalises)")
        if r.n_groups > 1 and r.group_score != "max":
            p.append(f"moe.router.group_score={r.group_score!r} (deepseek_v2 ranks groups by their best expert: 'max')")
    return p


def _deepseek_json(cfg: ModelConfig, v3: bool) -> dict[str, Any]:
    a, m = cfg.attention, cfg.moe
    hf: dict[str, Any] = {
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.ffn.hidden,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": a.n_heads,
        # MLA shares one latent between all heads; HF's attention code wants the count of K/V heads it rebuilds
        "num_key_value_heads": a.n_heads,
        "q_lora_rank": a.q_lora_rank,
        "kv_lora_rank": a.kv_lora_rank,
        "qk_nope_head_dim": a.qk_nope_head_dim,
        "qk_rope_head_dim": a.qk_rope_head_dim,
        "v_head_dim": a.v_head_dim,
        "hidden_act": _HF_ACTIVATION[cfg.ffn.activation],
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm.eps,
        **_rope_json(cfg),
        "attention_bias": a.bias,
        "mlp_bias": False,
        "attention_dropout": 0.0,
    }
    if v3:
        # our weights are rotate-half; the save rules permute them back to DeepSeek's adjacent pairs
        hf.update(rope_interleave=True, num_nextn_predict_layers=0)
    if m is None:
        # no MoE layer at all: every layer is one of the first_k_dense_replace dense ones
        hf.update(n_routed_experts=0, n_shared_experts=0, n_group=1, topk_group=1, first_k_dense_replace=cfg.n_layers)
        return hf
    r = m.router
    hf.update(
        n_routed_experts=m.n_experts,
        num_experts_per_tok=m.top_k,
        moe_intermediate_size=m.hidden,
        n_shared_experts=m.n_shared,
        routed_scaling_factor=r.scale,
        norm_topk_prob=r.norm_topk,
        scoring_func=r.score,
        topk_method="noaux_tc" if v3 else "group_limited_greedy" if r.n_groups > 1 else "greedy",
        n_group=r.n_groups,
        topk_group=r.topk_groups,
        first_k_dense_replace=cfg.ffn_types.index("moe") if "moe" in cfg.ffn_types else cfg.n_layers,
        moe_layer_freq=1,
    )
    return hf


def _zero_score_bias(state: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """deepseek_v3's router always has a selection bias; a sigmoid router without one is
    the same router with a zero bias."""
    if cfg.moe is None or cfg.moe.router.score_bias:
        return state
    out = {}
    for k, v in state.items():
        out[k] = v
        if k.endswith(".ffn.router.weight"):
            out[k.removesuffix("weight") + "score_bias"] = torch.zeros(v.shape[0], dtype=v.dtype)
    return out


def _head_rope_perm(cfg: ModelConfig, inverse: bool) -> Callable[[Tensors, ModelConfig], Tensors]:
    """Permute the RoPE rows of each head of a query projection between adjacent-pair and
    rotate-half layout (rows per head: qk_nope_head_dim, then qk_rope_head_dim)."""
    a = cfg.attention
    perm = interleaved_to_halves(a.qk_rope_head_dim)
    if inverse:
        perm = perm.argsort()

    def f(ts: Tensors, cfg: ModelConfig) -> Tensors:
        w = ts[0]
        per_head = w.view(a.n_heads, a.qk_head_dim, -1)
        out = torch.cat((per_head[:, : a.qk_nope_head_dim], per_head[:, a.qk_nope_head_dim :][:, perm]), dim=1)
        return [out.reshape(w.shape)]

    return f


def _tail_rope_perm(cfg: ModelConfig, inverse: bool) -> Callable[[Tensors, ModelConfig], Tensors]:
    """Same for the shared RoPE key: the last qk_rope_head_dim rows of wkv_a (and its bias)."""
    a = cfg.attention
    perm = interleaved_to_halves(a.qk_rope_head_dim)
    if inverse:
        perm = perm.argsort()

    def f(ts: Tensors, cfg: ModelConfig) -> Tensors:
        w = ts[0]
        return [torch.cat((w[: a.kv_lora_rank], w[a.kv_lora_rank :][perm]), dim=0)]

    return f


def _deepseek_rules(cfg: ModelConfig, interleaved: bool) -> list[Rule]:
    names = [
        ("wq_a.weight", "q_a_proj.weight"), ("wq_a.bias", "q_a_proj.bias"), ("q_norm.weight", "q_a_layernorm.weight"),
        ("kv_norm.weight", "kv_a_layernorm.weight"), ("wkv_b.weight", "kv_b_proj.weight"),
        ("wo.weight", "o_proj.weight"), ("wo.bias", "o_proj.bias"),
    ]
    rules = _decoder_rules(names)
    p = "model.layers.{i}.self_attn."
    # Adjacent-pair RoPE checkpoints are permuted to our rotate-half layout; q·k is unchanged.
    q_load, q_save = (_head_rope_perm(cfg, False), _head_rope_perm(cfg, True)) if interleaved else (_same, _same)
    kv_load, kv_save = (_tail_rope_perm(cfg, False), _tail_rope_perm(cfg, True)) if interleaved else (_same, _same)
    rules += [
        rename("layers.{i}.attn.wq.weight", p + "q_proj.weight", q_load, q_save),
        rename("layers.{i}.attn.wq_b.weight", p + "q_b_proj.weight", q_load, q_save),
        rename("layers.{i}.attn.wkv_a.weight", p + "kv_a_proj_with_mqa.weight", kv_load, kv_save),
        rename("layers.{i}.attn.wkv_a.bias", p + "kv_a_proj_with_mqa.bias", kv_load, kv_save),
    ]
    m = "model.layers.{i}.mlp."
    rules += [
        rename("layers.{i}.ffn.router.weight", m + "gate.weight"),
        rename("layers.{i}.ffn.router.score_bias", m + "gate.e_score_correction_bias"),
        rename("layers.{i}.ffn.experts.gate", m + "experts.{e}.gate_proj.weight"),
        rename("layers.{i}.ffn.experts.up", m + "experts.{e}.up_proj.weight"),
        rename("layers.{i}.ffn.experts.down", m + "experts.{e}.down_proj.weight"),
    ]
    for ours, theirs in (("gate", "gate_proj"), ("up", "up_proj"), ("down", "down_proj")):
        rules.append(rename(f"layers.{{i}}.ffn.shared.{ours}.weight", f"{m}shared_experts.{theirs}.weight"))
    return rules


FAMILIES: dict[str, HFFamily] = {}


def _register(f: HFFamily) -> None:
    for t in f.model_types:
        FAMILIES[t] = f


_register(HFFamily(
    ("gpt2",), _gpt2_config, _gpt2_rules, ignore=(r".*\.attn\.(masked_)?bias$",),
    architecture="GPT2LMHeadModel", problems=_gpt2_problems, write_config=_gpt2_json,
))
_register(HFFamily(
    ("llama",), _llama_config, _llama_rules, ignore=(r".*rotary_emb\.inv_freq$",),
    architecture="LlamaForCausalLM", problems=_llama_problems, write_config=_llama_json,
))
_register(HFFamily(
    ("deepseek_v2",), lambda hf: _deepseek_config(hf, v3=False),
    lambda cfg, hf: _deepseek_rules(cfg, interleaved=True), ignore=(r".*rotary_emb\.inv_freq$",),
    architecture="DeepseekV2ForCausalLM", mixer="mla",
    problems=lambda cfg: _deepseek_problems(cfg, v3=False), write_config=lambda cfg: _deepseek_json(cfg, v3=False),
))
# V3's hub weights pair adjacent RoPE dims unless the config says rope_interleave=false.
_register(HFFamily(
    ("deepseek_v3",), lambda hf: _deepseek_config(hf, v3=True),
    lambda cfg, hf: _deepseek_rules(cfg, interleaved=hf.get("rope_interleave", True) is not False),
    ignore=(r".*rotary_emb\.inv_freq$",),
    architecture="DeepseekV3ForCausalLM", mixer="mla",
    problems=lambda cfg: _deepseek_problems(cfg, v3=True), write_config=lambda cfg: _deepseek_json(cfg, v3=True),
    prepare_state=_zero_score_bias,
))

# The order families are tried in when saving: an MLA model without experts fits both
# DeepSeek versions and is written as the newer one.
_SAVE_ORDER = ("gpt2", "llama", "deepseek_v3", "deepseek_v2")


# ---- loading --------------------------------------------------------------------------------

def read_config(directory: str | Path) -> tuple[dict, HFFamily, ModelConfig]:
    path = Path(directory) / "config.json"
    if not path.exists():
        raise CheckpointError(f"{directory}: no config.json (an HF-format model directory needs one)")
    try:
        hf = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    model_type = hf.get("model_type")
    if model_type not in FAMILIES:
        raise CheckpointError(
            f"{path}: model_type {model_type!r} is not supported; supported: {', '.join(sorted(FAMILIES))}"
        )
    family = FAMILIES[model_type]
    try:
        cfg = family.read_config(hf)
    except ConfigError as e:
        raise CheckpointError(f"{path}: {e}") from None
    return hf, family, cfg.replace(name=Path(directory).resolve().name, source=str(path))


def _mtp_layers(hf: dict, cfg: ModelConfig) -> int:
    return int(hf.get("num_nextn_predict_layers", 0) or 0) if hf.get("model_type") == "deepseek_v3" else 0


def convert_state(
    src: TensorSource,
    family: HFFamily,
    cfg: ModelConfig,
    hf: dict,
    expected: dict[str, torch.Size],
    dtype: torch.dtype,
    extra_ignore: tuple[str, ...] = (),
) -> dict[str, torch.Tensor]:
    """Checkpoint tensors -> our state dict, checked against `expected` (name -> shape)."""
    out: dict[str, torch.Tensor] = {}
    missing: list[str] = []
    n_experts = cfg.moe.n_experts if cfg.moe is not None else 0
    for rule in family.rules(cfg, hf):
        for i, ours in _instances(rule, expected):
            tensors, absent = [], []
            for t in rule.theirs:
                names = _their_names(t, i, n_experts)
                gone = [n for n in names if n not in src]
                if gone:
                    absent += gone
                    continue
                parts = [src.get(n) for n in names]
                tensors.append(torch.stack(parts) if "{e}" in t else parts[0])
            if absent:
                missing += [f"{n} (for {', '.join(ours)})" for n in absent]
                continue
            for k, v in zip(ours, rule.load(tensors, cfg)):
                out[k] = v
    not_covered = sorted(set(expected) - set(out))
    problems = []
    if missing:
        problems.append(f"missing tensors: {_listing(missing)}")
    if not_covered and not missing:
        problems.append(f"no checkpoint tensor maps to: {_listing(not_covered)}")
    ignore = [re.compile(p) for p in family.ignore + extra_ignore]
    unexpected = [k for k in src.unused() if not any(p.match(k) for p in ignore)]
    if unexpected:
        problems.append(f"unexpected tensors (not part of the model config.json describes): {_listing(unexpected)}")
    shapes = [
        f"{k}: expected {tuple(expected[k])}, got {tuple(v.shape)}"
        for k, v in out.items()
        if v.shape != expected[k]
    ]
    if shapes:
        problems.append(f"wrongly shaped tensors (ours): {_listing(shapes)}")
    if problems:
        raise CheckpointError(f"{src.directory}: checkpoint does not match its config:\n  " + "\n  ".join(problems))
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in out.items()}


def _listing(items: list[str], limit: int = 12) -> str:
    shown = "; ".join(items[:limit])
    return shown + (f"; ... and {len(items) - limit} more" if len(items) > limit else "")


def load_hf(directory: str | Path, dtype: torch.dtype = torch.float32, device: str | torch.device | None = None):
    from ..api import build  # the model knows nothing of files; io calls into it, not back

    hf, family, cfg = read_config(directory)
    src = TensorSource(directory)
    model = build(cfg, dtype=dtype, device="meta")
    expected = {k: v.shape for k, v in model.state_dict().items()}
    extra = []
    if cfg.tie_embeddings:
        extra.append(r"^lm_head\.weight$")  # a tied head stored anyway is the embedding
    n_mtp = _mtp_layers(hf, cfg)
    if n_mtp:
        extra.append(r"^model\.layers\.(%s)\." % "|".join(str(cfg.n_layers + j) for j in range(n_mtp)))
    state = convert_state(src, family, cfg, hf, expected, dtype, tuple(extra))
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device) if device is not None else model


# ---- saving ---------------------------------------------------------------------------------

_DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}
DEFAULT_MAX_SHARD_BYTES = 2 * 10**9


def choose_family(cfg: ModelConfig) -> HFFamily:
    """The HF model_type that expresses `cfg` exactly, decided from its parts (the free-text
    `family` field is not trusted). Raises ConfigError listing, for each HF family with
    the same kind of attention, what it cannot express."""
    candidates = [FAMILIES[t] for t in _SAVE_ORDER if FAMILIES[t].mixer == cfg.attention.kind]
    if not candidates:
        raise ConfigError(
            f"cannot save {cfg.name!r} in HF format: attention kind {cfg.attention.kind!r} has no HF equivalent "
            f"(supported: {sorted({FAMILIES[t].mixer for t in _SAVE_ORDER})})"
        )
    found = [(f, f.problems(cfg)) for f in candidates]
    for family, problems in found:
        if not problems:
            return family
    found.sort(key=lambda fp: len(fp[1]))
    closest = len(found[0][1])
    lines = "\n  ".join(
        f"{f.model_types[0]}: " + ("; ".join(p) if len(p) <= closest + 1 else f"differs in {len(p)} parts")
        for f, p in found
    )
    raise ConfigError(
        f"cannot save {cfg.name!r} in HF format: no HF model_type expresses this config exactly, and writing "
        f"one that HF would load as a different model is refused. What each lacks:\n  {lines}"
    )


def _comparable(cfg: ModelConfig) -> ModelConfig:
    """`cfg` with what does not change the computed function made uniform: labels, knobs of
    parts the model does not use, and a missing selection bias (written as zeros)."""
    cfg = cfg.replace(name="", source="", family="")
    a = cfg.attention
    if isinstance(a, MLAConfig) and cfg.rope is not None and cfg.rope.partial != 1.0:
        cfg = cfg.replace(rope=replace(cfg.rope, partial=1.0))  # MLA rotates exactly qk_rope_head_dim
    if isinstance(a, AttentionConfig) and a.window is not None and "sliding" not in cfg.layer_types:
        cfg = cfg.replace(attention=replace(a, window=None))
    if cfg.moe is not None:
        r = cfg.moe.router
        if r.n_groups == 1:
            r = replace(r, group_score="max")
        if r.score == "sigmoid":
            r = replace(r, score_bias=True)
        cfg = cfg.replace(moe=replace(cfg.moe, router=r))
    return cfg


def _check_reads_back(cfg: ModelConfig, family: HFFamily, hf: dict) -> None:
    """The config.json we are about to write must read back as the model we have: the last
    guard against writing a checkpoint HF (and we) would load as something else."""
    try:
        got = family.read_config(hf)
    except (ConfigError, CheckpointError) as e:
        raise ConfigError(f"cannot save {cfg.name!r} as {family.model_types[0]}: its config.json would not read back ({e})") from None
    want, got = _comparable(cfg), _comparable(got)
    if got != want:
        diffs = [
            f"{f.name}: {getattr(want, f.name)!r} would read back as {getattr(got, f.name)!r}"
            for f in fields(ModelConfig)
            if getattr(want, f.name) != getattr(got, f.name)
        ]
        raise ConfigError(
            f"cannot save {cfg.name!r} as {family.model_types[0]}: its config.json would describe a different model:\n  "
            + "\n  ".join(diffs)
        )


def hf_config_json(cfg: ModelConfig, dtype: torch.dtype = torch.float32) -> tuple[HFFamily, dict[str, Any]]:
    """The HF family for `cfg` and the config.json that describes it."""
    family = choose_family(cfg)
    if dtype not in _DTYPE_NAMES:
        raise ConfigError(f"cannot save {cfg.name!r} in HF format: dtype {dtype} (expected one of {sorted(_DTYPE_NAMES.values())})")
    hf = {
        "architectures": [family.architecture],
        "model_type": family.model_types[0],
        "dtype": _DTYPE_NAMES[dtype],
        "torch_dtype": _DTYPE_NAMES[dtype],  # the name before transformers v5
        **family.write_config(cfg),
        "tie_word_embeddings": cfg.tie_embeddings,
        # a ModelConfig knows no special tokens; unset beats HF's defaults, which may lie outside the vocabulary
        "bos_token_id": None,
        "eos_token_id": None,
    }
    _check_reads_back(cfg, family, hf)
    return family, hf


def _hf_tensors(state: dict[str, torch.Tensor], family: HFFamily, cfg: ModelConfig, hf: dict):
    """Our state dict -> (checkpoint name, tensor) in our module order, through the rules'
    `save` transforms. Every tensor of ours must be claimed by a rule, or nothing is written."""
    state = family.prepare_state(state, cfg)
    plan = [(rule, i, ours) for rule in family.rules(cfg, hf) for i, ours in _instances(rule, state)]
    claimed = {k for _, _, ours in plan for k in ours}
    unclaimed = [k for k in state if k not in claimed]
    if unclaimed:
        raise ConfigError(
            f"cannot save {cfg.name!r} as {family.model_types[0]}: these tensors have no place in its checkpoint: {_listing(unclaimed)}"
        )
    order = {k: n for n, k in enumerate(state)}
    plan.sort(key=lambda p: order[p[2][0]])

    def tensors():
        for rule, i, ours in plan:
            out = rule.save([state[k] for k in ours], cfg)
            if len(out) != len(rule.theirs):
                raise RuntimeError(f"save rule for {ours} made {len(out)} tensors for {len(rule.theirs)} names")
            for template, t in zip(rule.theirs, out):
                parts = t.unbind(0) if "{e}" in template else (t,)
                yield from zip(_their_names(template, i, len(parts)), parts)

    return tensors()


def save_hf(
    model,
    directory: str | Path,
    *,
    overwrite: bool = False,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
) -> Path:
    """Write `model` as an HF transformers checkpoint (config.json + safetensors) of the
    model_type that expresses its config exactly; HF's from_pretrained loads it as the same
    function. Everything is written into a temporary directory beside `directory` and renamed
    into place, so `directory` is either complete or as it was before."""
    cfg = getattr(model, "config", None)
    if not isinstance(cfg, ModelConfig):
        raise TypeError(f"expected an archlab Transformer (with a ModelConfig), got {type(model).__name__}")
    if not isinstance(max_shard_bytes, int) or max_shard_bytes <= 0:
        raise ValueError(f"max_shard_bytes: expected a positive number of bytes, got {max_shard_bytes!r}")
    state = model.state_dict()
    dtype = next((t.dtype for t in state.values() if t.is_floating_point()), torch.float32)
    family, hf = hf_config_json(cfg, dtype)
    tensors = _hf_tensors(state, family, cfg, hf)  # checks every tensor has a place; writes nothing yet
    with atomic_directory(directory, overwrite=overwrite) as tmp:
        files = write_safetensors(tmp, tensors, max_shard_bytes)
        config_path = tmp / "config.json"
        config_path.write_text(json.dumps(hf, indent=2) + "\n")
        for f in (*files, config_path):
            fsync_path(f)
    return Path(directory).absolute()
