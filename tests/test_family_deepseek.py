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


def _deepseek_v2_gate(router, hidden_states):
    """DeepseekV2TopkRouter.forward as DeepSeek-V2's own MoEGate computes it (modeling_deepseek.py
    of deepseek-ai/DeepSeek-V2): with norm_topk_prob and top_k > 1 the top-k softmax weights are
    divided by their sum (+1e-20) and not scaled; otherwise scaled by routed_scaling_factor."""
    import torch.nn.functional as F

    h = hidden_states.view(-1, router.hidden_dim)
    logits = F.linear(h.float(), router.weight.float())
    w, idx = torch.topk(logits.softmax(dim=-1, dtype=torch.float32), k=router.top_k, dim=-1, sorted=False)
    return logits, w / (w.sum(dim=-1, keepdim=True) + 1e-20), idx


def test_v2_norm_topk_prob_follows_deepseeks_code_with_a_warning(tmp_path, monkeypatch):
    """HF's DeepseekV2 ignores norm_topk_prob; DeepSeek's code renormalises (and then does not
    scale). We follow the authors, warn, and equal HF with DeepSeek's gate patched in."""
    from transformers.models.deepseek_v2 import modeling_deepseek_v2 as m

    hf = _deepseek("DeepseekV2Config", q_lora_rank=None, n_routed_experts=6, num_experts_per_tok=3, n_shared_experts=1,
                   topk_method="greedy", norm_topk_prob=True, routed_scaling_factor=2.0)()
    with pytest.warns(UserWarning, match=r"norm_topk_prob=true.*routed_scaling_factor.*HF"):
        ref, ours = load_pair(hf, tmp_path, seed=5)
    r = ours.config.moe.router
    assert r.norm_topk and r.scale == 1.0
    as_hf = max_logit_diff(ref, ours, hf.vocab_size, SHAPES)
    monkeypatch.setattr(m.DeepseekV2TopkRouter, "forward", _deepseek_v2_gate)
    d = max_logit_diff(ref, ours, hf.vocab_size, SHAPES)
    assert d < ATOL, f"max |logit difference| from DeepSeek's formula {d:.2e}"
    assert as_hf > 100 * ATOL, as_hf  # the two formulas differ here: the comparison above proves something
