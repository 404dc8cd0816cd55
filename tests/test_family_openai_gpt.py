"""GPT-1 (HF `openai-gpt`): post-norm blocks, learned positions, Conv1D weights. The checks every
family passes run over its cases in test_families.py (cases in families.py, with GPT-1's gelu
read as the tanh form HF computes); here, GPT-1's own."""

from __future__ import annotations

import archlab


def test_tiny_preset_keeps_gpt1_parts():
    cfg = archlab.tiny("gpt-1")
    assert cfg.block == "post" and cfg.position == "learned"
    assert archlab.build(cfg, device="meta").norm is None
