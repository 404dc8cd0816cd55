"""HF `qwen2` (q/k/v biases, sliding layers from max_window_layers on) and `qwen2_moe` (routed
experts beside a sigmoid-gated shared expert; its own sliding rule). The checks every family
passes run over their cases in test_families.py (cases in families_qwen2.py); here, Qwen2's own."""

from __future__ import annotations

from dataclasses import replace

import pytest
from families import case
from families_qwen2 import QWEN2_BASE

from archlab.errors import CheckpointError
from archlab.io.hf import FAMILIES

transformers = pytest.importorskip("transformers")

_KINDS = {"full_attention": "global", "sliding_attention": "sliding"}


def _without_layer_types(cfg) -> dict:
    hf = cfg.to_dict()
    del hf["layer_types"]
    return hf


@pytest.mark.parametrize("model_type,cls", [("qwen2", "Qwen2Config"), ("qwen2_moe", "Qwen2MoeConfig")])
def test_layer_plan_without_layer_types_follows_hf(model_type, cls):
    """config.json without layer_types: which layers slide is what HF's config class derives,
    for each max_window_layers and with the window on or off (qwen2 slides from
    max_window_layers on, qwen2_moe on its even layers below it)."""
    seen = set()
    for on in (True, False):
        for first in (0, 1, 3, 6):
            hf = getattr(transformers, cls)(**{**QWEN2_BASE, "num_hidden_layers": 5}, num_key_value_heads=2, use_sliding_window=on,
                                            sliding_window=5, max_window_layers=first)
            want = tuple(_KINDS[t] for t in hf.layer_types)
            got = FAMILIES[model_type].read_config(_without_layer_types(hf))
            assert got.layer_types == want, (on, first)
            assert got.attention.window == (5 if "sliding" in want else None)
            seen.add(want)
    assert len(seen) > 2  # the rule was exercised, not only all-global


def test_qwen2_biases_ignore_attention_bias():
    """Qwen2Attention hard-codes bias=True on q, k, v and False on o; config.json's
    attention_bias (a Llama field) changes nothing in HF, so nothing in ours."""
    hf = {**case("qwen2-gqa-bias").hf_config().to_dict(), "attention_bias": False}
    a = FAMILIES["qwen2"].read_config(hf).attention
    assert a.qkv_bias and not a.out_bias
    model = transformers.AutoModelForCausalLM.from_config(transformers.Qwen2Config.from_dict(hf))
    assert model.model.layers[0].self_attn.q_proj.bias is not None and model.model.layers[0].self_attn.o_proj.bias is None


def test_qwen2_moe_plan_and_gate():
    """MoE layers by decoder_sparse_step and mlp_only_layers, as Qwen2MoeDecoderLayer builds
    them; the shared expert is one gated GLU of shared_expert_intermediate_size."""
    hf_cfg = case("qwen2moe-mixed-sliding").hf_config()
    cfg = FAMILIES["qwen2_moe"].read_config(hf_cfg.to_dict())
    hf_model = transformers.AutoModelForCausalLM.from_config(hf_cfg)
    want = tuple("moe" if hasattr(layer.mlp, "shared_expert_gate") else "dense" for layer in hf_model.model.layers)
    assert cfg.ffn_types == want == ("dense", "moe", "dense", "dense")
    assert cfg.moe.hidden * cfg.moe.n_shared == hf_cfg.shared_expert_intermediate_size and cfg.moe.shared_gate


def test_sliding_layers_without_use_sliding_window_are_refused():
    hf = case("qwen2-gqa-bias").hf_config().to_dict()
    hf["layer_types"] = ["sliding_attention", "full_attention"]
    hf["sliding_window"] = 4096
    with pytest.raises(CheckpointError, match="use_sliding_window"):
        FAMILIES["qwen2"].read_config(hf)
    hf["layer_types"] = ["chunked_attention", "full_attention"]
    with pytest.raises(CheckpointError, match="layer_types"):
        FAMILIES["qwen2"].read_config(hf)


_PLANS = {
    "qwen2": [("global",) * 3, ("global", "sliding", "sliding"), ("sliding",) * 3],
    "qwen2_moe": [("global",) * 4, ("sliding", "global", "sliding", "global"), ("sliding", "global", "global", "global")],
}


@pytest.mark.parametrize("model_type,cls", [("qwen2", "Qwen2Config"), ("qwen2_moe", "Qwen2MoeConfig")])
def test_saved_window_fields_follow_each_class_rule(model_type, cls):
    """The written config.json lists layer_types, which v5 reads first; its use_sliding_window
    and max_window_layers still say the same by the class's own rule (qwen2: from
    max_window_layers on, qwen2_moe: the even layers below it) wherever that rule can, so a
    reader that derives the plan (HF's config class without layer_types) gets the same layers."""
    import archlab
    from archlab.io.hf import hf_config_json

    preset = {"qwen2": "qwen2.5-7b", "qwen2_moe": "qwen2-57b-a14b"}[model_type]
    for plan in _PLANS[model_type]:
        base = archlab.tiny(preset)
        cfg = base.replace(n_layers=len(plan), layer_types=plan,
                           attention=replace(base.attention, window=8 if "sliding" in plan else None))
        family, hf = hf_config_json(cfg)
        assert hf["model_type"] == model_type
        assert hf["layer_types"] == [{v: k for k, v in _KINDS.items()}[t] for t in plan]
        derived = getattr(transformers, cls)(**{k: v for k, v in hf.items() if k != "layer_types"})
        assert derived.layer_types == hf["layer_types"], plan
        assert FAMILIES[model_type].read_config({k: v for k, v in hf.items() if k != "layer_types"}).layer_types == plan


# what a saved preset's config.json may say differently from the published one, each for a reason
_NOT_ARCHITECTURE = {
    "bos_token_id", "eos_token_id", "dtype",  # a ModelConfig knows no tokens; the weights' dtype is the model's
    "use_mrope",  # a Qwen2 config.json relic that no Qwen2 class reads
    "router_aux_loss_coef",  # a training loss weight: written as 0.0, as every writer does
}


@pytest.mark.parametrize("preset", ["qwen2.5-7b", "qwen2-57b-a14b"])
def test_saved_preset_config_is_the_published_one(preset):
    """HF's config class makes the same config of what archlab.save writes for a preset as of
    its published config.json (families_qwen2.py), but for fields that are not the model's."""
    import archlab
    from archlab.io.hf import hf_config_json
    from families import HUB_CONFIGS

    published = next(h.config for h in HUB_CONFIGS if h.preset == preset)
    _, ours = hf_config_json(archlab.config(preset))
    want = transformers.AutoConfig.for_model(**published).to_dict()
    got = transformers.AutoConfig.for_model(**ours).to_dict()
    assert got["head_dim"] == want["hidden_size"] // want["num_attention_heads"]  # written, where they derive it
    if got["model_type"] == "qwen2_moe" and not got["mlp_only_layers"]:
        assert got["intermediate_size"] != want["intermediate_size"]  # no dense layer reads it
        del got["intermediate_size"], want["intermediate_size"]
    differ = {k for k in set(want) | set(got) if want.get(k) != got.get(k)} - {"head_dim"}
    assert differ <= _NOT_ARCHITECTURE, {k: (want.get(k), got.get(k)) for k in differ - _NOT_ARCHITECTURE}
