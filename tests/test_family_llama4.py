"""Llama 4 (HF `llama4_text`, and the text part of `llama4`): complex-pair RoPE permuted at
load, chunked RoPE layers and global NoPE layers with temperature tuning, L2 QK-norm in RoPE
layers only, top-1 sigmoid MoE weighting the expert's input plus a shared expert, dense and
MoE layers interleaved. The checks every family passes run over its cases in test_families.py
(cases in families.py); here, Llama 4's own."""

from __future__ import annotations

import json

import pytest
import torch
from families import LLAMA4_BASE, LLAMA4_LLAMA3_ROPE
from hf_reference import ATOL, randomize, transformers

import archlab


@pytest.mark.parametrize("name", ["maverick-plan", "scout-plan-bias"])
def test_left_padding_leaves_the_nope_temperature_alone(name, hf_pair):
    """Our NoPE-layer temperature counts positions from each row's first real token, so a
    left-padded row computes what HF computes for the same prompt unpadded. (HF's own padded
    rows differ: Llama4TextAttention counts from the cache length, padding included, so its
    logits move by ~0.1 here; greedy tokens above still agree.)"""
    ref, ours = hf_pair(name)
    prompt, pad = torch.randint(2, 301, (1, 13), generator=torch.Generator().manual_seed(0)), 6
    ids = torch.cat((torch.zeros(1, pad, dtype=torch.long), prompt), dim=1)
    with torch.no_grad():
        got = ours(ids, cache=ours.new_cache(1, ids.shape[1], pad=torch.tensor([pad])))[:, pad:]
        torch.testing.assert_close(got, ref(prompt).logits, atol=ATOL, rtol=0)


def test_multimodal_checkpoint_loads_its_text_model(tmp_path):
    """A `llama4` config.json nests the text model's as text_config; its weights sit under
    language_model.*, beside the vision encoder's, which are not part of it."""
    cfg = transformers.Llama4Config(
        text_config={**LLAMA4_BASE, "num_hidden_layers": 2, "no_rope_layer_interval": 2, "rope_parameters": LLAMA4_LLAMA3_ROPE},
        vision_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
                           "image_size": 28, "patch_size": 14, "vision_output_dim": 32, "projector_input_dim": 32,
                           "projector_output_dim": 32},
    )
    ref = transformers.Llama4ForConditionalGeneration(cfg)
    randomize(ref)
    ref.eval().save_pretrained(tmp_path)
    ours = archlab.load(tmp_path).eval()
    assert ours.config.rope_layers == (True, False)
    text_params = sum(p.numel() for n, p in ref.named_parameters() if not n.startswith(("vision_model", "multi_modal")))
    assert sum(p.numel() for p in ours.parameters()) == text_params
    ids = torch.randint(0, 301, (2, 21), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), ref(input_ids=ids).logits, atol=ATOL, rtol=0)


@pytest.mark.parametrize("preset", ["llama-4-scout", "llama-4-maverick"])
def test_tiny_preset_keeps_chunked_and_nope_layers(preset):
    cfg = archlab.tiny(preset)
    assert any(s.kind == "chunked" for s in cfg.layers) and any(s.rope is None for s in cfg.layers)


def test_multimodal_config_without_text_config_is_refused(hf_pair, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama4", "text_config": None}))
    (tmp_path / "model.safetensors").write_bytes((hf_pair.path("scout-plan-bias") / "model.safetensors").read_bytes())
    with pytest.raises(archlab.CheckpointError, match="text_config"):
        archlab.load(tmp_path)


def test_qk_norm_after_yarn_rotation_equals_hf(tmp_path):
    """Llama4TextAttention normalises q and k after apply_rotary_emb, whose freqs_cis carry
    YaRN's attention factor: the norm cancels it. Normalising before the rotation kept it
    (max |logit difference| ~0.8 before the fix)."""
    from hf_reference import load_pair, max_logit_diff

    yarn = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 16.0, "original_max_position_embeddings": 16}
    hf = transformers.Llama4TextConfig(**{**LLAMA4_BASE, "num_hidden_layers": 2, "no_rope_layer_interval": 2,
                                          "use_qk_norm": True, "rope_parameters": yarn})
    ref, ours = load_pair(hf, tmp_path, seed=0)
    d = max_logit_diff(ref, ours, hf.vocab_size, shapes=((2, 21),))
    assert d < ATOL, f"max |logit difference| {d:.2e}"
    a, s = ours.config.attention, ours.config.rope.scaling
    assert a.qk_norm_after_rope and s.kind == "yarn" and s.cos_sin_factor() > 1.2
