"""Bad input gets a clear error naming the field or tensor, never a stack trace from torch."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import archlab
from archlab import AttentionConfig, CheckpointError, ConfigError, FFNConfig, ModelConfig, MoEConfig, RouterConfig
from families import case
from hf_reference import make_hf, save_hf


def _cfg(**kw) -> ModelConfig:
    base = dict(name="t", vocab_size=100, d_model=64, n_layers=2, max_seq_len=64,
                attention=AttentionConfig(n_heads=8, n_kv_heads=2), ffn=FFNConfig(hidden=128))
    base.update(kw)
    return ModelConfig(**base)


def test_kv_heads_must_divide_heads():
    with pytest.raises(ConfigError, match=r"attention\.n_kv_heads: must divide n_heads \(8\).*got 3"):
        _cfg(attention=AttentionConfig(n_heads=8, n_kv_heads=3))


def test_head_dim_that_does_not_fit():
    with pytest.raises(ConfigError, match=r"attention\.head_dim: unset, and d_model \(50\) is not divisible by n_heads \(8\)"):
        _cfg(d_model=50)


def test_rotary_dims_must_be_even():
    with pytest.raises(ConfigError, match=r"position\.partial"):
        _cfg(attention=AttentionConfig(n_heads=8, head_dim=7))


def test_top_k_larger_than_experts():
    with pytest.raises(ConfigError, match=r"moe\.top_k: must be between 1 and n_experts \(4\), got 6"):
        MoEConfig(n_experts=4, top_k=6, hidden=32)


def test_groups_must_divide_experts():
    with pytest.raises(ConfigError, match=r"moe\.router\.n_groups: must divide n_experts \(6\), got 4"):
        MoEConfig(n_experts=6, top_k=2, hidden=32, router=RouterConfig(n_groups=4, topk_groups=2))


def test_per_layer_lists_must_cover_every_layer():
    with pytest.raises(ConfigError, match=r"layer_types: lists 3 layers but n_layers is 2; give one entry per layer, or a Pattern"):
        _cfg(layer_types=("global",) * 3)
    with pytest.raises(ConfigError, match=r"moe: is not set, but 'moe' layers in ffn_types need it"):
        _cfg(ffn_types=("dense", "moe"))


def test_unknown_preset_suggests_close_names():
    with pytest.raises(ConfigError, match=r"unknown preset 'llama-3-7b'; did you mean .*'llama-3-8b'"):
        archlab.build("llama-3-7b")


def test_unknown_dtype():
    with pytest.raises(ValueError, match=r"dtype: unknown dtype 'float8'"):
        archlab.build(archlab.tiny("gpt2"), dtype="float8")


def test_bad_input_ids():
    model = archlab.build(archlab.tiny("gpt2", max_seq_len=16))
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 512\)"):
        model(torch.tensor([[1, 2, 512]]))
    with pytest.raises(ValueError, match=r"expected an integer tensor of shape \[batch, seq\]"):
        model(torch.zeros(3))
    with pytest.raises(ValueError, match=r"20 tokens exceed the model's context of 16"):
        model(torch.zeros(1, 20, dtype=torch.long))


@pytest.fixture
def llama_dir(tmp_path):
    return save_hf(make_hf(case("llama-mqa").hf_config()), tmp_path)


def test_unknown_model_type(llama_dir):
    cfg = json.loads((llama_dir / "config.json").read_text())
    cfg["model_type"] = "bert"
    (llama_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"model_type 'bert' is not supported; supported: .*llama"):
        archlab.load(llama_dir)


def test_missing_config_field(llama_dir):
    cfg = json.loads((llama_dir / "config.json").read_text())
    del cfg["hidden_size"]
    (llama_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"field 'hidden_size' is missing"):
        archlab.load(llama_dir)


def _rewrite(directory, edit):
    path = directory / "model.safetensors"
    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, path, metadata={"format": "pt"})


def test_missing_tensor_is_named(llama_dir):
    _rewrite(llama_dir, lambda t: t.pop("model.layers.1.self_attn.k_proj.weight"))
    with pytest.raises(CheckpointError, match=r"missing tensors: model\.layers\.1\.self_attn\.k_proj\.weight \(for layers\.1\.attn\.wk\.weight\)"):
        archlab.load(llama_dir)


def test_unexpected_tensor_is_named(llama_dir):
    _rewrite(llama_dir, lambda t: t.update({"model.layers.7.mlp.gate_proj.weight": torch.zeros(2, 2)}))
    with pytest.raises(CheckpointError, match=r"unexpected tensors .*model\.layers\.7\.mlp\.gate_proj\.weight"):
        archlab.load(llama_dir)


def test_wrongly_shaped_tensor_is_named(llama_dir):
    _rewrite(llama_dir, lambda t: t.update({"model.layers.0.mlp.up_proj.weight": torch.zeros(100, 64)}))
    with pytest.raises(CheckpointError, match=r"model\.layers\.0\.mlp\.up_proj\.weight \(for layers\.0\.ffn\.up\.weight\): "
                       r"expected \(112, 64\), got \(100, 64\)"):
        archlab.load(llama_dir)


def test_layout_change_that_cannot_apply_is_a_wrong_shape(tmp_path):
    """GPT-2's fused c_attn is split in three on load; one that does not split evenly is named
    with its stored shape, not a reshape error from torch."""
    directory = archlab.save(archlab.build(archlab.tiny("gpt2")), tmp_path / "m")
    _rewrite(directory, lambda t: t.update({"transformer.h.1.attn.c_attn.weight": torch.zeros(64, 100)}))
    with pytest.raises(CheckpointError, match=r"wrongly shaped tensors: transformer\.h\.1\.attn\.c_attn\.weight "
                       r"\(for layers\.1\.attn\.wq\.weight\): expected \(64, 64\), got \(34, 64\) \(stored as \(64, 100\)\)"):
        archlab.load(directory)


def test_layout_change_that_fails_is_named_not_a_torch_error(tmp_path):
    """DeepSeek-V3's query rows are regrouped per head on load; rows that do not divide into
    heads are reported with the tensor's stored shape, before any data is read."""
    directory = archlab.save(archlab.build(archlab.tiny("deepseek-v3")), tmp_path / "m")
    name = "model.layers.0.self_attn.q_b_proj.weight"
    _rewrite(directory, lambda t: t.update({name: torch.zeros(97, t[name].shape[1])}))  # 97: prime, no whole heads
    with pytest.raises(CheckpointError, match=r"model\.layers\.0\.self_attn\.q_b_proj\.weight \(97, \d+\) "
                       r"\(for layers\.0\.attn\.wq_b\.weight\): cannot be converted") as e:
        archlab.load(directory)
    assert "Traceback" not in str(e.value)


def test_config_that_contradicts_weights(llama_dir):
    cfg = json.loads((llama_dir / "config.json").read_text())
    cfg["intermediate_size"] = 96
    (llama_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"wrongly shaped tensors"):
        archlab.load(llama_dir)


def test_truncated_safetensors(llama_dir):
    path = llama_dir / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: not a readable safetensors file, perhaps truncated or corrupted"):
        archlab.load(llama_dir)


def test_garbage_safetensors(llama_dir):
    (llama_dir / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match=r"truncated or corrupted"):
        archlab.load(llama_dir)


def test_missing_path_and_directory_without_config(tmp_path):
    with pytest.raises(CheckpointError, match=r"no such file or directory"):
        archlab.load(tmp_path / "nope")
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        archlab.load(tmp_path)
