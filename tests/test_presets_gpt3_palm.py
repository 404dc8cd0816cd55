"""GPT-3 175B and PaLM 540B: presets read from the papers (no reference implementation to run,
so registered unverified). The common preset checks (published sizes, tiny builds, cached
decoding, training) run over them elsewhere; here, what each paper states."""

from __future__ import annotations

import math

import pytest
import torch

import archlab
from archlab.catalog import verified
from archlab.model_config import INV_SQRT_D_MODEL, ConfigError


@pytest.mark.parametrize("name", ["gpt-3-175b", "palm-540b"])
def test_paper_presets_are_marked_unverified(name):
    assert not verified(name)
    assert "not verified" in archlab.config(name).source


def test_gpt3_alternates_dense_and_banded_layers():
    """Brown et al. 2020, section 2.1 and Table 2.1: 96 layers of 12288, 96 heads of 128, dense and
    locally banded attention alternating (the band as a 256-token window: an approximation)."""
    c = archlab.config("gpt-3-175b")
    kinds = [s.kind for s in c.layers]
    assert len(kinds) == 96 and kinds[0::2] == ["global"] * 48 and kinds[1::2] == ["sliding"] * 48
    assert {s.window for s in c.layers if s.kind == "sliding"} == {256}
    a = c.resolved_attention
    assert (c.d_model, a.n_heads, a.head_dim, c.resolved_ffn.hidden, c.max_seq_len) == (12288, 96, 128, 49152, 2048)


def test_palm_shape():
    """Chowdhery et al. 2022, section 2 and Table 1: multi-query attention with 48 heads of 256,
    SwiGLU of 4 d_model, parallel blocks, no biases at all, shared embeddings."""
    c = archlab.config("palm-540b")
    a = c.resolved_attention
    assert (c.n_layers, c.d_model, a.n_heads, a.n_kv_heads, a.head_dim) == (118, 18432, 48, 1, 256)
    assert c.resolved_ffn.hidden == 4 * 18432 and c.resolved_ffn.kind == "glu" and c.block == "parallel"
    model = archlab.build(archlab.tiny("palm-540b"), device="meta")
    assert model.head is None and not any("bias" in k for k in model.state_dict())


def test_palm_logits_scaled_by_inverse_sqrt_width():
    """PaLM scales the logits of its shared embedding by 1/sqrt(d_model); a rule, so the tiny
    model (and any change of width) keeps it, as SQRT_D_MODEL does for Gemma's embeddings."""
    assert archlab.config("palm-540b").logit_multiplier == 1 / math.sqrt(18432)
    cfg = archlab.tiny("palm-540b")
    assert cfg.logit_scale == INV_SQRT_D_MODEL and cfg.logit_multiplier == 1 / math.sqrt(cfg.d_model)
    assert cfg.resolved().logit_scale == 1 / math.sqrt(cfg.d_model)
    model = archlab.build(cfg).eval()
    h = torch.randn(2, 3, cfg.d_model, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(model.logits(h), h @ model.tok_emb.weight.T / math.sqrt(cfg.d_model))
    # saved and read back as the rule, not a number
    assert archlab.ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_unknown_logit_scale_rule_is_named():
    cfg = archlab.tiny("palm-540b")
    with pytest.raises(ConfigError, match="logit_scale"):
        cfg.replace(logit_scale="sqrt(d_model)")
    with pytest.raises(ConfigError, match="logit_softcap"):
        cfg.replace(logit_softcap="30")
