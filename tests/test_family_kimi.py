"""Kimi K2: DeepSeek-V3's architecture with its own numbers, loaded through HF `deepseek_v3`.
The checks every family passes run over its case in test_families.py (families.py builds the
tiny HF model from the kimi-k2 preset's own tiny shape, and holds the reader to making exactly
that preset of it); here, Kimi's own."""

from __future__ import annotations

from hf_reference import assert_covers_every_layer_kind

import archlab


def test_tiny_covers_kimi_layer_kinds():
    cfg = archlab.tiny("kimi-k2")
    assert_covers_every_layer_kind(cfg, "kimi-k2")
    assert [s.ffn for s in cfg.layers] == ["dense", "moe"]
