"""BLOOM (HF `bloom`): ALiBi, embedding LayerNorm, per-head fused QKV. The checks every family
passes run over its cases in test_families.py (cases in families.py); here, BLOOM's own."""

from __future__ import annotations

import pytest
import torch
from families import bloom_config
from hf_reference import ATOL, assert_cached_decoding_equals_full_forward, load_pair, max_logit_diff

import archlab


def test_alibi_slopes_equal_bloom_for_every_head_count():
    from transformers.models.bloom.modeling_bloom import _get_alibi_slopes

    from archlab.nn.attention import alibi_slopes

    for n in (*range(1, 41), 112):
        torch.testing.assert_close(alibi_slopes(n), _get_alibi_slopes(n, torch.device("cpu")), rtol=1e-6, atol=0)


def test_left_padded_batch_logits_equal_hf(hf_pair):
    """BLOOM builds ALiBi from the attention mask (positions counted from each row's first real
    token); ours penalises query - key slot distances. The real tokens' logits must agree."""
    ref, ours = hf_pair("bloom-6heads")
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(2, 301, (3, 13), generator=g)
    pad = torch.tensor([0, 5, 12])
    mask = (torch.arange(13)[None] >= pad[:, None]).long()
    with torch.no_grad():
        expected = ref(ids, attention_mask=mask).logits
        got = ours(ids, pad=pad)
    real = mask.bool()
    assert (got[real] - expected[real]).abs().max().item() < ATOL


def test_tiny_preset_keeps_bloom_parts():
    cfg = archlab.tiny("bloom-176b")
    assert cfg.position == "alibi" and cfg.embed_norm and cfg.tie_embeddings


def test_residual_after_layernorm_equals_hf(tmp_path):
    """apply_residual_connection_post_layernorm: each sublayer adds to its normalised input
    (block "normed_residual"); logits and cached decoding."""
    ref, ours = load_pair(bloom_config(apply_residual_connection_post_layernorm=True), tmp_path, seed=4)
    assert ours.config.block == "normed_residual"
    d = max_logit_diff(ref, ours, 301, shapes=((2, 9), (1, 23)))
    assert d < ATOL, f"max |logit difference| {d:.2e}"
    assert_cached_decoding_equals_full_forward(ours, 301)


@pytest.mark.parametrize("tp", [2, 3])
def test_slow_but_exact_leaves_out_the_output_biases_as_hf(tp, tmp_path):
    """pretraining_tp > 1 with slow_but_exact: HF sums F.linear slices of self_attention.dense
    and mlp.dense_4h_to_h without their biases. We equal it, saying so."""
    with pytest.warns(UserWarning, match="slow_but_exact"):
        ref, ours = load_pair(bloom_config(pretraining_tp=tp, slow_but_exact=True), tmp_path, seed=4)
    d = max_logit_diff(ref, ours, 301, shapes=((2, 9),))
    assert d < ATOL, f"max |logit difference| {d:.2e}"
    assert ref.transformer.h[0].self_attention.dense.bias.abs().max() > 0.01  # HF's file holds real biases
    assert ours.layers[0].attn.wo.bias.abs().max() == 0 and ours.layers[1].ffn.down.bias.abs().max() == 0


def test_fast_path_with_tensor_parallel_keeps_its_biases(tmp_path):
    ref, ours = load_pair(bloom_config(pretraining_tp=4, slow_but_exact=False), tmp_path, seed=4)
    assert max_logit_diff(ref, ours, 301, shapes=((2, 9),)) < ATOL
    assert ours.layers[0].attn.wo.bias.abs().max() > 0.01
