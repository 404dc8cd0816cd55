"""HF `deepseek_v2` and `deepseek_v3`: MLA with adjacent-pair RoPE rows, per-expert tensors.
Saving's side (exactness, config.json) is deepseek_save.py."""

from __future__ import annotations

import warnings
from typing import Callable

import torch

from ...model_config import ConfigError, MLAConfig, ModelConfig, MoEConfig, RouterConfig
from ...nn.position import interleaved_to_halves
from ..index_range import index_range
from ..mapping import Rule, Tensors, rename, same
from .core import DEEPSEEK_MOE_NAMES, CheckpointError, HFFamily, activation, get_field, in_config_json_names, register
from .deepseek_save import deepseek_json, deepseek_problems, empty_shared_expert, zero_score_bias
from .values import bool_field, finite_float, int_field
from .llama_like import flag, llama_like_config, positive_int, with_defaults
from .llama_rules import IGNORE, PRE_NORMS, decoder_rules, deepseek_moe_rules, no_shared_expert


def _deepseek_config(hf: dict, v3: bool) -> ModelConfig:
    # mlp_bias: DeepseekV2MLP's gate/up/down biases, in the dense layers and the shared
    # experts (DeepseekV2Experts has none). DeepseekV3MLP has no bias whatever config.json says.
    mlp_bias = not v3 and hf.get("mlp_bias") is not None and flag(hf, "mlp_bias")
    n_layers = positive_int(hf, "num_hidden_layers")
    first_dense = int_field(hf, "first_k_dense_replace", 0, lo=0)
    # DeepseekV2/V3DecoderLayer builds a MoE only from layer first_k_dense_replace on: with every
    # layer dense HF never routes, whatever n_group / topk_group say, so nothing of the MoE is read
    n_experts = int_field(hf, "n_routed_experts", 0, lo=0) if first_dense < n_layers else None
    if mlp_bias and n_experts and not hf.get("n_shared_experts"):
        raise CheckpointError(
            f"config.json: mlp_bias=true with n_shared_experts={hf.get('n_shared_experts')!r} is not supported: HF's "
            "zero-width shared expert still adds its down_proj bias to every MoE layer's output"
        )
    hf = with_defaults(hf, {"rms_norm_eps": 1e-6})
    moe = None
    ffn_types = None
    if n_experts:
        if v3:
            router = RouterConfig(
                score="sigmoid",
                norm_topk=bool_field(hf, "norm_topk_prob", True),
                scale=finite_float(hf, "routed_scaling_factor", 1.0),
                n_groups=int_field(hf, "n_group", 1),
                topk_groups=int_field(hf, "topk_group", 1),
                # groups ranked by their two best experts; with one group there is nothing to rank
                group_score="top2_sum" if int_field(hf, "n_group", 1) > 1 else "max",
                score_bias=True,
            )
        else:
            method = hf.get("topk_method", "greedy")
            if method not in ("greedy", "group_limited_greedy"):
                raise CheckpointError(f"config.json: topk_method={method!r} is not supported for deepseek_v2")
            grouped = method == "group_limited_greedy"
            n_groups = int_field(hf, "n_group", 1) if grouped else 1
            topk_groups = int_field(hf, "topk_group", 1) if grouped else 1
            # DeepseekV2TopkRouter zeroes the dropped groups' scores, DeepSeek-V3 excludes them:
            # the two differ only when top-k needs more experts than the kept groups hold
            # (RouterConfig.dropped_groups), and only then is it said, so that the published
            # configs read as the presets do
            overflow = n_groups > 1 and int(get_field(hf, "num_experts_per_tok")) > topk_groups * int(n_experts) // n_groups
            if hf.get("norm_topk_prob"):
                # DeepSeek-V2's own modeling_deepseek.py (MoEGate) renormalises the top-k weights when
                # norm_topk_prob and top_k > 1, and then does *not* apply routed_scaling_factor; HF's
                # DeepseekV2TopkRouter ignores norm_topk_prob and always scales. We follow HF, the
                # reference our parity is proven against (and what the deepseek_v2 writer assumes);
                # both published V2 configs say false, where all three agree.
                warnings.warn(
                    "norm_topk_prob=true in a deepseek_v2 config.json is ignored, as HF transformers' "
                    "DeepseekV2TopkRouter ignores it: the weights are the top-k softmax scores times "
                    "routed_scaling_factor (DeepSeek-V2's own modeling_deepseek.py would renormalise them instead, "
                    "without routed_scaling_factor)",
                    stacklevel=2,
                )
            router = RouterConfig(
                score="softmax",
                norm_topk=False,  # DeepseekV2TopkRouter: never renormalised (see the warning above)
                scale=finite_float(hf, "routed_scaling_factor", 1.0),
                n_groups=n_groups,
                topk_groups=topk_groups,
                group_score="max",
                dropped_groups="zeroed" if overflow else "excluded",
            )
        try:
            moe = MoEConfig(
                n_experts=int(n_experts),
                top_k=get_field(hf, "num_experts_per_tok"),
                hidden=get_field(hf, "moe_intermediate_size"),
                n_shared=int_field(hf, "n_shared_experts", 0, lo=0),
                shared_bias=mlp_bias,
                activation=activation(hf, "hidden_act"),
                router=router,
            )
        except ConfigError as e:
            raise in_config_json_names(e, DEEPSEEK_MOE_NAMES) from None
        freq = hf.get("moe_layer_freq", 1)
        if freq not in (1, None):
            # DeepSeek's own modeling_deepseek.py makes layer i MoE only when i % moe_layer_freq == 0;
            # HF's DeepseekV2/V3DecoderLayer reads first_k_dense_replace alone. We follow HF, the
            # reference our parity is proven against and what wrote the checkpoints it loads (every
            # published DeepSeek config says 1, where the two agree).
            warnings.warn(
                f"moe_layer_freq={freq!r} in config.json is ignored, as HF transformers ignores it: every layer from "
                f"first_k_dense_replace ({first_dense}) on is MoE (DeepSeek's own modeling_deepseek.py would make "
                f"only the layers i with i % {freq} == 0 MoE)",
                stacklevel=2,
            )
        ffn_types = tuple("moe" if i >= first_dense else "dense" for i in range(n_layers))
    attention = MLAConfig(
        n_heads=get_field(hf, "num_attention_heads"),
        q_lora_rank=hf.get("q_lora_rank"),
        kv_lora_rank=get_field(hf, "kv_lora_rank"),
        qk_nope_head_dim=get_field(hf, "qk_nope_head_dim"),
        qk_rope_head_dim=get_field(hf, "qk_rope_head_dim"),
        v_head_dim=get_field(hf, "v_head_dim"),
        bias=bool_field(hf, "attention_bias", False),
    )
    return llama_like_config(hf, family="deepseek", n_layers=n_layers, attention=attention, moe=moe, ffn_types=ffn_types,
                             ffn={"bias": mlp_bias})


