"""GPT-OSS (HF `gpt_oss`): attention sinks, alternating sliding / full layers, q/k/v/o biases,
a biased router, clamped-SwiGLU experts with biases stored interleaved, YaRN without
truncation. The checks every family passes run over its cases in test_families.py (cases in
families.py); here, GPT-OSS's own."""

from __future__ import annotations

import pytest
import torch
from families import GPT_OSS_PRESETS, gpt_oss_hub_config
from safetensors.torch import load_file, save_file

import archlab
from archlab.io.hf import FAMILIES


@pytest.mark.parametrize("name", ["20b-shape", "layer-types-nobias-clamped"])
def test_experts_split_from_interleaved_gate_up(name, hf_pair):
    """Expert e's gate is column 2j of HF's gate_up_proj[e], its up column 2j + 1."""
    ref, ours = hf_pair(name)
    hf = ref.model.layers[0].mlp.experts
    ex = ours.layers[0].ffn.experts
    torch.testing.assert_close(ex.gate.data, hf.gate_up_proj.data[..., 0::2].transpose(1, 2), rtol=0, atol=0)
    torch.testing.assert_close(ex.up_bias.data, hf.gate_up_proj_bias.data[:, 1::2], rtol=0, atol=0)
    torch.testing.assert_close(ex.down.data, hf.down_proj.data.transpose(1, 2), rtol=0, atol=0)


def test_mxfp4_checkpoint_is_refused_clearly(hf_pair, tmp_path):
    hf = {**gpt_oss_hub_config(24, 32), "quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": []}}
    with pytest.raises(archlab.CheckpointError, match="quantization_config.*MXFP4.*_blocks"):
        FAMILIES["gpt_oss"].read_config(hf)
    # the hub's tensor layout, even where config.json does not say so: each expert matrix as
    # uint8 blocks of 32 packed 4-bit values and one uint8 exponent per block
    source = hf_pair.path("20b-shape")
    (tmp_path / "config.json").write_bytes((source / "config.json").read_bytes())
    tensors = load_file(str(source / "model.safetensors"))
    for k in [k for k in tensors if k.endswith(("gate_up_proj", "down_proj"))]:
        E, rows, cols = tensors.pop(k).transpose(1, 2).shape  # the hub stores (E, out, in)
        tensors[k + "_blocks"] = torch.zeros(E, rows, cols // 32, 16, dtype=torch.uint8)
        tensors[k + "_scales"] = torch.zeros(E, rows, cols // 32, dtype=torch.uint8)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    with pytest.raises(archlab.CheckpointError, match="MXFP4.*_blocks"):
        archlab.load(tmp_path)


@pytest.mark.parametrize("preset", GPT_OSS_PRESETS)
def test_tiny_preset_keeps_gpt_oss_parts(preset):
    cfg = archlab.tiny(preset)
    assert cfg.attention.sinks and cfg.moe.swiglu_limit == 7.0
