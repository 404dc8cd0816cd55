"""GPT-NeoX (HF `gpt_neox`): parallel attention + MLP, partial RoPE, per-head fused QKV, against HF."""

from __future__ import annotations

import json

import pytest
import torch
from hf_reference import (
    assert_behaves_like_hf,
    ATOL,
    assert_covers_every_layer_kind,
    load_pair,
    make_hf,
    max_logit_diff,
    record,
    save_hf,
    transformers,
)

import archlab
from archlab.io.hf import FAMILIES

FAMILY = "gpt_neox"


def neox_config(**kw):
    # GPT-NeoX-20B's shape in small: a quarter of each 16-dim head rotated, gelu_fast, untied head
    base = dict(vocab_size=301, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=112,
                max_position_embeddings=128, rotary_pct=0.25, rotary_emb_base=10000, hidden_act="gelu_fast",
                use_parallel_residual=True, bos_token_id=0, eos_token_id=1)
    return transformers.GPTNeoXConfig(**{**base, **kw})


CASES = {
    "parallel-20b": neox_config(),
    # Pythia-style variants: sequential residual, exact GELU, half the head rotated, theta changed,
    # no attention biases, tied embeddings
    "sequential-nobias-tied": neox_config(use_parallel_residual=False, hidden_act="gelu", rotary_pct=0.5,
                                          rotary_emb_base=500, attention_bias=False, tie_word_embeddings=True),
}


@pytest.fixture(scope="module", params=list(CASES))
def pair(request, tmp_path_factory):
    return request.param, load_pair(CASES[request.param], tmp_path_factory.mktemp("neox"))


def test_logits_equal_hf(pair):
    name, (ref, ours) = pair
    assert ours.config.block == ("parallel" if name.startswith("parallel") else "pre")
    assert ours.config.rope.rotary_dim(16) == (4 if name.startswith("parallel") else 8)
    assert_covers_every_layer_kind(ours.config, "gpt-neox-20b")
    d = max_logit_diff(ref, ours, ours.config.vocab_size)
    record(FAMILY, logit_diff=d)
    assert d < ATOL


def test_param_count_cache_and_generation(pair):
    _, (ref, ours) = pair
    assert_behaves_like_hf(FAMILY, ref, ours)


def test_preset_reads_like_the_20b_config_json():
    """gpt-neox-20b equals what our reader makes of EleutherAI/gpt-neox-20b's config.json (v4 field names)."""
    hf = {"model_type": "gpt_neox", "vocab_size": 50432, "hidden_size": 6144, "num_hidden_layers": 44,
          "num_attention_heads": 64, "intermediate_size": 24576, "hidden_act": "gelu_fast", "rotary_pct": 0.25,
          "rotary_emb_base": 10000, "max_position_embeddings": 2048, "layer_norm_eps": 1e-5,
          "use_parallel_residual": True, "tie_word_embeddings": False}
    got = FAMILIES["gpt_neox"].read_config(hf)
    want = archlab.config("gpt-neox-20b")
    assert got.replace(name="", source="", family="") == want.replace(name="", source="", family="")


def test_tiny_preset_builds_and_counts():
    cfg = archlab.tiny("gpt-neox-20b")
    assert cfg.block == "parallel" and cfg.rope.partial == 0.25
    model = archlab.build(cfg)
    assert archlab.analyze(cfg).total_params == sum(p.numel() for p in archlab.build(cfg, device="meta").parameters())
    with torch.no_grad():
        assert model(torch.randint(0, cfg.vocab_size, (2, 9))).shape == (2, 9, cfg.vocab_size)


def test_bad_config_fields_name_the_field(tmp_path):
    save_hf(make_hf(neox_config()), tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    odd_rotary = {**cfg, "rope_parameters": {**cfg["rope_parameters"], "partial_rotary_factor": 0.2}}  # 3 of 16 dims: odd
    for bad, field in (({"use_parallel_residual": "yes"}, "use_parallel_residual"),
                       ({"hidden_act": "mish"}, "hidden_act"),
                       ({"num_attention_heads": 5}, "num_attention_heads"),
                       (odd_rotary, "partial")):
        (tmp_path / "config.json").write_text(json.dumps({**cfg, **bad}))
        with pytest.raises(archlab.CheckpointError, match=field):
            archlab.load(tmp_path)
