"""Where llama.cpp and a model's authors (and HF) compute different things, which one archlab
follows, with the warning it gives; and the layouts only some files have (MXFP4 experts, fused
gate/up experts)."""

from __future__ import annotations

import warnings

import pytest
import torch

import archlab
from archlab.io.gguf import GGUFFile, read_gguf_config
from gguf_convert import Q, write_gguf
from hf_reference import make_hf
from test_gguf_archs import _gemma3, _gpt_oss, _gptneox, _qwen3_next, _worst


def test_gemma3_attention_scale_follows_llama_cpp(tmp_path):
    """llama.cpp scales Gemma 3's attention by 1/sqrt(head_dim), and the 62-layer 27B's by
    1/sqrt(hidden_size / heads) (src/llama-model.cpp, LLM_ARCH_GEMMA3); HF's GGUF loader always by
    1/sqrt(256). Where they differ, archlab follows llama.cpp and says so."""
    for layers, scalar in ((7, 32), (62, 64 // 4)):
        src = make_hf(_gemma3(num_hidden_layers=layers, query_pre_attn_scalar=scalar), seed=2)
        path = write_gguf(tmp_path / f"g{layers}.gguf", "gemma3", src)
        with pytest.warns(UserWarning, match=rf"gemma3 attention scale 1/sqrt\({scalar}\).*archlab follows llama\.cpp"):
            cfg = read_gguf_config(path)
        assert cfg.attention.scale == pytest.approx(scalar**-0.5)
    src = make_hf(_gemma3(head_dim=256, query_pre_attn_scalar=256), seed=2)
    path = write_gguf(tmp_path / "g256.gguf", "gemma3", src)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_gguf_config(path).attention.scale == pytest.approx(256**-0.5)


def test_gptneox_gelu_follows_the_authors(tmp_path):
    """llama.cpp computes GELU's tanh approximation for gptneox; EleutherAI's code and HF compute
    the exact GELU (Pythia's hidden_act 'gelu'). archlab follows the authors, and says so."""
    path = write_gguf(tmp_path / "neox.gguf", "gptneox", make_hf(_gptneox(), seed=1))
    with pytest.warns(UserWarning, match=r"gptneox MLP activation is exact GELU.*llama\.cpp computes GELU's tanh approximation"):
        cfg = read_gguf_config(path)
    assert cfg.ffn.activation == "gelu"


def test_gpt_oss_yarn_follows_the_authors(tmp_path):
    """llama.cpp rounds YaRN's correction range to whole dimensions; OpenAI's reference and HF
    (truncate=False) do not. archlab follows the authors, and says so; the F32 parity above is
    with YaRN on (GptOssConfig's default RoPE)."""
    src = make_hf(_gpt_oss(), seed=1)
    assert src.config.rope_parameters["rope_type"] == "yarn"
    path = write_gguf(tmp_path / "oss.gguf", "gpt-oss", src)
    with pytest.warns(UserWarning, match=r"gpt-oss YaRN uses the unrounded correction range.*llama\.cpp rounds it"):
        cfg = read_gguf_config(path)
    assert cfg.rope.scaling.kind == "yarn" and cfg.rope.scaling.truncate is False


def test_gpt_oss_mxfp4_experts(tmp_path, parity_report):
    """Real GPT-OSS files keep the experts in MXFP4 (GptOssModel.repack_mxfp4): they load, and
    compute what an F32 file of their values (dequantized by gguf-py) computes."""
    gguf = pytest.importorskip("gguf")
    src = make_hf(_gpt_oss(), seed=2)
    mx = lambda name: Q.MXFP4 if "_exps.weight" in name else Q.F32  # noqa: E731
    path = write_gguf(tmp_path / "mx.gguf", "gpt-oss", src, types=mx)
    g = GGUFFile(path)
    assert {g.type_name(n) for n in g.tensors if "_exps.weight" in n} == {"MXFP4"}
    with pytest.warns(UserWarning, match="gpt-oss YaRN"):
        ours = archlab.load(path).eval()
    exact = write_gguf(tmp_path / "f.gguf", "gpt-oss", src)
    reader = gguf.GGUFReader(str(path))
    deq = {t.name: gguf.quants.dequantize(t.data, t.tensor_type) for t in reader.tensors if "_exps.weight" in t.name}
    with pytest.warns(UserWarning, match="gpt-oss YaRN"):
        f32 = archlab.load(exact).eval()
    with torch.no_grad():  # put gguf-py's dequantized experts into the F32 model
        for i in range(src.config.num_hidden_layers):
            f32.layers[i].ffn.experts.gate.copy_(torch.from_numpy(deq[f"blk.{i}.ffn_gate_exps.weight"].copy()))
            f32.layers[i].ffn.experts.up.copy_(torch.from_numpy(deq[f"blk.{i}.ffn_up_exps.weight"].copy()))
            f32.layers[i].ffn.experts.down.copy_(torch.from_numpy(deq[f"blk.{i}.ffn_down_exps.weight"].copy()))
    worst = _worst(ours, f32, src.config.vocab_size)
    parity_report("gguf", "gpt-oss-mxfp4-vs-dequantized", worst)
    assert worst < 1e-5
    assert _worst(ours, lambda ids: src(ids).logits, src.config.vocab_size) > 1e-3  # MXFP4 really changed the experts


def test_fused_gate_up_experts(tmp_path, parity_report):
    """Converters run with fuse_gate_up_exps write one ffn_gate_up_exps (E, 2F, D) per layer
    instead of ffn_gate_exps and ffn_up_exps; either layout loads as the same model."""
    src = make_hf(_qwen3_next(), seed=5)
    path = write_gguf(tmp_path / "fused.gguf", "qwen3next", src, fuse_gate_up=True)
    assert "blk.0.ffn_gate_up_exps.weight" in GGUFFile(path) and "blk.0.ffn_gate_exps.weight" not in GGUFFile(path)
    worst = _worst(archlab.load(path).eval(), lambda ids: src(ids).logits, src.config.vocab_size)
    parity_report("gguf", "qwen3next-fused-gate-up-f32-vs-source", worst)
    assert worst < 1e-4


def test_llama4_sliding_window_zero_is_all_global_rope(tmp_path, parity_report):
    """llama.cpp's llama4 with attention.sliding_window = 0 (MobileLLM-R1): no chunks, every layer
    rotates, no temperature tuning (src/llama-model.cpp, LLM_ARCH_LLAMA4)."""
    from test_gguf_arch_errors import U32, _with
    from test_gguf_archs import _llama4

    n = 4
    src = make_hf(_llama4(no_rope_layers=[1] * n, layer_types=["full_attention"] * n, attn_temperature_tuning=False), seed=4)
    path = _with(tmp_path / "m.gguf", "llama4", src, **{"attention.sliding_window": (0, U32)})
    ours = archlab.load(path).eval()
    assert {s.kind for s in ours.config.layers} == {"global"} and all(ours.config.rope_layers)
    worst = _worst(ours, lambda ids: src(ids).logits, src.config.vocab_size)
    parity_report("gguf", "llama4-no-chunks-f32-vs-source", worst)
    assert worst < 1e-4