def _rope_perm(cfg: ModelConfig, inverse: bool) -> torch.Tensor:
    """Adjacent-pair -> rotate-half order of the qk_rope_head_dim RoPE rows (or back)."""
    perm = interleaved_to_halves(cfg.resolved_attention.qk_rope_head_dim)
    return perm.argsort() if inverse else perm


def _head_rope_perm(cfg: ModelConfig, inverse: bool) -> Callable[[Tensors, ModelConfig], Tensors]:
    """Permute the RoPE rows of each head of a query projection between adjacent-pair and
    rotate-half layout (rows per head: qk_nope_head_dim, then qk_rope_head_dim)."""
    a, perm = cfg.resolved_attention, _rope_perm(cfg, inverse)

    def f(ts: Tensors, cfg: ModelConfig) -> Tensors:
        per_head = ts[0].view(a.n_heads, a.qk_head_dim, -1)
        out = torch.cat((per_head[:, : a.qk_nope_head_dim], per_head[:, a.qk_nope_head_dim :][:, perm]), dim=1)
        return [out.reshape(ts[0].shape)]

    return f


def _tail_rope_perm(cfg: ModelConfig, inverse: bool) -> Callable[[Tensors, ModelConfig], Tensors]:
    """Same for the shared RoPE key: the last qk_rope_head_dim rows of wkv_a (and its bias)."""
    r, perm = cfg.resolved_attention.kv_lora_rank, _rope_perm(cfg, inverse)
    return lambda ts, cfg: [torch.cat((ts[0][:r], ts[0][r:][perm]), dim=0)]


