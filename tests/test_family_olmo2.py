"""HF `olmo2` (norms on the sublayer outputs, QK-norm over the whole projection). The checks
every family passes run over its cases in test_families.py (cases in families.py); here,
OLMo 2's own."""

from __future__ import annotations

from families import case

import archlab
from archlab.io.hf import FAMILIES


def test_qk_norm_spans_the_projection():
    cfg = FAMILIES["olmo2"].read_config(case("olmo2-gqa-bias-tied").hf_config().to_dict())
    model = archlab.build(cfg, device="meta")
    attn = model.layers[0].attn
    assert attn.q_norm.weight.shape == (4 * 12,) and attn.k_norm.weight.shape == (2 * 12,)
