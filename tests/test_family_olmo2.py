"""HF `olmo2` (norms on the sublayer outputs, QK-norm over the whole projection): archlab.load
of tiny random checkpoints computes HF transformers' logits, caches and greedy tokens."""

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
)

import archlab
from archlab.io.hf import FAMILIES

transformers = pytest.importorskip("transformers")

BASE = dict(vocab_size=301, hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=128, bos_token_id=0, eos_token_id=1, pad_token_id=0)

CASES = {
    # OLMo-2-7B's shape: MHA, untied, theta 500K
    "olmo2-mha": lambda: transformers.Olmo2Config(
        **BASE, num_key_value_heads=4, rope_parameters={"rope_type": "default", "rope_theta": 500000.0}),
    # GQA (k_norm then spans only the 2 kv heads), attention biases, tied head
    "olmo2-gqa-bias-tied": lambda: transformers.Olmo2Config(
        **{**BASE, "num_hidden_layers": 3}, num_key_value_heads=2, attention_bias=True, tie_word_embeddings=True),
}


@pytest.mark.parametrize("name", CASES)
def test_equals_hf(name, tmp_path):
    hf_config = CASES[name]()
    ref, ours = load_pair(hf_config, tmp_path, seed=13)
    cfg, vocab = ours.config, hf_config.vocab_size
    assert_covers_every_layer_kind(cfg, "olmo-2-7b")
    assert cfg.block == "output" and cfg.attention.qk_norm_scope == "all"
    d = max_logit_diff(ref, ours, vocab)
    record(cfg.family, logit_diff=d)
    assert d < ATOL, f"{name}: max |logit difference| {d:.2e}"
    assert_same_param_count(ref, ours)
    assert_cached_decoding_equals_full_forward(ours, vocab)
    assert_greedy_equals_hf(ref, ours, vocab)
    record_cache_bytes(cfg.family, ours)


def test_qk_norm_spans_the_projection():
    cfg = FAMILIES["olmo2"].read_config(CASES["olmo2-gqa-bias-tied"]().to_dict())
    model = archlab.build(cfg, device="meta")
    attn = model.layers[0].attn
    assert attn.q_norm.weight.shape == (4 * 12,) and attn.k_norm.weight.shape == (2 * 12,)


def test_tiny_preset_builds():
    model = archlab.build(archlab.tiny("olmo-2-7b"))
    with torch.no_grad():
        assert model(torch.randint(0, model.config.vocab_size, (1, 5))).shape[-1] == model.config.vocab_size
