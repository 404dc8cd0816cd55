"""HF `smollm3` (NoPE layers by no_rope_layers / no_rope_layer_interval). The checks every
family passes run over its cases in test_families.py (cases in families.py); here, SmolLM3's
own."""

from __future__ import annotations

import pytest
from families import case

import archlab
from archlab.errors import CheckpointError
from archlab.io.hf import FAMILIES

transformers = pytest.importorskip("transformers")


def _hf(name: str) -> dict:
    return case(name).hf_config().to_dict()


def test_nope_plan_follows_hf():
    cfg = FAMILIES["smollm3"].read_config(_hf("smollm3-interval4"))
    assert cfg.rope_layers == (True, True, True, False)
    hf = _hf("smollm3-interval4")
    del hf["no_rope_layers"]  # only the interval: SmolLM3Config's rule
    for interval in (2, 3, 4):
        hf["no_rope_layer_interval"] = interval
        want = tuple(bool(r) for r in transformers.SmolLM3Config.from_dict(hf).no_rope_layers)
        assert FAMILIES["smollm3"].read_config(hf).rope_layers == want and not all(want)
    hf = _hf("smollm3-list-bias-sliding")
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
    hf = _hf("smollm3-interval4") | {"no_rope_layers": [1, 1, 0]}
    with pytest.raises(CheckpointError, match="no_rope_layers"):
        FAMILIES["smollm3"].read_config(hf)


def test_tiny_preset_keeps_nope_layers():
    assert any(s.rope is None for s in archlab.tiny("smollm3-3b").layers)


def test_listed_sliding_layers_slide_without_use_sliding_window(tmp_path):
    """layer_types naming sliding layers with use_sliding_window false: HF's mask for those
    layers still comes from create_sliding_window_causal_mask(config.sliding_window)."""
    from hf_reference import ATOL, assert_cached_decoding_equals_full_forward, load_pair, max_logit_diff

    hf = case("smollm3-list-bias-sliding").hf_config()
    hf.use_sliding_window = False
    ref, ours = load_pair(hf, tmp_path, seed=17)
    d = max_logit_diff(ref, ours, hf.vocab_size, shapes=((2, 13),))
    assert d < ATOL, f"max |logit difference| {d:.2e}"
    assert ours.config.layer_types[0] == "sliding" and ours.config.attention.window == 5
    assert_cached_decoding_equals_full_forward(ours, hf.vocab_size)
    with pytest.raises(CheckpointError, match="sliding_window"):
        FAMILIES["smollm3"].read_config({**hf.to_dict(), "sliding_window": None})
