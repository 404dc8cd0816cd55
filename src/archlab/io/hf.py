"""HF transformers format <-> archlab, per model_type.

Each family is an `HFFamily`: how to read its config.json into a ModelConfig, and a list
of `Rule`s pairing our tensor names with the checkpoint's (with the layout changes in
between: GPT-2's transposed Conv1D weights and fused qkv, DeepSeek's adjacent-pair RoPE
rows, per-expert tensors stacked into one). Loading checks the whole checkpoint against
what the config says the model holds and reports every missing, unexpected or wrongly
shaped tensor at once; nothing is loaded partially.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

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
from .safetensors_dir import CheckpointError, TensorSource

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


@dataclass
class HFFamily:
    model_types: tuple[str, ...]
    read_config: Callable[[dict[str, Any]], ModelConfig]
    rules: Callable[[ModelConfig, dict], list[Rule]]  # (config, config.json) -> rules
    # checkpoint tensors that carry nothing the model needs (recomputed buffers and the like)
    ignore: tuple[str, ...] = ()


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


_register(HFFamily(("gpt2",), _gpt2_config, _gpt2_rules, ignore=(r".*\.attn\.(masked_)?bias$",)))
_register(HFFamily(("llama",), _llama_config, _llama_rules, ignore=(r".*rotary_emb\.inv_freq$",)))
_register(HFFamily(
    ("deepseek_v2",), lambda hf: _deepseek_config(hf, v3=False),
    lambda cfg, hf: _deepseek_rules(cfg, interleaved=True), ignore=(r".*rotary_emb\.inv_freq$",),
))
# V3's hub weights pair adjacent RoPE dims unless the config says rope_interleave=false.
_register(HFFamily(
    ("deepseek_v3",), lambda hf: _deepseek_config(hf, v3=True),
    lambda cfg, hf: _deepseek_rules(cfg, interleaved=hf.get("rope_interleave", True) is not False),
    ignore=(r".*rotary_emb\.inv_freq$",),
))


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
        regexes = [_template_regex(t) for t in rule.ours]
        has_i = "{i}" in rule.ours[0]
        layer_ids = sorted({int(m["i"]) for k in expected if (m := regexes[0].match(k))}) if has_i else [None]
        for i in layer_ids:
            ours = [t.format(i=i) for t in rule.ours]
            if not all(k in expected for k in ours):
                continue
            tensors, absent = [], []
            for t in rule.theirs:
                names = [t.format(i=i, e=e) for e in range(n_experts)] if "{e}" in t else [t.format(i=i)]
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
