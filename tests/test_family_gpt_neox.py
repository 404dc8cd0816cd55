"""GPT-NeoX (HF `gpt_neox`): parallel attention + MLP, partial RoPE, per-head fused QKV. The
checks every family passes run over its cases in test_families.py (cases in families.py); here,
GPT-NeoX's own."""

from __future__ import annotations

import archlab


def test_tiny_preset_keeps_neox_parts():
    cfg = archlab.tiny("gpt-neox-20b")
    assert cfg.block == "parallel" and cfg.rope.partial == 0.25


def test_longrope_factor_counts_are_refused_by_their_config_json_names():
    """Four longrope factors against the one frequency of 2 rotated dimensions: HF broadcasts
    them into a RoPE archlab cannot express. The refusal names the config.json fields, not the
    model config's (it once said position.scaling.short_factor). A single factor, which HF
    broadcasts to every frequency, loads: sweep_reproducers' 'longrope single factor ...'."""
    import pytest
    from archlab.io.hf import FAMILIES

    hf = {"model_type": "gpt_neox", "vocab_size": 101, "hidden_size": 16, "num_attention_heads": 2,
          "num_hidden_layers": 1, "intermediate_size": 32, "max_position_embeddings": 128,
          "rope_parameters": {"rope_type": "longrope", "rope_theta": 10000.0, "partial_rotary_factor": 0.25,
                              "original_max_position_embeddings": 16, "factor": 2.0,
                              "short_factor": [1.0] * 4, "long_factor": [2.0] * 4}}
    with pytest.raises(archlab.CheckpointError, match=r"rope_parameters short_factor has 4 entries.*"
                                                      r"head_dim 8 x partial_rotary_factor 0.25\) has 1 frequencies"):
        FAMILIES["gpt_neox"].read_config(hf)
