"""Kimi K2: DeepSeek-V3's architecture with its own numbers, loaded through HF `deepseek_v3`.

The tiny HF model is built from the kimi-k2 preset's own tiny shape (no group limit, one dense
layer first, its routed_scaling_factor, one shared expert, YaRN with beta_fast = beta_slow = 1),
so the parity covers the preset's semantics, not a DeepSeek-V3 stand-in."""

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
    max_logit_diff,
    record,
    record_cache_bytes,
    transformers,
)

import archlab

FAMILY = "kimi"
VOCAB = 301


def kimi_hf_config():
    """HF DeepseekV3Config with archlab.tiny("kimi-k2")'s shape, field by field."""
    c = archlab.tiny("kimi-k2")
    a, m, s = c.attention, c.moe, c.rope.scaling
    assert m.router.n_groups == 1 and m.router.topk_groups == 1 and m.router.scale == 2.827
    return transformers.DeepseekV3Config(
        vocab_size=VOCAB, hidden_size=c.d_model, intermediate_size=c.ffn.hidden, moe_intermediate_size=m.hidden,
        num_hidden_layers=c.n_layers, num_attention_heads=a.n_heads, num_key_value_heads=a.n_heads,
        q_lora_rank=a.q_lora_rank, kv_lora_rank=a.kv_lora_rank, qk_nope_head_dim=a.qk_nope_head_dim,
        qk_rope_head_dim=a.qk_rope_head_dim, v_head_dim=a.v_head_dim,
        n_routed_experts=m.n_experts, num_experts_per_tok=m.top_k, n_shared_experts=m.n_shared,
        routed_scaling_factor=m.router.scale, norm_topk_prob=m.router.norm_topk, n_group=m.router.n_groups,
        topk_group=m.router.topk_groups, first_k_dense_replace=[s.ffn for s in c.layers].index("moe"),
        max_position_embeddings=c.max_seq_len, rms_norm_eps=c.norm.eps, hidden_act=c.ffn.activation,
        rope_parameters={"rope_type": "yarn", "rope_theta": c.rope.theta, "factor": s.factor,
                         "original_max_position_embeddings": s.original_max_seq_len, "beta_fast": s.beta_fast,
                         "beta_slow": s.beta_slow, "mscale": s.mscale, "mscale_all_dim": s.mscale_all_dim},
        bos_token_id=0, eos_token_id=1,
    )


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    ref, ours = load_pair(kimi_hf_config(), tmp_path_factory.mktemp("kimi"))
    # the deepseek_v3 reader labels what it reads "deepseek"; the summary rows here are Kimi's
    ours.config = ours.config.replace(family=FAMILY)
    return ref, ours


def test_loaded_config_is_the_tiny_preset(pair):
    """What the deepseek_v3 reader makes of the HF config is exactly the tiny kimi-k2 preset."""
    _, ours = pair
    want = archlab.tiny("kimi-k2", vocab_size=VOCAB)
    assert ours.config.resolved().replace(name="", source="", family="") == want.resolved().replace(name="", source="", family="")


def test_logits_equal_hf(pair):
    ref, ours = pair
    assert_covers_every_layer_kind(ours.config, "kimi-k2")
    d = max_logit_diff(ref, ours, VOCAB)
    record(FAMILY, logit_diff=d)
    assert d < ATOL


def test_param_count_cache_and_generation(pair):
    ref, ours = pair
    assert_same_param_count(ref, ours)
    assert_cached_decoding_equals_full_forward(ours, VOCAB)
    assert_greedy_equals_hf(ref, ours, VOCAB)
    record_cache_bytes(FAMILY, ours)


def test_tiny_covers_kimi_layer_kinds_and_builds():
    cfg = archlab.tiny("kimi-k2")
    assert_covers_every_layer_kind(cfg, "kimi-k2")
    assert [s.ffn for s in cfg.layers] == ["dense", "moe"]
    model = archlab.build(cfg)
    assert archlab.analyze(cfg).total_params == sum(p.numel() for p in archlab.build(cfg, device="meta").parameters())
    with torch.no_grad():
        assert model(torch.randint(0, cfg.vocab_size, (2, 9))).shape == (2, 9, cfg.vocab_size)
