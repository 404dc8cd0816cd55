"""GGUF qwen2 / qwen2moe beyond the common checks of test_gguf_archs.py: what llama.cpp assumes
where the converter writes nothing, and what neither llama.cpp nor HF computes, refused by name."""

from __future__ import annotations

import pytest

import archlab
from archlab.io.gguf import GGUFFile, read_gguf_config
from gguf_convert import gguf, write_gguf
from hf_reference import make_hf
from test_gguf_arch_errors import U32, _with
from test_gguf_archs import _SMALL, _qwen2, _qwen2moe, _worst

transformers = pytest.importorskip("transformers")
CheckpointError = archlab.CheckpointError
BOOL = gguf.GGUFValueType.BOOL


@pytest.mark.parametrize("arch, extra, message", [
    # src/models/qwen2.cpp, qwen2moe.cpp: GGML_ASSERT(n_embd_head == n_rot)
    ("qwen2", {"rope.dimension_count": (8, U32)},
     r"qwen2\.rope\.dimension_count=8 differs from the head dimension 16; llama\.cpp's qwen2 rotates whole heads"),
    ("qwen2moe", {"rope.dimension_count": (8, U32)}, r"qwen2moe\.rope\.dimension_count=8 differs from the head dimension 16"),
    # qwen2moe.cpp: build_moe_ffn(..., LLM_FFN_SILU, false, ..., LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX)
    ("qwen2moe", {"expert_weights_norm": (True, BOOL)},
     r"qwen2moe\.expert_weights_norm=True is not supported \(False: llama\.cpp's qwen2moe never renormalises"),
    ("qwen2moe", {"expert_gating_func": (2, U32)}, r"qwen2moe\.expert_gating_func=2 is not supported \(1: .* softmax"),
    ("qwen2moe", {"leading_dense_block_count": (1, U32)}, r"qwen2moe\.leading_dense_block_count=1 is not supported"),
    # qwen2moe.cpp: "n_expert_used must be > 0 for QWEN2MOE"
    ("qwen2moe", {"expert_used_count": (0, U32)}, r"qwen2moe\.expert_used_count=0; qwen2moe needs experts"),
], ids=["qwen2-partial-rope", "qwen2moe-partial-rope", "qwen2moe-norm-topk", "qwen2moe-sigmoid", "qwen2moe-dense-first",
        "qwen2moe-no-experts-used"])
def test_metadata_llama_cpp_does_not_compute_is_refused(tmp_path, arch, extra, message):
    src = make_hf(_qwen2() if arch == "qwen2" else _qwen2moe(), seed=0)
    path = _with(tmp_path / "m.gguf", arch, src, **extra)
    with pytest.raises(CheckpointError, match=rf"m\.gguf: {message}"):
        read_gguf_config(path)


def test_qwen2_without_qkv_biases_is_refused(tmp_path):
    """Qwen2's q/k/v biases are part of the architecture (Qwen2Attention: bias=True), not read
    from their presence: a file without them (a Llama written as qwen2) is no HF Qwen2."""
    src = make_hf(transformers.LlamaConfig(**_SMALL), seed=0)
    path = write_gguf(tmp_path / "m.gguf", "qwen2", src)
    with pytest.raises(CheckpointError, match=r"blk\.0\.attn_q\.bias"):
        archlab.load(path)


def test_qwen2moe_expert_widths_default_as_llama_cpp(tmp_path):
    """Without expert_feed_forward_length / expert_shared_feed_forward_length, llama.cpp's
    qwen2moe (load_arch_tensors) takes feed_forward_length / expert_used_count and
    feed_forward_length; a model of those widths must load equal to its source."""
    src = make_hf(_qwen2moe(intermediate_size=96, moe_intermediate_size=48, shared_expert_intermediate_size=96), seed=3)
    path = write_gguf(tmp_path / "m.gguf", "qwen2moe", src)
    data = path.read_bytes()
    for key in (b"qwen2moe.expert_feed_forward_length", b"qwen2moe.expert_shared_feed_forward_length"):
        assert data.count(key) == 1
        data = data.replace(key, key[:-1] + b"X")  # same length: the header stays valid
    path.write_bytes(data)
    ours = archlab.load(path).eval()
    assert (ours.config.moe.hidden, ours.config.moe.n_shared) == (48, 2)
    worst = _worst(ours, lambda ids: src(ids).logits, src.config.vocab_size)
    assert worst < 1e-4, f"max |logit difference| {worst:.2e}"


