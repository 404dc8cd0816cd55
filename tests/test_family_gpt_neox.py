"""GPT-NeoX (HF `gpt_neox`): parallel attention + MLP, partial RoPE, per-head fused QKV. The
checks every family passes run over its cases in test_families.py (cases in families.py); here,
GPT-NeoX's own."""

from __future__ import annotations

import archlab


def test_tiny_preset_keeps_neox_parts():
    cfg = archlab.tiny("gpt-neox-20b")
    assert cfg.block == "parallel" and cfg.rope.partial == 0.25
