"""archlab.save writes HF checkpoints that HF transformers loads as the same model.

The reference is always HF's own from_pretrained reading our files: its logits are held to
the original HF model's (HF -> archlab -> HF) or to our model's (preset -> HF)."""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import archlab
import archlab.io.atomic as atomic
import archlab.io.safetensors_dir as stdir
from archlab import AttentionConfig, ConfigError, FFNConfig, MoEConfig, RopeConfig, RopeScaling
from archlab.io.hf import hf_config_json, read_config, save_hf
from families import EXPORTABLE_FAMILIES, cases
from hf_reference import make_hf, randomize, transformers
from marks import slow_except

CASES = [(c.family, c.name, c.hf_config()) for c in cases(*EXPORTABLE_FAMILIES)]
ATOL = 1e-4  # float32


def _hf_load(directory: Path):
    model, info = transformers.AutoModelForCausalLM.from_pretrained(
        directory, attn_implementation="eager", output_loading_info=True
    )
    # every tensor HF's model has came from our files, and every tensor we wrote was used
    assert not any(info.values()), info
    return model.eval()


def _worst_diff(expected_fn, got_fn, vocab: int, seed: int = 1) -> float:
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    with torch.no_grad():
        for shape in ((2, 9), (3, 37)):
            ids = torch.randint(0, vocab, shape, generator=g)
            expected, got = expected_fn(ids), got_fn(ids)
            assert got.shape == expected.shape
            assert expected.std() > 0.1  # logits O(1) and varied: the comparison has teeth
            worst = max(worst, (got - expected).abs().max().item())
    return worst


def _random_model(cfg, seed: int = 0):
    model = archlab.build(cfg)
    randomize(model, seed)  # N(0, 0.1), norms near 1: routing decided by clear margins
    return model.eval()


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _comparable(cfg):
    return cfg.resolved().replace(name="", source="", family="")  # labels, not part of the function


# Cases written as another model_type than the one they were read from: the first family in
# the save order that expresses the model exactly (core.SAVE_ORDER) wins.
SAVED_AS = {
    "mistral-global-headdim": "llama",  # no window and no experts: a Llama, and llama comes first
}
QUICK_CASES = ("gpt2", "llama-gqa-llama3rope", "dsv3-qlora-groups-yarn", "mixtral-sliding-6e-top3", "gemma3-27b-like",
               "qwen2-gqa-bias", "qwen2moe-mixed-sliding")


@pytest.mark.parametrize("family,name,hf_config", slow_except(CASES, QUICK_CASES, ids=[n for _, n, _ in CASES]))
def test_hf_archlab_hf_round_trip(family, name, hf_config, tmp_path, parity_report):
    ref = make_hf(hf_config, seed=zlib.crc32(name.encode()) % 1000)  # not hash(): it differs per process
    ref.save_pretrained(tmp_path / "hf")
    ours = archlab.load(tmp_path / "hf")
    out = archlab.save(ours, tmp_path / "ours")
    assert out == (tmp_path / "ours").absolute()
    written = json.loads((out / "config.json").read_text())
    assert written["model_type"] == SAVED_AS.get(name, hf_config.model_type)
    back = _hf_load(out)
    worst = _worst_diff(lambda ids: ref(ids).logits, lambda ids: back(ids).logits, hf_config.vocab_size)
    parity_report(f"{family} (export)", name, worst)
    assert worst < ATOL, f"{name}: HF on our files differs from the original by {worst:.2e}"
    # the config survives: what we wrote reads back as what HF wrote
    assert _comparable(read_config(out)[2]) == _comparable(read_config(tmp_path / "hf")[2])


def _exportable(preset: str) -> bool:
    try:
        hf_config_json(archlab.tiny(preset))
        return True
    except ConfigError:
        return False


# Every preset whose family HF transformers has; which model_type each is written as, and
# the refusal of the others, are tests/test_export_choice.py's.
EXPORTABLE = [p for p in archlab.presets() if _exportable(p)]


