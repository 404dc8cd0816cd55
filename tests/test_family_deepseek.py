"""DeepSeek-V2 / V3 (HF `deepseek_v2`, `deepseek_v3`; Kimi K2 loads through the latter). The
checks every family passes run over their cases in test_families.py (cases in families.py);
here, DeepSeek's own: configs the cases do not hold, each compared with HF on a tiny model."""

from __future__ import annotations

import pytest
import torch
from families import _deepseek
from hf_reference import ATOL, load_pair, max_logit_diff

SHAPES = ((2, 9),)


@pytest.mark.parametrize("cls", ["DeepseekV2Config", "DeepseekV3Config"])
def test_latent_norms_keep_their_own_eps(cls, tmp_path):
    """q_a_layernorm and kv_a_layernorm are built with RMSNorm's default eps (1e-6) whatever
    rms_norm_eps says; at 1e-3 using rms_norm_eps for them moved logits by ~6e-3."""
    hf = _deepseek(cls, q_lora_rank=24, n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1,
                   n_group=1, topk_group=1, rms_norm_eps=1e-3)()
    ref, ours = load_pair(hf, tmp_path, seed=3)
    d = max_logit_diff(ref, ours, hf.vocab_size, SHAPES)
    assert d < ATOL, f"max |logit difference| {d:.2e}"
    assert ours.config.norm.eps == 1e-3 and ours.config.attention.latent_norm_eps == 1e-6
