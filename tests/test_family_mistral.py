"""HF `mistral` (sliding window in every layer) and `mixtral` (8 experts, top 2): archlab.load
of tiny random checkpoints computes HF transformers' logits, caches and greedy tokens."""

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
    make_hf,
    max_logit_diff,
    record,
    record_cache_bytes,
)

import archlab
from archlab.errors import CheckpointError

transformers = pytest.importorskip("transformers")

BASE = dict(vocab_size=301, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=128, bos_token_id=0, eos_token_id=1)

CASES = {
    # Mistral 7B v0.1's shape: GQA, a window (8) shorter than the test sequences, in every layer
    "mistral-sliding-gqa": (lambda: transformers.MistralConfig(**BASE, num_key_value_heads=2, sliding_window=8), "mistral-7b"),
    # Mistral v0.3 / NeMo style: no window, head_dim not hidden / heads, tied head, default theta
    "mistral-global-headdim": (lambda: transformers.MistralConfig(
        **BASE, num_key_value_heads=1, sliding_window=None, head_dim=24, tie_word_embeddings=True), "mistral-7b"),
    # Mixtral: 8 experts, top 2, global attention
    "mixtral-8e-top2": (lambda: transformers.MixtralConfig(
        **{**BASE, "intermediate_size": 48}, num_key_value_heads=2, num_local_experts=8, num_experts_per_tok=2), "mixtral-8x7b"),
    # Mixtral with a window: both layer kinds of the family in one model type
    "mixtral-sliding-6e-top3": (lambda: transformers.MixtralConfig(
        **{**BASE, "intermediate_size": 32}, num_key_value_heads=4, num_local_experts=6, num_experts_per_tok=3,
        sliding_window=7, rope_parameters={"rope_type": "default", "rope_theta": 500.0}), "mixtral-8x7b"),
}


@pytest.mark.parametrize("name", CASES)
def test_equals_hf(name, tmp_path):
    make, preset = CASES[name]
    hf_config = make()
    ref, ours = load_pair(hf_config, tmp_path, seed=7)
    cfg, vocab = ours.config, hf_config.vocab_size
    if hf_config.sliding_window is None and preset == "mistral-7b":
        assert set(cfg.layer_types) == {"global"}
    elif hf_config.sliding_window is not None and preset == "mixtral-8x7b":
        assert set(cfg.layer_types) == {"sliding"} and cfg.attention.window == hf_config.sliding_window
    else:  # the published model's own layer kinds
        assert_covers_every_layer_kind(cfg, preset)
    d = max_logit_diff(ref, ours, vocab)
    record(cfg.family, logit_diff=d)
    assert d < ATOL, f"{name}: max |logit difference| {d:.2e}"
    assert_same_param_count(ref, ours)
    assert_cached_decoding_equals_full_forward(ours, vocab)
    assert_greedy_equals_hf(ref, ours, vocab)
    record_cache_bytes(cfg.family, ours)


def test_mistral_window_reaches_the_config():
    """The sliding window is read as one window for every layer, in tokens seen including the query."""
    hf = transformers.MistralConfig(**BASE, num_key_value_heads=2, sliding_window=8).to_dict()
    cfg = archlab.io.hf.FAMILIES["mistral"].read_config(hf)
    assert cfg.layer_types == ("sliding", "sliding") and cfg.attention.window == 8


def test_mixtral_fused_experts_load(tmp_path):
    """A checkpoint saved with HF v5's in-memory layout (mlp.experts.gate_up_proj, E x 2F x D)
    loads as the same model as the per-expert w1/w2/w3 layout save_pretrained writes by default."""
    make, _ = CASES["mixtral-8e-top2"]
    hf_config = make()
    ref = make_hf(hf_config, seed=3)
    ref.save_pretrained(tmp_path / "fused", save_original_format=False)
    ref.save_pretrained(tmp_path / "per_expert")
    assert any("gate_up_proj" in k for k in _keys(tmp_path / "fused"))
    assert any(".w1." in k for k in _keys(tmp_path / "per_expert"))
    fused, per_expert = archlab.load(tmp_path / "fused"), archlab.load(tmp_path / "per_expert")
    d = max_logit_diff(ref, fused, hf_config.vocab_size)
    assert d < ATOL
    for (k, a), (_, b) in zip(fused.state_dict().items(), per_expert.state_dict().items()):
        assert torch.equal(a, b), k


def _keys(directory):
    from safetensors import safe_open

    with safe_open(str(directory / "model.safetensors"), "pt") as f:
        return list(f.keys())


def test_mixtral_missing_expert_is_named(tmp_path):
    from safetensors.torch import load_file, save_file

    make, _ = CASES["mixtral-8e-top2"]
    ref = make_hf(make())
    ref.save_pretrained(tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    del state["model.layers.1.block_sparse_moe.experts.5.w3.weight"]
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=r"experts\.5\.w3"):
        archlab.load(tmp_path)


def test_bad_window_is_a_clear_error():
    hf = transformers.MistralConfig(**BASE, num_key_value_heads=2).to_dict() | {"sliding_window": -3}
    with pytest.raises(CheckpointError, match="sliding_window"):
        archlab.io.hf.FAMILIES["mistral"].read_config(hf)


@pytest.mark.parametrize("preset", ["mistral-7b", "mixtral-8x7b"])
def test_tiny_preset_builds(preset):
    model = archlab.build(archlab.tiny(preset))
    with torch.no_grad():
        assert model(torch.randint(0, model.config.vocab_size, (1, 5))).shape[-1] == model.config.vocab_size