@pytest.mark.parametrize("preset", slow_except(EXPORTABLE, ("gpt2", "llama-3-8b", "deepseek-v3", "gemma-3-1b", "gpt-oss-20b")))
def test_preset_exports_to_hf(preset, tmp_path, parity_report):
    cfg = archlab.tiny(preset)
    ours = _random_model(cfg)
    out = save_hf(ours, tmp_path)
    model_type = json.loads((out / "config.json").read_text())["model_type"]
    back = _hf_load(out)
    worst = _worst_diff(ours, lambda ids: back(ids).logits, cfg.vocab_size)
    parity_report(f"{model_type} (export)", f"{preset}-tiny", worst)
    assert worst < ATOL, f"{preset}: HF on our files differs from our model by {worst:.2e}"
    assert _comparable(read_config(out)[2]) == _comparable(cfg)


def _with_router(cfg, **changes):
    return cfg.replace(moe=replace(cfg.moe, router=replace(cfg.moe.router, **changes)))


# Parts no hf_reference config or preset has, each a different path through the writers.
UNCOMMON = {
    # scale_attn_weights=false
    "gpt2-unscaled-attention": (lambda: archlab.tiny("gpt2", attention=AttentionConfig(n_heads=4, qkv_bias=True, out_bias=True, scale=1.0)), "gpt2"),
    "llama-yarn-geglu-tied": (lambda: archlab.tiny(
        "llama-3-8b", tie_embeddings=True, ffn=FFNConfig(hidden=160, kind="glu", activation="gelu_tanh"),
        position=RopeConfig(theta=10000.0, scaling=RopeScaling("yarn", factor=4.0, original_max_seq_len=64, truncate=False)),
    ), "llama"),
    "mla-with-bias": (lambda: archlab.tiny("deepseek-v2").replace(attention=replace(archlab.tiny("deepseek-v2").attention, bias=True)), "deepseek_v2"),
    # both DeepSeek versions can write it; the newer is chosen
    "mla-without-moe": (lambda: archlab.tiny("deepseek-v3").replace(moe=None, ffn_types=None), "deepseek_v3"),
    # deepseek_v3's router always has a selection bias: written as zeros
    "sigmoid-router-without-bias": (lambda: _with_router(archlab.tiny("deepseek-v3"), score_bias=False), "deepseek_v3"),
}


@pytest.mark.parametrize("case", list(UNCOMMON))
def test_uncommon_parts_export(case, tmp_path):
    make_cfg, model_type = UNCOMMON[case]
    cfg = make_cfg()
    ours = _random_model(cfg)
    out = save_hf(ours, tmp_path)
    assert json.loads((out / "config.json").read_text())["model_type"] == model_type
    back = _hf_load(out)
    assert _worst_diff(ours, lambda ids: back(ids).logits, cfg.vocab_size) < ATOL
    if case != "sigmoid-router-without-bias":
        assert _comparable(read_config(out)[2]) == _comparable(cfg)


@pytest.mark.parametrize("keep", ["rope_parameters", "rope_scaling"])
@pytest.mark.parametrize("preset", ["llama-3.1-405b", "deepseek-v2"])
def test_rope_keys_each_describe_the_rope(preset, keep, tmp_path):
    """v5 reads rope_parameters, older transformers rope_theta + rope_scaling: each alone is enough."""
    cfg = archlab.tiny(preset)
    assert cfg.rope.scaling is not None
    ours = _random_model(cfg)
    out = save_hf(ours, tmp_path)
    path = out / "config.json"
    hf = json.loads(path.read_text())
    drop = ("rope_scaling", "rope_theta") if keep == "rope_parameters" else ("rope_parameters",)
    path.write_text(json.dumps({k: v for k, v in hf.items() if k not in drop}))
    back = _hf_load(out)
    assert _worst_diff(ours, lambda ids: back(ids).logits, cfg.vocab_size) < ATOL


