"""HF `mistral` and `mixtral`: the Llama block without biases, sliding-window attention in
every layer when `sliding_window` is set (Mistral 7B v0.1: 4096), and in Mixtral 8 SwiGLU
experts per layer, 2 per token (softmax over all router logits, top 2, renormalised:
modeling_mixtral.py MixtralTopKRouter).

# diff with llama (modeling_mistral.py, modeling_mixtral.py)
- no `attention_bias` / `mlp_bias`: every projection is bias-free whatever config.json says.
- one window for all layers; HF ignores a `layer_types` list here (MistralConfig warns and
  builds its mask from `sliding_window` alone), so we do too.
- Mixtral checkpoints store experts as block_sparse_moe.experts.{e}.w1 (gate), w3 (up) and
  w2 (down), the router as block_sparse_moe.gate; v5 keeps them fused under mlp.experts
  (see llama_rules.expert_rules), and either layout loads.
"""

from __future__ import annotations

from ...model_config import ConfigError, ModelConfig, MoEConfig, RouterConfig
from ..mapping import Rule
from .core import LOCAL_MOE_NAMES, CheckpointError, HFFamily, activation, get_field, in_config_json_names, register
from .llama_like import llama_like_config, positive_int, with_defaults
from .llama_rules import IGNORE, PRE_NORMS, decoder_rules, expert_rules

# MistralConfig / MixtralConfig defaults that differ between the two (configuration_mistral.py,
# configuration_mixtral.py); HF fills in what config.json leaves out.
_DEFAULTS = {
    "mistral": {"num_key_value_heads": 8, "rms_norm_eps": 1e-6, "sliding_window": 4096, "hidden_act": "silu",
                "tie_word_embeddings": False},
    "mixtral": {"num_key_value_heads": 8, "rms_norm_eps": 1e-5, "sliding_window": None, "hidden_act": "silu",
                "tie_word_embeddings": False, "num_local_experts": 8, "num_experts_per_tok": 2},
}
_THETA = {"mistral": 10000.0, "mixtral": 1e6}


def _mistral_config(hf: dict) -> ModelConfig:
    model_type = hf.get("model_type")
    hf = with_defaults(hf, _DEFAULTS[model_type])
    n_layers = positive_int(hf, "num_hidden_layers")
    window = hf.get("sliding_window")
    if window is not None and (not isinstance(window, int) or isinstance(window, bool) or window <= 0):
        raise CheckpointError(f"config.json: sliding_window must be null or a positive integer, got {window!r}")
    act = activation(hf, "hidden_act")
    hidden = positive_int(hf, "intermediate_size")
    moe = None
    if model_type == "mixtral":
        # v5 maps num_experts onto num_local_experts (MixtralConfig.attribute_map)
        n_experts = hf.get("num_local_experts") if "num_experts" not in hf else hf["num_experts"]
        try:
            moe = MoEConfig(
                n_experts=n_experts, top_k=get_field(hf, "num_experts_per_tok"), hidden=hidden, activation=act,
                router=RouterConfig(score="softmax", norm_topk=True),
            )
        except (ConfigError, TypeError) as e:
            raise in_config_json_names(e, LOCAL_MOE_NAMES, "num_local_experts / num_experts_per_tok") from None
    return llama_like_config(
        hf, family="mistral", theta=_THETA[model_type], n_layers=n_layers,
        attention={"qkv_bias": False, "out_bias": False, "window": window},
        # Mixtral's intermediate_size is each expert's width; no layer is dense
        ffn={"hidden": hidden, "activation": act}, moe=moe,
        layer_types=("sliding" if window is not None else "global",) * n_layers,
    )


def _mixtral_rules(cfg: ModelConfig, hf: dict) -> list[Rule]:
    return decoder_rules(PRE_NORMS) + expert_rules("model.layers.{i}.block_sparse_moe.", ("w1", "w3", "w2"))


register(HFFamily(("mistral",), _mistral_config, lambda cfg, hf: decoder_rules(PRE_NORMS), ignore=IGNORE))
register(HFFamily(("mixtral",), _mistral_config, _mixtral_rules, ignore=IGNORE))
