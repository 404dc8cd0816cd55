"""GPT-OSS (HF `gpt_oss`): attention sinks, alternating sliding / full layers, q/k/v/o biases,
a biased router, clamped-SwiGLU experts with biases stored interleaved, YaRN without
truncation. The checks every family passes run over its cases in test_families.py (cases in
families.py); here, GPT-OSS's own."""

from __future__ import annotations

import json
import re

import pytest
import torch
from families import GPT_OSS_PRESETS, gpt_oss_config, gpt_oss_hub_config
from hf_reference import ATOL, make_hf, max_logit_diff, record, save_hf
from safetensors.torch import load_file, save_file

import archlab
from archlab.io import mxfp4
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


# openai/gpt-oss-20b config.json's quantization_config
_MXFP4 = {"quant_method": "mxfp4",
          "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]}


@pytest.fixture(scope="module")
def mxfp4_dir(tmp_path_factory):
    """A tiny GPT-OSS in the release's layout: HF's random model saved, then its experts
    replaced by MXFP4 *_blocks / *_scales of HF's (E, out, in) matrices (widths multiples of
    32, as MXFP4's blocks need) and quantization_config added to config.json."""
    directory = tmp_path_factory.mktemp("mxfp4")
    save_hf(make_hf(gpt_oss_config(intermediate_size=64)), directory)
    tensors = load_file(str(directory / "model.safetensors"))
    for k in [k for k in tensors if k.endswith(("gate_up_proj", "down_proj"))]:
        tensors[k + "_blocks"], tensors[k + "_scales"] = mxfp4.quantize(tensors.pop(k).transpose(1, 2))
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    hf = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**hf, "quantization_config": _MXFP4}))
    return directory


def test_mxfp4_checkpoint_loads_as_hf_dequantizes_it(mxfp4_dir):
    """HF on the CPU dequantizes the release's MXFP4 experts (Mxfp4Dequantize): the same file
    loaded by both holds the same experts, bit for bit, and gives the same logits."""
    import transformers

    ref = transformers.AutoModelForCausalLM.from_pretrained(mxfp4_dir, dtype=torch.float32, attn_implementation="eager").eval()
    ours = archlab.load(mxfp4_dir).eval()
    for i in range(ref.config.num_hidden_layers):
        hf, ex = ref.model.layers[i].mlp.experts, ours.layers[i].ffn.experts
        torch.testing.assert_close(ex.gate.data, hf.gate_up_proj.data[..., 0::2].transpose(1, 2), rtol=0, atol=0)
        torch.testing.assert_close(ex.up.data, hf.gate_up_proj.data[..., 1::2].transpose(1, 2), rtol=0, atol=0)
        torch.testing.assert_close(ex.down.data, hf.down_proj.data.transpose(1, 2), rtol=0, atol=0)
    assert ours.layers[0].ffn.experts.gate.abs().max() > 0.1  # real weights, not zeros
    d = max_logit_diff(ref, ours, ref.config.vocab_size, shapes=((2, 9),))
    record("gpt_oss", logit_diff=d)
    assert d < ATOL


def test_mxfp4_experts_load_exactly_in_bfloat16(mxfp4_dir):
    """HF dequantizes straight into bfloat16 parameters; every MXFP4 value is exact there, so
    ours (dequantized in float32, then cast) are the same numbers."""
    import transformers

    ref = transformers.AutoModelForCausalLM.from_pretrained(mxfp4_dir, dtype=torch.bfloat16)
    ours = archlab.load(mxfp4_dir, dtype=torch.bfloat16)
    hf, ex = ref.model.layers[1].mlp.experts, ours.layers[1].ffn.experts
    assert ex.gate.dtype == hf.gate_up_proj.dtype == torch.bfloat16
    torch.testing.assert_close(ex.gate.data, hf.gate_up_proj.data[..., 0::2].transpose(1, 2), rtol=0, atol=0)
    torch.testing.assert_close(ex.down.data, hf.down_proj.data.transpose(1, 2), rtol=0, atol=0)


def test_mxfp4_dequantizes_every_byte_and_exponent_as_hf():
    """Every code byte and every exponent 0..255 against transformers' own converter
    (_convert_moe_packed_tensors: (E, rows, G, 16) -> (E, G * 32, rows))."""
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors

    g = torch.Generator().manual_seed(0)
    blocks = torch.arange(256, dtype=torch.uint8)[torch.randperm(256, generator=g)].view(2, 4, 2, 16)
    scales = torch.arange(16, dtype=torch.uint8).view(2, 4, 2) * 17  # 0, 17, ..., 255
    expected = convert_moe_packed_tensors(blocks, scales, dtype=torch.float32)
    torch.testing.assert_close(mxfp4.dequantize(blocks, scales).transpose(1, 2), expected, rtol=0, atol=0, equal_nan=True)


def test_malformed_mxfp4_tensors_are_named(mxfp4_dir, tmp_path):
    tensors = load_file(str(mxfp4_dir / "model.safetensors"))
    name = "model.layers.1.mlp.experts.down_proj_blocks"
    assert tensors[name].shape == (5, 64, 2, 16)  # (E, d_model, intermediate / 32, 16)
    bad = {**tensors, name: tensors[name][:, :, :1].contiguous()}
    (tmp_path / "config.json").write_bytes((mxfp4_dir / "config.json").read_bytes())
    save_file(bad, str(tmp_path / "model.safetensors"))
    with pytest.raises(archlab.CheckpointError, match=re.escape(name) + r".*expects _blocks \(5, 64, 2, 16\)"):
        archlab.load(tmp_path)
    scales = "model.layers.0.mlp.experts.gate_up_proj_scales"
    save_file({**tensors, scales: tensors[scales].float()}, str(tmp_path / "model.safetensors"))
    with pytest.raises(archlab.CheckpointError, match=re.escape(scales) + r": MXFP4 exponents must be stored as U8"):
        archlab.load(tmp_path)


def test_other_quantization_is_refused_by_name():
    hf = {**gpt_oss_hub_config(24, 32), "quantization_config": {"quant_method": "bitsandbytes"}}
    with pytest.raises(archlab.CheckpointError, match="quantization_config.*bitsandbytes.*only the release's MXFP4"):
        FAMILIES["gpt_oss"].read_config(hf)


@pytest.mark.parametrize("preset", GPT_OSS_PRESETS)
def test_tiny_preset_keeps_gpt_oss_parts(preset):
    cfg = archlab.tiny(preset)
    assert cfg.attention.sinks and cfg.moe.swiglu_limit == 7.0