def test_sharded_save_loads(tmp_path):
    cfg = archlab.tiny("deepseek-v3")
    ours = _random_model(cfg)
    limit = 60_000
    out = save_hf(ours, tmp_path / "m", max_shard_bytes=limit)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(out.glob("*.safetensors"))
    assert len(shards) > 2 and not (out / "model.safetensors").exists()
    assert sorted(set(index["weight_map"].values())) == [s.name for s in shards]
    total = 0
    for s in shards:
        with safe_open(str(s), framework="pt") as f:
            assert f.metadata() == {"format": "pt"}
            sizes = [f.get_slice(k).get_shape() for k in f.keys()]
            nbytes = sum(4 * torch.Size(shape).numel() for shape in sizes)
            assert nbytes <= limit or len(sizes) == 1
            assert all(index["weight_map"][k] == s.name for k in f.keys())
            total += nbytes
    assert index["metadata"]["total_size"] == total
    back = _hf_load(out)
    assert _worst_diff(ours, lambda ids: back(ids).logits, cfg.vocab_size) < ATOL
    assert _worst_diff(ours, archlab.load(out), cfg.vocab_size) < ATOL


def test_dtype_is_kept(tmp_path):
    ours = archlab.build(archlab.tiny("llama-3-8b"), dtype="bfloat16")
    out = save_hf(ours, tmp_path)
    hf = json.loads((out / "config.json").read_text())
    assert hf["dtype"] == hf["torch_dtype"] == "bfloat16"
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
    back = transformers.AutoModelForCausalLM.from_pretrained(out, dtype="auto")
    assert back.model.embed_tokens.weight.dtype == torch.bfloat16
    assert torch.equal(back.model.embed_tokens.weight, ours.tok_emb.weight)


def test_refuses_to_overwrite(tmp_path):
    target = tmp_path / "m"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    model = archlab.build(archlab.tiny("gpt2"))
    with pytest.raises(FileExistsError, match=r"m: exists and is not empty; pass overwrite=True"):
        archlab.save(model, target)
    assert _files(target) == {"notes.txt": b"mine"}
    assert sorted(os.listdir(tmp_path)) == ["m"]  # no temporary directory left behind
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match=r"file: exists and is not a directory"):
        save_hf(model, tmp_path / "file", overwrite=True)
    # an empty directory is no one's work: it is filled
    (tmp_path / "empty").mkdir()
    assert (save_hf(model, tmp_path / "empty") / "config.json").exists()


