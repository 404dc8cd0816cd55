"""archlab.load of a tiny random HF checkpoint computes HF transformers' logits."""

from __future__ import annotations

import pytest
import torch

import archlab
from archlab.io.hf import FAMILIES
from hf_reference import all_configs, hf_param_count, make_hf, record, record_cache_bytes, save_hf

CASES = all_configs()
IDS = [name for _, name, _ in CASES]
ATOL = 1e-4  # float32


def _batches(vocab: int, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab, shape, generator=g) for shape in ((1, 1), (2, 9), (3, 37))]


@pytest.mark.parametrize("family,name,hf_config", CASES, ids=IDS)
def test_logits_equal_hf(family, name, hf_config, tmp_path, parity_report):
    ref = make_hf(hf_config, seed=hash(name) % 1000)
    save_hf(ref, tmp_path)
    ours = archlab.load(tmp_path).eval()
    worst = 0.0
    with torch.no_grad():
        for ids in _batches(hf_config.vocab_size):
            expected = ref(ids).logits
            got = ours(ids)
            assert got.shape == expected.shape
            worst = max(worst, (got - expected).abs().max().item())
            # the check is not vacuous: logits are O(1) and differ between positions
            assert expected.std() > 0.1
    parity_report(family, name, worst)
    record(family, logit_diff=worst)
    record_cache_bytes(family, ours)
    assert worst < ATOL, f"{name}: max |logit difference| {worst:.2e} >= {ATOL}"


@pytest.mark.parametrize("family,name,hf_config", CASES, ids=IDS)
def test_param_count_equals_hf(family, name, hf_config):
    ref = make_hf(hf_config)
    ours = archlab.build(FAMILIES[hf_config.model_type].read_config(hf_config.to_dict()), device="meta")
    assert sum(p.numel() for p in ours.parameters()) == hf_param_count(ref)


def test_sharded_checkpoint_loads(tmp_path):
    _, name, hf_config = next(c for c in CASES if c[0] == "deepseek_v3")
    ref = make_hf(hf_config)
    save_hf(ref, tmp_path, max_shard_size="40KB")
    assert (tmp_path / "model.safetensors.index.json").exists()
    assert len(list(tmp_path.glob("*.safetensors"))) > 2
    ours = archlab.load(tmp_path)
    ids = torch.randint(0, hf_config.vocab_size, (2, 11))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), ref(ids).logits, atol=ATOL, rtol=0)


def test_load_dtype_and_default_fp32(tmp_path):
    _, _, hf_config = next(c for c in CASES if c[0] == "llama")
    save_hf(make_hf(hf_config), tmp_path)
    assert archlab.load(tmp_path).tok_emb.weight.dtype == torch.float32
    assert archlab.load(tmp_path, dtype="bfloat16").tok_emb.weight.dtype == torch.bfloat16


def test_fp8_block_quantized_checkpoint_is_dequantized(tmp_path):
    # DeepSeek-V3's and Kimi K2's releases store weights in float8 with one inverse scale per block
    import json

    from safetensors.torch import load_file, save_file

    _, _, hf_config = next(c for c in CASES if c[0] == "deepseek_v3")
    save_hf(make_hf(hf_config), tmp_path)
    path = tmp_path / "model.safetensors"
    tensors = load_file(path)
    name = "model.layers.1.self_attn.kv_b_proj.weight"  # no RoPE rows: loaded as stored
    w = tensors[name]
    block = 8
    rows, cols = w.shape
    scale = torch.rand(-(-rows // block), -(-cols // block)) + 0.5
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


def test_gpt2_hub_layout_without_transformer_prefix(tmp_path):
    # openai-community/gpt2's model.safetensors was saved from GPT2Model: h.0..., wte, no lm_head
    from safetensors.torch import load_file, save_file

    _, _, hf_config = next(c for c in CASES if c[0] == "gpt2")
    ref = make_hf(hf_config)
    save_hf(ref, tmp_path)
    path = tmp_path / "model.safetensors"
    tensors = {k.removeprefix("transformer."): v for k, v in load_file(path).items()}
    assert "h.0.attn.c_attn.weight" in tensors
    save_file(tensors, path, metadata={"format": "pt"})
    ids = torch.randint(0, hf_config.vocab_size, (2, 13))
    with torch.no_grad():
        torch.testing.assert_close(archlab.load(tmp_path)(ids), ref(ids).logits, atol=ATOL, rtol=0)


def test_deepseek_fused_expert_layout_loads(tmp_path):
    # HF v5 holds experts fused (gate_up_proj (E, 2F, D), down_proj) and can save them so
    _, _, hf_config = next(c for c in CASES if c[0] == "deepseek_v3")
    ref = make_hf(hf_config)
    ref.save_pretrained(tmp_path, save_original_format=False)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        assert any(k.endswith("mlp.experts.gate_up_proj") for k in f.keys())
    ids = torch.randint(0, hf_config.vocab_size, (2, 13))
    with torch.no_grad():
        torch.testing.assert_close(archlab.load(tmp_path)(ids), ref(ids).logits, atol=ATOL, rtol=0)