def _deepseek_rules(cfg: ModelConfig, interleaved: bool) -> list[Rule]:
    names = [
        ("wq_a.weight", "q_a_proj.weight"), ("wq_a.bias", "q_a_proj.bias"), ("q_norm.weight", "q_a_layernorm.weight"),
        ("kv_norm.weight", "kv_a_layernorm.weight"), ("wkv_b.weight", "kv_b_proj.weight"),
        ("wo.weight", "o_proj.weight"), ("wo.bias", "o_proj.bias"),
    ]
    rules = decoder_rules(PRE_NORMS, attn=names)
    p = "model.layers.{i}.self_attn."
    # Adjacent-pair RoPE checkpoints are permuted to our rotate-half layout; q·k is unchanged.
    q_load, q_save = (_head_rope_perm(cfg, False), _head_rope_perm(cfg, True)) if interleaved else (same, same)
    kv_load, kv_save = (_tail_rope_perm(cfg, False), _tail_rope_perm(cfg, True)) if interleaved else (same, same)
    rules += [
        rename("layers.{i}.attn.wq.weight", p + "q_proj.weight", q_load, q_save),
        rename("layers.{i}.attn.wq_b.weight", p + "q_b_proj.weight", q_load, q_save),
        rename("layers.{i}.attn.wkv_a.weight", p + "kv_a_proj_with_mqa.weight", kv_load, kv_save),
        rename("layers.{i}.attn.wkv_a.bias", p + "kv_a_proj_with_mqa.bias", kv_load, kv_save),
    ]
    # per-expert tensors as the hub holds them, or fused as HF v5 holds them in memory
    return rules + deepseek_moe_rules()


def _mtp_ignore(hf: dict, cfg: ModelConfig) -> list[str]:
    """DeepSeek-V3 checkpoints carry their multi-token-prediction layers after the last one."""
    n = hf.get("num_nextn_predict_layers", 0) or 0
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise CheckpointError(f"config.json: num_nextn_predict_layers must be a non-negative integer, got {n!r}")
    return [r"^model\.layers\.%s\." % index_range(cfg.n_layers, cfg.n_layers + n)] if n else []


# V3 before V2: an MLA model without experts fits both and is written as the newer one.
# V3's hub weights pair adjacent RoPE dims unless the config says rope_interleave=false.
register(HFFamily(
    # Kimi K2's release says model_type "kimi_k2" for DeepSeek-V3's architecture
    ("deepseek_v3", "kimi_k2"), lambda hf: _deepseek_config(hf, v3=True),
    lambda cfg, hf: _deepseek_rules(cfg, interleaved=hf.get("rope_interleave", True) is not False), ignore=IGNORE,
    architecture="DeepseekV3ForCausalLM", mixer="mla",
    problems=lambda cfg: deepseek_problems(cfg, v3=True), write_config=lambda cfg: deepseek_json(cfg, v3=True),
    prepare_state=zero_score_bias, extra_ignore=_mtp_ignore, empty_tensors=no_shared_expert,
))
register(HFFamily(
    ("deepseek_v2",), lambda hf: _deepseek_config(hf, v3=False),
    lambda cfg, hf: _deepseek_rules(cfg, interleaved=True), ignore=IGNORE,
    architecture="DeepseekV2ForCausalLM", mixer="mla",
    problems=lambda cfg: deepseek_problems(cfg, v3=False), write_config=lambda cfg: deepseek_json(cfg, v3=False),
    prepare_state=empty_shared_expert, empty_tensors=no_shared_expert,
))