@pytest.mark.parametrize("swap", ["exchange", "two-renames"])
def test_overwrite_replaces_whole_directory(swap, tmp_path, monkeypatch):
    if swap == "two-renames":
        monkeypatch.setattr(atomic, "exchange", lambda a, b: False)
    cfg = archlab.tiny("llama-2-7b")
    target = tmp_path / "m"
    save_hf(_random_model(cfg, seed=1), target)
    (target / "stale.txt").write_text("from before")
    new = _random_model(cfg, seed=2)
    save_hf(new, target, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["m"]
    assert sorted(os.listdir(target)) == ["config.json", "model.safetensors"]
    back = _hf_load(target)
    assert _worst_diff(new, lambda ids: back(ids).logits, cfg.vocab_size) < ATOL


def test_exchange_swaps_two_directories(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "name").write_text(d.name)
    if not atomic.exchange(a, b):
        pytest.skip("this OS cannot swap two paths in one step; saving falls back to two renames")
    assert (a / "name").read_text() == "b" and (b / "name").read_text() == "a"


@pytest.mark.parametrize("existing", [False, True])
def test_failed_write_leaves_target_untouched(existing, tmp_path, monkeypatch):
    cfg = archlab.tiny("deepseek-v2-lite")
    target = tmp_path / "m"
    if existing:
        save_hf(_random_model(cfg, seed=1), target)
    before = _files(target) if existing else None
    calls = []
    real_save_file = stdir.save_file

    def save_file_then_fail(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_save_file(tensors, path, metadata=metadata)

    monkeypatch.setattr(stdir, "save_file", save_file_then_fail)
    with pytest.raises(OSError, match="No space left"):
        save_hf(_random_model(cfg, seed=2), target, overwrite=True, max_shard_bytes=50_000)
    assert len(calls) == 3  # two shards were written before the failure
    assert sorted(os.listdir(tmp_path)) == (["m"] if existing else [])
    if existing:
        assert _files(target) == before


def test_failed_swap_puts_old_directory_back(tmp_path, monkeypatch):
    cfg = archlab.tiny("gpt2")
    target = tmp_path / "m"
    save_hf(_random_model(cfg, seed=1), target)
    before = _files(target)
    monkeypatch.setattr(atomic, "exchange", lambda a, b: False)
    real_rename, calls = os.rename, []

    def rename(src, dst):
        if Path(dst).parent == tmp_path:  # the swap, not the shard renames inside the temporary directory
            calls.append((Path(src).name, Path(dst).name))
            if len(calls) == 2:  # old moved aside; moving the new one in fails
                raise OSError(5, "Input/output error")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="Input/output error"):
        save_hf(_random_model(cfg, seed=2), target, overwrite=True)
    assert calls[0][0] == "m" and calls[2][1] == "m"  # aside, failed, back
    assert _files(target) == before
    assert sorted(os.listdir(tmp_path)) == ["m"]


INEXPRESSIBLE = {
    # (GPT-2 with RoPE is GPT-NeoX, a window in some Llama layers SmolLM3: test_export_choice.py)
    "llama-with-moe": (
        lambda: archlab.tiny("llama-3-8b").replace(moe=MoEConfig(n_experts=4, top_k=2, hidden=32), ffn=None),
        r"llama: .*moe \(LLaMA has no mixture of experts\)",
    ),
    "softmax-router-renormalised": (
        lambda: _with_router(archlab.tiny("deepseek-v2"), norm_topk=True),
        r"deepseek_v2: moe\.router\.norm_topk=True \(HF's deepseek_v2 ignores norm_topk_prob",
    ),
    # Qwen2-MoE's o_proj never has a bias, and its shared expert is always gated
    "qwen2-moe-out-bias": (
        lambda: archlab.tiny("qwen2-57b-a14b").replace(attention=replace(archlab.tiny("qwen2-57b-a14b").attention, out_bias=True)),
        r"qwen2_moe: attention\.out_bias=True \(Qwen2-MoE's o_proj has no bias\)",
    ),
    "qwen2-moe-ungated-shared": (
        lambda: archlab.tiny("qwen2-57b-a14b").replace(moe=replace(archlab.tiny("qwen2-57b-a14b").moe, shared_gate=False)),
        r"qwen2_moe: moe\.n_shared=8 shared_gate=False \(Qwen2-MoE's MoE layers have a gated shared expert\)",
    ),
    "moe-every-other-layer": (
        lambda: archlab.tiny("deepseek-v3").replace(ffn_types=("dense", "moe", "dense", "moe")),
        r"deepseek_v3: ffn_types=\['dense', 'moe', 'dense', 'moe'\] \(DeepSeek's MoE layers are all layers from first_k_dense_replace on\)",
    ),
}


@pytest.mark.parametrize("case", list(INEXPRESSIBLE))
def test_inexpressible_config_is_refused(case, tmp_path):
    make_cfg, message = INEXPRESSIBLE[case]
    model = archlab.build(make_cfg())
    with pytest.raises(ConfigError, match=r"cannot save .* in HF format: no HF model_type expresses this config exactly"):
        archlab.save(model, tmp_path / "m")
    with pytest.raises(ConfigError, match=message):
        archlab.save(model, tmp_path / "m")
    assert os.listdir(tmp_path) == []
