"""HF `smollm3` (NoPE layers by no_rope_layers / no_rope_layer_interval): archlab.load of tiny
random checkpoints computes HF transformers' logits, caches and greedy tokens."""

from __future__ import annotations

import pytest
import torch
from hf_reference import (
    ATOL,
    assert_cached_decoding_equals_full_forward,
    assert_covers_every_layer_kind,
    assert_greedy_equals_hf,
    assert_same_param_count,
    load_pair,
    max_logit_diff,
    record,
    record_cache_bytes,
)

import archlab
from archlab.errors import CheckpointError
from archlab.io.hf import FAMILIES

transformers = pytest.importorskip("transformers")

BASE = dict(vocab_size=301, hidden_size=32, intermediate_size=64, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=128, bos_token_id=0, eos_token_id=1, pad_token_id=0)

CASES = {
    # SmolLM3-3B's plan: every 4th layer NoPE (no_rope_layer_interval), tied head, theta 5e6
    "smollm3-interval4": lambda: transformers.SmolLM3Config(
        **BASE, num_hidden_layers=4, no_rope_layer_interval=4,
        rope_parameters={"rope_type": "default", "rope_theta": 5e6}),
    # an explicit no_rope_layers list, biases, untied head, and the first NoPE layer sliding
    # (window 5) by an explicit layer_types list, so that global NoPE layers remain
    "smollm3-list-bias-sliding": lambda: transformers.SmolLM3Config(
        **BASE, num_hidden_layers=4, no_rope_layers=[0, 1, 0, 1], attention_bias=True, mlp_bias=True,
        tie_word_embeddings=False, use_sliding_window=True, sliding_window=5,
        layer_types=["sliding_attention"] + ["full_attention"] * 3),
}


@pytest.mark.parametrize("name", CASES)
def test_equals_hf(name, tmp_path):
    hf_config = CASES[name]()
    ref, ours = load_pair(hf_config, tmp_path, seed=17)
    cfg, vocab = ours.config, hf_config.vocab_size
    assert_covers_every_layer_kind(cfg, "smollm3-3b")
    d = max_logit_diff(ref, ours, vocab)
    record(cfg.family, logit_diff=d)
    assert d < ATOL, f"{name}: max |logit difference| {d:.2e}"
    assert_same_param_count(ref, ours)
    assert_cached_decoding_equals_full_forward(ours, vocab)
    assert_greedy_equals_hf(ref, ours, vocab)
    record_cache_bytes(cfg.family, ours)


def test_nope_plan_follows_hf():
    cfg = FAMILIES["smollm3"].read_config(CASES["smollm3-interval4"]().to_dict())
    assert cfg.rope_layers == (True, True, True, False)
    hf = CASES["smollm3-interval4"]().to_dict()
    del hf["no_rope_layers"]  # only the interval: SmolLM3Config's rule
    for interval in (2, 3, 4):
        hf["no_rope_layer_interval"] = interval
        want = tuple(bool(r) for r in transformers.SmolLM3Config.from_dict(hf).no_rope_layers)
        assert FAMILIES["smollm3"].read_config(hf).rope_layers == want and not all(want)
    hf = CASES["smollm3-list-bias-sliding"]().to_dict()
    cfg = FAMILIES["smollm3"].read_config(hf)
    assert cfg.rope_layers == (False, True, False, True)
    assert cfg.layer_types == ("sliding", "global", "global", "global") and cfg.attention.window == 5
    del hf["layer_types"]  # SmolLM3Config's rule: with use_sliding_window, the NoPE layers slide
    assert FAMILIES["smollm3"].read_config(hf).layer_types == _hf_layer_types(hf) == ("sliding", "global", "sliding", "global")
    hf["use_sliding_window"] = False
    assert FAMILIES["smollm3"].read_config(hf).layer_types == _hf_layer_types(hf) == ("global",) * 4


def _hf_layer_types(hf: dict) -> tuple[str, ...]:
    names = {"full_attention": "global", "sliding_attention": "sliding"}
    return tuple(names[t] for t in transformers.SmolLM3Config.from_dict(hf).layer_types)


def test_bad_no_rope_layers_is_a_clear_error():
    hf = CASES["smollm3-interval4"]().to_dict() | {"no_rope_layers": [1, 1, 0]}
    with pytest.raises(CheckpointError, match="no_rope_layers"):
        FAMILIES["smollm3"].read_config(hf)


def test_tiny_preset_builds():
    model = archlab.build(archlab.tiny("smollm3-3b"))
    assert any(s.rope is None for s in model.config.layers)
    with torch.no_grad():
        assert model(torch.randint(0, model.config.vocab_size, (1, 5))).shape[-1] == model.config.vocab_size
