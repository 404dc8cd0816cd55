"""HF `qwen3` (QK-norm per head, head_dim independent of hidden_size) and `qwen3_moe` (routed
experts, dense layers by mlp_only_layers / decoder_sparse_step): archlab.load of tiny random
checkpoints computes HF transformers' logits, caches and greedy tokens."""

from __future__ import annotations

import pytest
import torch
from hf_reference import (
    ATOL,
    assert_cached_decoding_equals_full_forward,
    assert_covers_every_layer_kind,
    assert_greedy_equals_hf,
    assert_same_param_count,
    load_pair,
    make_hf,
    max_logit_diff,
    record,
    record_cache_bytes,
)

import archlab
from archlab.errors import CheckpointError
from archlab.io.hf import FAMILIES

transformers = pytest.importorskip("transformers")

BASE = dict(vocab_size=301, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=128, bos_token_id=0, eos_token_id=1)

CASES = {
    # Qwen3-0.6B's shape: 4 heads x 16 = 64 > hidden 32, GQA, tied head
    "qwen3-headdim-tied": (lambda: transformers.Qwen3Config(
        **BASE, num_key_value_heads=2, head_dim=16, tie_word_embeddings=True), "qwen3-0.6b"),
    # attention_bias and Qwen3's sliding layers (from max_window_layers on), window 6
    "qwen3-bias-sliding": (lambda: transformers.Qwen3Config(
        **{**BASE, "num_hidden_layers": 3}, num_key_value_heads=1, head_dim=12, attention_bias=True,
        use_sliding_window=True, sliding_window=6, max_window_layers=1,
        rope_parameters={"rope_type": "default", "rope_theta": 1000.0}), "qwen3-0.6b"),
    # Qwen3-30B-A3B's shape: every layer MoE, renormalised top-k (8 experts, top 2)
    "qwen3moe-8e-top2-norm": (lambda: transformers.Qwen3MoeConfig(
        **BASE, num_key_value_heads=2, head_dim=16, num_experts=8, num_experts_per_tok=2,
        moe_intermediate_size=24, norm_topk_prob=True), "qwen3-30b-a3b"),
    # dense layers among the MoE ones (decoder_sparse_step 2, mlp_only_layers), no renormalising,
    # and a window on every layer (Qwen3MoE applies sliding_window to all layers)
    "qwen3moe-mixed-sliding": (lambda: transformers.Qwen3MoeConfig(
        **{**BASE, "num_hidden_layers": 4}, num_key_value_heads=4, num_experts=6, num_experts_per_tok=3,
        moe_intermediate_size=16, norm_topk_prob=False, decoder_sparse_step=2, mlp_only_layers=[3],
        use_sliding_window=True, sliding_window=9), None),
}


@pytest.mark.parametrize("name", CASES)
def test_equals_hf(name, tmp_path):
    make, preset = CASES[name]
    hf_config = make()
    ref, ours = load_pair(hf_config, tmp_path, seed=11)
    cfg, vocab = ours.config, hf_config.vocab_size
    if preset is not None:
        assert_covers_every_layer_kind(cfg, preset)
    d = max_logit_diff(ref, ours, vocab)
    record(cfg.family, logit_diff=d)
    assert d < ATOL, f"{name}: max |logit difference| {d:.2e}"
    assert_same_param_count(ref, ours)
    assert_cached_decoding_equals_full_forward(ours, vocab)
    assert_greedy_equals_hf(ref, ours, vocab)
    record_cache_bytes(cfg.family, ours)


def test_layer_plans_follow_hf():
    """Which layers slide and which are MoE, as HF's config classes decide them."""
    dense = FAMILIES["qwen3"].read_config(CASES["qwen3-bias-sliding"][0]().to_dict())
    assert dense.layer_types == ("global", "sliding", "sliding") and dense.attention.window == 6
    # without layer_types in config.json: Qwen3Config's rule (sliding from max_window_layers on)
    for first in (0, 2, 5):
        hf = {**CASES["qwen3-bias-sliding"][0]().to_dict(), "max_window_layers": first}
        del hf["layer_types"]
        want = [{"full_attention": "global", "sliding_attention": "sliding"}[t]
                for t in transformers.Qwen3Config.from_dict(hf).layer_types]
        assert list(FAMILIES["qwen3"].read_config(hf).layer_types) == want
        assert set(want) == ({"sliding"} if first == 0 else {"global"} if first == 5 else {"global", "sliding"})
    mixed = FAMILIES["qwen3_moe"].read_config(CASES["qwen3moe-mixed-sliding"][0]().to_dict())
    assert mixed.ffn_types == ("dense", "moe", "dense", "dense")
    assert mixed.layer_types == ("sliding",) * 4 and mixed.moe.router.norm_topk is False
    # the hub's name for the expert count (attribute_map maps it onto num_local_experts)
    hub = {**CASES["qwen3moe-8e-top2-norm"][0]().to_dict(), "num_experts": 8}
    hub.pop("num_local_experts", None)
    assert FAMILIES["qwen3_moe"].read_config(hub).moe.n_experts == 8


def test_qwen3_head_dim_defaults_to_128():
    """Qwen3Config's head_dim default is 128, whatever hidden_size / heads is."""
    hf = transformers.Qwen3Config(**BASE, num_key_value_heads=2).to_dict()
    hf.pop("head_dim")
    assert FAMILIES["qwen3"].read_config(hf).attention.head_dim == 128
    assert transformers.Qwen3Config(**BASE, num_key_value_heads=2).head_dim == 128


def test_qwen3moe_fused_experts_load(tmp_path):
    make, _ = CASES["qwen3moe-8e-top2-norm"]
    hf_config = make()
    ref = make_hf(hf_config, seed=4)
    ref.save_pretrained(tmp_path, save_original_format=False)
    ours = archlab.load(tmp_path)
    assert max_logit_diff(ref, ours, hf_config.vocab_size) < ATOL


def test_sliding_layers_without_a_window_are_refused():
    hf = transformers.Qwen3Config(**BASE, num_key_value_heads=2).to_dict()
    hf["layer_types"] = ["full_attention", "sliding_attention"]
    with pytest.raises(CheckpointError, match="use_sliding_window"):
        FAMILIES["qwen3"].read_config(hf)
    hf["layer_types"] = ["full_attention", "chunked_attention"]
    with pytest.raises(CheckpointError, match="layer_types"):
        FAMILIES["qwen3"].read_config(hf)


@pytest.mark.parametrize("preset", ["qwen3-0.6b", "qwen3-30b-a3b"])
def test_tiny_preset_builds(preset):
    model = archlab.build(archlab.tiny(preset))
    with torch.no_grad():
        assert model(torch.randint(0, model.config.vocab_size, (1, 5))).shape[-1] == model.config.vocab_size
