"""Checkpoint files as HF writes them beyond the plain layout: sharded, in another dtype, FP8
with block scales. (Logit parity of every family's cases is in test_families.py.)"""

from __future__ import annotations

import json

import torch
from families import case
from hf_reference import ATOL, make_hf, save_hf
from safetensors.torch import load_file, save_file

import archlab

DEEPSEEK_V3 = "dsv3-qlora-groups-yarn"


def test_sharded_checkpoint_loads(tmp_path):
    hf_config = case(DEEPSEEK_V3).hf_config()
    ref = make_hf(hf_config)
    save_hf(ref, tmp_path, max_shard_size="40KB")
    assert (tmp_path / "model.safetensors.index.json").exists()
    assert len(list(tmp_path.glob("*.safetensors"))) > 2
    ours = archlab.load(tmp_path)
    ids = torch.randint(0, hf_config.vocab_size, (2, 11), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), ref(ids).logits, atol=ATOL, rtol=0)


def test_load_dtype_and_default_fp32(hf_pair):
    directory = hf_pair.path("llama-gqa-llama3rope")
    assert archlab.load(directory).tok_emb.weight.dtype == torch.float32
    assert archlab.load(directory, dtype="bfloat16").tok_emb.weight.dtype == torch.bfloat16


def test_fp8_block_quantized_checkpoint_is_dequantized(tmp_path):
    # DeepSeek-V3's and Kimi K2's releases store weights in float8 with one inverse scale per block
    save_hf(make_hf(case(DEEPSEEK_V3).hf_config()), tmp_path)
    path = tmp_path / "model.safetensors"
    tensors = load_file(path)
    name = "model.layers.1.self_attn.kv_b_proj.weight"  # no RoPE rows: loaded as stored
    w = tensors[name]
    block = 8
    rows, cols = w.shape
    scale = torch.rand(-(-rows // block), -(-cols // block), generator=torch.Generator().manual_seed(0)) + 0.5
    q = torch.empty_like(w)
    for i in range(0, rows, block):  # quantize block by block, as an independent reference
        for j in range(0, cols, block):
            q[i : i + block, j : j + block] = w[i : i + block, j : j + block] / scale[i // block, j // block]
    tensors[name] = q.to(torch.float8_e4m3fn)
    tensors[name + "_scale_inv"] = scale
    save_file(tensors, path, metadata={"format": "pt"})
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["model_type"] = "kimi_k2"  # Kimi K2's release names DeepSeek-V3's architecture so
    cfg["quantization_config"] = {"quant_method": "fp8", "weight_block_size": [block, block]}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    expected = torch.empty_like(w)
    fp8 = tensors[name].float()
    for i in range(0, rows, block):
        for j in range(0, cols, block):
            expected[i : i + block, j : j + block] = fp8[i : i + block, j : j + block] * scale[i // block, j // block]
    model = archlab.load(tmp_path)
    torch.testing.assert_close(model.layers[1].attn.wkv_b.weight, expected, atol=0, rtol=0)
    assert (expected - w).abs().max() < 0.1 * w.abs().max()  # and it is close to the original
