"""GLM-4.5 (HF `glm4_moe`): partial rotate-half RoPE, q/k/v biases without an o bias, QK-norm,
DeepSeek-V3-style sigmoid routing with groups, dense first layers, MTP layers ignored,
against HF transformers."""

from __future__ import annotations

import json

import pytest
import torch
from hf_reference import (
    assert_behaves_like_hf,
    ATOL,
    assert_covers_every_layer_kind,
    load_pair,
    make_hf,
    max_logit_diff,
    record,
    save_hf,
    transformers,
)
from safetensors.torch import save_file

import archlab
from archlab.io.hf import FAMILIES

FAMILY = "glm4_moe"


def glm_config(**kw):
    # GLM-4.5's shape in small: more query heads x head_dim than width (6 x 16 > 64), GQA, q/k/v
    # biases and QK-norm, half of each head rotated (HF's default), one dense layer then MoE with
    # a shared expert, routing limited to 1 of 2 groups, scaled by 2.5
    base = {"vocab_size": 301, "hidden_size": 64, "intermediate_size": 96, "moe_intermediate_size": 24, "num_hidden_layers": 2,
                "num_attention_heads": 6, "num_key_value_heads": 2, "head_dim": 16, "n_routed_experts": 8, "num_experts_per_tok": 2,
                "n_group": 2, "topk_group": 1, "n_shared_experts": 1, "first_k_dense_replace": 1, "routed_scaling_factor": 2.5,
                "norm_topk_prob": True, "use_qk_norm": True, "attention_bias": True, "max_position_embeddings": 256,
                "bos_token_id": 0, "eos_token_id": 1}
    return transformers.Glm4MoeConfig(**{**base, **kw})


CASES = {
    "glm45-shape": glm_config(),
    # GLM-4.5-Air-like: no QK-norm; and a quarter of the head rotated, 2 shared experts, no
    # renormalisation, no groups, two dense layers, tied embeddings
    "air-quarter-rope": glm_config(
        num_hidden_layers=3, first_k_dense_replace=2, use_qk_norm=False, n_group=1, topk_group=1, n_shared_experts=2,
        norm_topk_prob=False, routed_scaling_factor=1.0, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 1000.0, "partial_rotary_factor": 0.25}),
}


@pytest.fixture(scope="module", params=list(CASES))
def pair(request, tmp_path_factory):
    return request.param, load_pair(CASES[request.param], tmp_path_factory.mktemp("glm4_moe"))


def test_logits_equal_hf(pair):
    name, (ref, ours) = pair
    c = ours.config
    assert c.attention.qkv_bias and not c.attention.out_bias
    assert c.rope.partial == (0.5 if name == "glm45-shape" else 0.25)
    assert (c.attention.qk_norm is not None) == (name == "glm45-shape")
    assert_covers_every_layer_kind(c, "glm-4.5")
    d = max_logit_diff(ref, ours, c.vocab_size)
    record(FAMILY, logit_diff=d)
    assert d < ATOL


def test_param_count_cache_and_generation(pair):
    _, (ref, ours) = pair
    assert_behaves_like_hf(FAMILY, ref, ours)


def test_fused_expert_layout_loads(tmp_path):
    """save_pretrained(save_original_format=False) keeps v5's fused gate_up_proj (E, 2F, D)."""
    ref = make_hf(glm_config(), seed=4)
    save_hf(ref, tmp_path, save_original_format=False)
    ours = archlab.load(tmp_path).eval()
    ids = torch.randint(0, 301, (2, 13))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), ref(ids).logits, atol=ATOL, rtol=0)


def test_mtp_layers_are_ignored(tmp_path):
    """GLM-4.5 stores its multi-token-prediction layer after the last one (model.layers.92);
    HF's model has no place for it, and neither has ours."""
    cfg = glm_config(num_nextn_predict_layers=1)
    ref = make_hf(cfg)
    save_hf(ref, tmp_path)
    mtp = {f"model.layers.2.{k}": torch.randn(64, 128) for k in ("eh_proj.weight",)}
    mtp["model.layers.2.enorm.weight"] = torch.ones(64)
    save_file(mtp, str(tmp_path / "mtp.safetensors"))
    ours = archlab.load(tmp_path)
    ids = torch.randint(0, 301, (1, 7))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), ref(ids).logits, atol=ATOL, rtol=0)
    # without MTP layers in config.json, the same tensors are unexpected
    hf = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**hf, "num_nextn_predict_layers": 0}))
    with pytest.raises(archlab.CheckpointError, match=r"unexpected tensors.*model\.layers\.2\.eh_proj"):
        archlab.load(tmp_path)


def test_preset_reads_like_the_hub_config_json():
    """glm-4.5 equals what our reader makes of zai-org/GLM-4.5's config.json (v4 field names)."""
    hf = {
        "architectures": ["Glm4MoeForCausalLM"], "attention_bias": True, "attention_dropout": 0.0,
        "pad_token_id": 151329, "eos_token_id": [151329, 151336, 151338], "head_dim": 128, "hidden_act": "silu",
        "hidden_size": 5120, "partial_rotary_factor": 0.5, "initializer_range": 0.02, "intermediate_size": 12288,
        "max_position_embeddings": 131072, "model_type": "glm4_moe", "moe_intermediate_size": 1536,
        "norm_topk_prob": True, "num_attention_heads": 96, "n_group": 1, "topk_group": 1, "n_routed_experts": 160,
        "n_shared_experts": 1, "routed_scaling_factor": 2.5, "num_experts_per_tok": 8, "first_k_dense_replace": 3,
        "num_hidden_layers": 92, "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_scaling": None,
        "rope_theta": 1000000, "num_nextn_predict_layers": 1, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "use_cache": True, "use_qk_norm": True, "vocab_size": 151552,
    }
    blank = {"name": "", "source": "", "family": ""}
    want = archlab.config("glm-4.5").resolved().replace(**blank)
    assert FAMILIES["glm4_moe"].read_config(hf).resolved().replace(**blank) == want
    # Glm4MoeConfig rotates half of each head when config.json does not say
    unsaid = {k: v for k, v in hf.items() if k != "partial_rotary_factor"}
    assert FAMILIES["glm4_moe"].read_config(unsaid).resolved().replace(**blank) == want


def test_tiny_preset_builds_and_counts():
    cfg = archlab.tiny("glm-4.5")
    assert cfg.rope.partial == 0.5 and cfg.moe.router.score_bias
    model = archlab.build(cfg)
    assert archlab.analyze(cfg).total_params == sum(p.numel() for p in archlab.build(cfg, device="meta").parameters())
    with torch.no_grad():
        assert model(torch.randint(0, cfg.vocab_size, (2, 9))).shape == (2, 9, cfg.vocab_size)


def test_bad_config_fields_name_the_field(tmp_path):
    save_hf(make_hf(glm_config()), tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    odd_rotary = {"rope_parameters": {**cfg["rope_parameters"], "partial_rotary_factor": 0.2}}  # 3 of 16 dims: odd
    for bad, field in (({"use_qk_norm": "yes"}, "use_qk_norm"),
                       ({"n_group": 3}, "n_group"),
                       ({"first_k_dense_replace": -1}, "first_k_dense_replace"),
                       ({"hidden_act": "mish"}, "hidden_act"),
                       ({"num_attention_heads": 5}, "num_attention_heads|n_kv_heads"),
                       (odd_rotary, "partial")):
        (tmp_path / "config.json").write_text(json.dumps({**cfg, **bad}))
        with pytest.raises(archlab.CheckpointError, match=field):
            archlab.load(tmp_path)
