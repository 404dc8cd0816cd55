"""BLOOM (HF `bloom`): ALiBi, embedding LayerNorm, per-head fused QKV. The checks every family
passes run over its cases in test_families.py (cases in families.py); here, BLOOM's own."""

from __future__ import annotations

import torch
from hf_reference import ATOL

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