def test_qwen2moe_shared_gate_of_either_shape(tmp_path, monkeypatch):
    """The shared expert's gate as the published files hold it, (D,) (the converter squeezed
    every tensor then), and as today's converter writes HF's (1, D): both load the source model."""
    import gguf_convert

    src = make_hf(_qwen2moe(), seed=4)
    squeezed = write_gguf(tmp_path / "a.gguf", "qwen2moe", src)
    tensors = gguf_convert._tensors
    monkeypatch.setattr(gguf_convert, "_tensors", lambda *a, **k: {
        n: t.reshape(1, -1) if n.endswith("ffn_gate_inp_shexp.weight") else t for n, t in tensors(*a, **k).items()})
    kept = write_gguf(tmp_path / "b.gguf", "qwen2moe", src)
    name = "blk.0.ffn_gate_inp_shexp.weight"
    assert (len(GGUFFile(squeezed).shape(name)), len(GGUFFile(kept).shape(name))) == (1, 2)
    for path in (squeezed, kept):
        worst = _worst(archlab.load(path).eval(), lambda ids: src(ids).logits, src.config.vocab_size)
        assert worst < 1e-4, f"{path.name}: max |logit difference| {worst:.2e}"


def test_qwen2_output_bias_is_refused(tmp_path, monkeypatch):
    """llama.cpp's qwen2 graph would add an attn_output.bias; HF's Qwen2 has none (o_proj
    bias=False), so a file with one is refused naming it, not loaded without it."""
    import numpy as np

    import gguf_convert

    tensors = gguf_convert._tensors
    monkeypatch.setattr(gguf_convert, "_tensors", lambda *a, **k: {
        **tensors(*a, **k), **{f"blk.{i}.attn_output.bias": np.ones(_SMALL["hidden_size"], np.float32) for i in range(2)}})
    path = write_gguf(tmp_path / "m.gguf", "qwen2", make_hf(_qwen2(), seed=0))
    with pytest.raises(CheckpointError, match=r"blk\.0\.attn_output\.bias"):
        archlab.load(path)


@pytest.mark.parametrize("name", ["qwen2.5-7b", "qwen2.5-72b", "qwen2-57b-a14b", "qwen1.5-moe-a2.7b"])
def test_published_shapes_read_back_as_their_presets(tmp_path, name):
    """Each Qwen2 / Qwen2-MoE preset's config.json, written as the converter writes its GGUF
    metadata, with the tensor names that decide tying and q/k/v biases (empty stand-ins: no
    tensor is read), reads back as the preset: e.g. Qwen2-57B-A14B's shared expert of 20480
    beside an unused intermediate_size 18944, Qwen1.5-MoE's multi-head attention."""
    import dataclasses

    import numpy as np

    from archlab.io.hf.save import _comparable, hf_config_json
    from gguf_convert import ARCH
    from gguf_metadata import metadata

    want = archlab.config(name)
    _, hf = hf_config_json(want)
    config = transformers.CONFIG_MAPPING[hf["model_type"]](**hf)
    arch = "qwen2" if hf["model_type"] == "qwen2" else "qwen2moe"
    w = gguf.GGUFWriter(str(tmp_path / "m.gguf"), gguf.MODEL_ARCH_NAMES[ARCH[arch]])
    metadata(w, arch, config)
    assert not want.tie_embeddings and want.attention.qkv_bias
    for tensor in ("output.weight", "blk.0.attn_q.bias"):
        w.add_tensor(tensor, np.zeros(1, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    got = read_gguf_config(tmp_path / "m.gguf")
    # GGUF holds rms_norm_eps as float32
    assert got.norm.eps == pytest.approx(want.norm.eps, rel=1e-7)
    got = got.replace(norm=dataclasses.replace(got.norm, eps=want.norm.eps))
    assert _comparable(got) == _comparable(want)
