"""archlab.load of GGUF files computes HF transformers' logits: the real SmolLM2-135M-Instruct
Q4_1 file, and tiny llama GGUFs written here from random HF models the way llama.cpp's
converter writes them. Dequantization of every supported type is checked against an
independent dequantizer, and broken files against specific error messages."""

from __future__ import annotations

import math
import re
import struct
import zlib

import numpy as np
import pytest
import torch

import archlab
from archlab.io.gguf import SUPPORTED_TYPES, GGUFFile, read_gguf_config
from hf_reference import make_hf
from test_fetch import fetch_smollm2
from test_tokenizer import _tiny_gguf_vocab

transformers = pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")
Q = gguf.GGMLQuantizationType
CheckpointError = archlab.CheckpointError


# ---- the real SmolLM2 GGUF ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def smollm2():
    path = fetch_smollm2()
    ours = archlab.load(path).eval()
    ref = transformers.AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    # Our tokenizer makes the inputs (test_tokenizer.py proves its ids equal HF's); both models get the same ids.
    tok = archlab.load_tokenizer(path)
    return path, ours, ref, tok


@pytest.mark.slow
def test_smollm2_logits_equal_hf(smollm2, parity_report):
    path, ours, ref, tok = smollm2
    prompts = [
        tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}]),
        "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
        "The quick brown fox jumps over the lazy dog. Привет! 你好 12345",
    ]
    worst = 0.0
    with torch.no_grad():
        for text in prompts:
            ids = torch.tensor([tok.encode(text)])
            expected = ref(ids).logits
            got = ours(ids)
            assert got.shape == expected.shape == (1, ids.shape[1], 49152)
            assert expected.std() > 1.0  # real logits, not a degenerate model
            assert torch.equal(got[0, -1].argmax(), expected[0, -1].argmax())
            worst = max(worst, (got - expected).abs().max().item())
    parity_report("gguf", "smollm2-135m-instruct-q4_1", worst)
    assert worst < 1e-3, f"max |logit difference| {worst:.2e}"


@pytest.mark.slow
def test_smollm2_config_equals_hf(smollm2):
    path, ours, ref, _ = smollm2
    c, h = ours.config, ref.config
    assert (c.family, c.vocab_size, c.d_model, c.n_layers, c.max_seq_len) == ("llama", h.vocab_size, h.hidden_size, h.num_hidden_layers, h.max_position_embeddings)
    a = c.attention
    assert (a.n_heads, a.n_kv_heads, a.head_dim) == (h.num_attention_heads, h.num_key_value_heads, h.head_dim)
    assert c.ffn.hidden == h.intermediate_size and c.tie_embeddings is h.tie_word_embeddings is True
    assert c.rope.theta == h.rope_parameters["rope_theta"] and c.rope.scaling is None
    assert c.norm.eps == pytest.approx(h.rms_norm_eps)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())


@pytest.mark.slow
def test_smollm2_greedy_continuation_equals_hf(smollm2):
    path, ours, ref, tok = smollm2
    prompts = [
        "The capital of France is",
        tok.apply_chat_template([{"role": "user", "content": "Write a haiku about the sea."}]),
    ]
    for text in prompts:
        ids = tok.encode(text)
        got = archlab.generate(ours, ids, max_new_tokens=30)
        with torch.no_grad():
            want = ref.generate(torch.tensor([ids]), max_new_tokens=30, do_sample=False, eos_token_id=None, pad_token_id=0)
        assert got == want[0, len(ids):].tolist(), f"{text!r}: {tok.decode(got)!r} != {tok.decode(want[0, len(ids):].tolist())!r}"
    assert "Paris" in tok.decode(archlab.generate(ours, tok.encode(prompts[0]), max_new_tokens=5))


@pytest.mark.slow
def test_smollm2_exports_to_hf_format(smollm2, tmp_path):
    # a real checkpoint through our writer: HF loads the directory and computes the same logits
    path, ours, ref, tok = smollm2
    archlab.save(ours, tmp_path / "smollm2")
    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "smollm2", dtype=torch.float32).eval()
    ids = torch.tensor([tok.encode("Exported weights must mean the same thing.")])
    with torch.no_grad():
        torch.testing.assert_close(back(ids).logits, ours(ids), atol=1e-4, rtol=0)


@pytest.mark.slow
def test_cli_generate_streams_the_continuation(smollm2, monkeypatch, capsys):
    from archlab.cli import main

    path = smollm2[0]
    assert main(["generate", str(path), "The capital of France is", "--max-new-tokens", "8"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("The capital of France is") and "Paris" in out
    assert "tok/s" in err and err.startswith("load ")  # the stats line: load time, then speed


# ---- writing tiny llama GGUFs the way llama.cpp's converter does ----------------------------------

def llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf.py, LlamaModel.permute: each head's rotate-half rows -> adjacent pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_freqs(theta: float, dim: int, factor: float, low: float, high: float, orig: int) -> np.ndarray:
    """convert_hf_to_gguf.py, LlamaModel.generate_extra_tensors: the divisor of each RoPE frequency."""
    out = []
    for i in range(0, dim, 2):
        wavelen = 2 * math.pi * theta ** (i / dim)
        if wavelen < orig / high:
            out.append(1.0)
        elif wavelen > orig / low:
            out.append(factor)
        else:
            smooth = (orig / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


_LAYER_NAMES = {
    "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
}


def _gguf_name(hf_name: str) -> str:
    top = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}
    if hf_name in top:
        return top[hf_name]
    _, _, i, rest = hf_name.split(".", 3)  # model.layers.{i}.<module>.<weight|bias>
    module, kind = rest.rsplit(".", 1)
    return f"blk.{i}.{_LAYER_NAMES[module]}.{kind}"


def write_llama_gguf(path, hf_model, types=None, arch="llama", drop=(), extra=None, rope_freqs=None, metadata_drop=()):
    """`hf_model` as a GGUF: llama.cpp's names, its Q/K row permutation, tensors quantized by
    `types(gguf_name) -> GGMLQuantizationType` (norms stay F32, as llama.cpp keeps them)."""
    c = hf_model.config
    head_dim = c.hidden_size // c.num_attention_heads
    w = gguf.GGUFWriter(str(path), arch)
    meta = {
        "block_count": c.num_hidden_layers, "context_length": c.max_position_embeddings,
        "embedding_length": c.hidden_size, "feed_forward_length": c.intermediate_size,
        "attention.head_count": c.num_attention_heads, "attention.head_count_kv": c.num_key_value_heads,
        "attention.layer_norm_rms_epsilon": c.rms_norm_eps, "rope.freq_base": c.rope_parameters["rope_theta"],
        "rope.dimension_count": head_dim, "vocab_size": c.vocab_size,
    }
    for key, value in meta.items():
        if key in metadata_drop:
            continue
        (w.add_float32 if isinstance(value, float) else w.add_uint32)(f"{arch}.{key}", value)
    sd = hf_model.state_dict()
    if c.tie_word_embeddings:
        sd = {k: v for k, v in sd.items() if k != "lm_head.weight"}
    for hf_name, t in sd.items():
        name = _gguf_name(hf_name)
        if name in drop:
            continue
        a = t.detach().float().numpy()
        if ".attn_q." in name:
            a = llama_cpp_permute(a, c.num_attention_heads)
        elif ".attn_k." in name:
            a = llama_cpp_permute(a, c.num_key_value_heads)
        qtype = Q.F32 if a.ndim == 1 or types is None else types(name)
        if qtype == Q.F32:
            w.add_tensor(name, a)
        elif qtype == Q.F16:
            w.add_tensor(name, a.astype(np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(a, qtype), raw_dtype=qtype)
    if rope_freqs is not None:
        w.add_tensor("rope_freqs.weight", rope_freqs)
    for name, (array, raw_dtype) in (extra or {}).items():
        w.add_tensor(name, array, raw_dtype=raw_dtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _hf_llama(seed=0, **kw):
    base = dict(vocab_size=301, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=8,
                num_key_value_heads=2, max_position_embeddings=128, bos_token_id=0, eos_token_id=1, rms_norm_eps=1e-5)
    base.update(kw)
    return make_hf(transformers.LlamaConfig(**base), seed=seed)


def _ids(vocab: int, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab, shape, generator=g) for shape in ((1, 1), (2, 9), (3, 37))]


def _worst(ours, ref, vocab) -> float:
    worst = 0.0
    with torch.no_grad():
        for ids in _ids(vocab):
            expected = ref(ids).logits
            assert expected.std() > 0.1
            worst = max(worst, (ours(ids) - expected).abs().max().item())
    return worst


TINY = {
    "gqa": dict(),
    "mqa-tied": dict(num_attention_heads=4, num_key_value_heads=1, tie_word_embeddings=True),
    "mha-bias": dict(num_attention_heads=4, num_key_value_heads=4, attention_bias=True, mlp_bias=True, num_hidden_layers=3),
}


@pytest.mark.parametrize("name", list(TINY))
def test_tiny_f32_gguf_equals_source_hf_model(tmp_path, name, parity_report):
    """F32 tensors: loading the GGUF must give back exactly the HF model it was written from
    (names, the Q/K permutation, tying and biases all round-trip)."""
    ref = _hf_llama(seed=len(name), **TINY[name])
    path = write_llama_gguf(tmp_path / "tiny.gguf", ref)
    ours = archlab.load(path).eval()
    assert read_gguf_config(path) == ours.config
    assert ours.config.tie_embeddings is ref.config.tie_word_embeddings
    worst = _worst(ours, ref, ref.config.vocab_size)
    parity_report("gguf", f"tiny-{name}-f32", worst)
    assert worst < 1e-4


def test_tiny_llama3_rope_freqs_recovered(tmp_path, parity_report):
    """Llama 3.1 scaling lives in a rope_freqs.weight tensor, not in the metadata; the model must
    match the HF model whose rope_parameters produced it."""
    rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 32}
    ref = _hf_llama(seed=3, num_attention_heads=4, num_key_value_heads=2, rope_parameters=rope)
    freqs = llama3_rope_freqs(500000.0, 16, 8.0, 1.0, 4.0, 32)
    assert 1.0 < freqs.max() and freqs.min() == 1.0  # this config exercises the whole curve
    path = write_llama_gguf(tmp_path / "tiny.gguf", ref, rope_freqs=freqs)
    ours = archlab.load(path).eval()
    s = ours.config.rope.scaling
    assert (s.kind, s.factor, s.original_max_seq_len, s.low_freq_factor, s.high_freq_factor) == ("llama3", 8.0, 32, 1.0, 4.0)
    worst = _worst(ours, ref, ref.config.vocab_size)
    parity_report("gguf", "tiny-llama3-rope-freqs", worst)
    assert worst < 1e-4


_MIXED = {
    "token_embd": Q.Q8_0, "attn_q": Q.F16, "attn_k": Q.Q8_0, "attn_v": Q.BF16, "attn_output": Q.Q4_0,
    "ffn_gate": Q.Q4_1, "ffn_up": Q.Q5_0, "ffn_down": Q.Q5_1, "output": Q.Q8_0,
}


def _mixed_types(name: str):
    return _MIXED[name.split(".")[-2]]


def test_tiny_quantized_gguf_equals_hf_gguf_loader(tmp_path, parity_report):
    """F16/BF16/Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 tensors: ours and HF's GGUF loader dequantize the same
    file, so logits agree to float32 precision."""
    src = _hf_llama(seed=7)
    path = write_llama_gguf(tmp_path / "tiny.gguf", src, types=_mixed_types)
    g = GGUFFile(path)
    assert {g.type_name(n) for n in g.tensors} == {"F32", *(t.name for t in _MIXED.values())}
    ours = archlab.load(path).eval()
    ref = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=path.name, dtype=torch.float32, attn_implementation="eager").eval()
    worst = _worst(ours, ref, src.config.vocab_size)
    parity_report("gguf", "tiny-mixed-quant", worst)
    assert worst < 1e-4
    # and the quantization really changed the weights (the comparison is not of an F32 model)
    with torch.no_grad():
        ids = _ids(301)[1]
        assert (ours(ids) - src(ids).logits).abs().max() > 1e-3


def test_load_dtype(tmp_path):
    path = write_llama_gguf(tmp_path / "tiny.gguf", _hf_llama())
    m = archlab.load(path, dtype="bfloat16")
    assert {p.dtype for p in m.parameters()} == {torch.bfloat16}
    assert archlab.load(path).tok_emb.weight.dtype == torch.float32


# ---- dequantization of every supported type vs an independent dequantizer ------------------------

# Byte offsets of the fp16 scale fields in each block (ggml-common.h, block_q*): random bytes
# elsewhere are valid quants, but a random fp16 scale may be inf/NaN, so those are set here.
_BLOCK_SCALES = {
    "Q4_0": (0,), "Q4_1": (0, 2), "Q5_0": (0,), "Q5_1": (0, 2), "Q8_0": (0,),
    "Q2_K": (80, 82), "Q3_K": (108,), "Q4_K": (0, 2), "Q5_K": (0, 2), "Q6_K": (208,),
}


def _random_blocks(qtype, rows: int, cols: int, rng) -> np.ndarray:
    block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    data = rng.integers(0, 256, size=(rows, cols // block_elems, block_bytes), dtype=np.uint8)
    if qtype.name == "MXFP4":  # an E8M0 exponent byte first: scales 2^-10 .. 2^2, not up to 2^127
        data[:, :, 0] = rng.integers(118, 131, size=data.shape[:2], dtype=np.uint8)
    for off in _BLOCK_SCALES.get(qtype.name, ()):
        scales = (rng.standard_normal((rows, cols // block_elems)) * 0.05).astype(np.float16)
        data[:, :, off:off + 2] = scales.view(np.uint8).reshape(rows, -1, 2)
    return data.reshape(rows, -1)


def _q5_reference(raw: np.ndarray, with_min: bool) -> np.ndarray:
    """ggml's dequantize_row_q5_0 / q5_1, written out: 16 low nibbles, a 32-bit word of fifth bits."""
    blocks = raw.reshape(-1, 24 if with_min else 22)
    d = blocks[:, 0:2].copy().view(np.float16).astype(np.float32)
    m = blocks[:, 2:4].copy().view(np.float16).astype(np.float32) if with_min else None
    start = 4 if with_min else 2
    qh = blocks[:, start:start + 4].copy().view("<u4")[:, 0]
    qs = blocks[:, start + 4:start + 20]
    out = np.empty((blocks.shape[0], 32), dtype=np.float32)
    for j in range(16):
        lo = (qs[:, j] & 0x0F) | (((qh >> j) & 1) << 4)
        hi = (qs[:, j] >> 4) | (((qh >> (j + 16)) & 1) << 4)
        if with_min:
            out[:, j], out[:, j + 16] = lo * d[:, 0] + m[:, 0], hi * d[:, 0] + m[:, 0]
        else:
            out[:, j], out[:, j + 16] = (lo.astype(np.int32) - 16) * d[:, 0], (hi.astype(np.int32) - 16) * d[:, 0]
    return out.reshape(-1)


def _mxfp4_reference(raw: np.ndarray) -> np.ndarray:
    """ggml's dequantize_row_mxfp4 (ggml-quants.c), written out: an E8M0 byte e, then 16 bytes of
    FP4 (E2M1) codes, low nibbles the first 16 values, high the last 16; kvalues_mxfp4 holds twice
    each code's value, so the scale is GGML_E8M0_TO_FP32_HALF(e) = 2^(e - 128)."""
    kvalues = np.array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12], dtype=np.float64)
    blocks = raw.reshape(-1, 17)
    d = np.ldexp(1.0, blocks[:, 0].astype(np.int64) - 128)[:, None]
    qs = blocks[:, 1:]
    return np.concatenate((kvalues[qs & 0x0F] * d, kvalues[qs >> 4] * d), axis=1).astype(np.float32).reshape(-1)


def _reference(qtype, raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    if qtype.name == "MXFP4":
        return _mxfp4_reference(raw).reshape(rows, cols)
    if qtype == Q.F32:
        return raw
    if qtype == Q.F16:
        return raw.astype(np.float32)
    if qtype == Q.BF16:
        return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32).reshape(rows, cols)
    if qtype in (Q.Q5_0, Q.Q5_1):
        return _q5_reference(raw, qtype == Q.Q5_1).reshape(rows, cols)
    from transformers.integrations.gguf.dequant import dequantize as hf_dequantize  # torch, independent of gguf-py

    return hf_dequantize(torch.from_numpy(raw.reshape(-1).copy()), int(qtype)).numpy().reshape(rows, cols)


@pytest.mark.parametrize("type_name", sorted(SUPPORTED_TYPES))
def test_dequantize_equals_reference(tmp_path, type_name):
    qtype = Q[type_name]
    rows, cols = 3, 512
    rng = np.random.default_rng(zlib.crc32(type_name.encode()))  # not hash(): it differs per process
    values = rng.standard_normal((rows, cols)).astype(np.float32)
    if qtype == Q.F32:
        raw = values
    elif qtype == Q.F16:
        raw = values.astype(np.float16)
    elif qtype == Q.BF16:
        raw = gguf.quants.quantize(values, qtype)
    else:
        raw = _random_blocks(qtype, rows, cols, rng)
    w = gguf.GGUFWriter(str(tmp_path / "t.gguf"), "llama")
    w.add_tensor("t", raw, raw_dtype=None if raw.dtype != np.uint8 else qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    g = GGUFFile(tmp_path / "t.gguf")
    assert g.type_name("t") == type_name and g.shape("t") == (rows, cols)
    got = g.read("t")
    expected = _reference(qtype, raw, rows, cols)
    assert np.isfinite(expected).all() and expected.std() > 1e-3
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


# ---- our header parser reads what gguf.GGUFReader reads -----------------------------------------

def assert_same_as_gguf_reader(path):
    """Every metadata key, value (and Python type of each value and item) and every tensor entry
    (type, shape, offset, bytes) as gguf-py's reader gives them."""
    ours, ref = GGUFFile(path), gguf.GGUFReader(path)
    assert ours.keys() == list(ref.fields)
    for key, field in ref.fields.items():
        want, got = field.contents(), ours.value(key)
        assert got == want and type(got) is type(want), key
        if isinstance(want, list):
            assert [type(v) for v in got] == [type(v) for v in want], key
            assert ours.length(key) == len(want)
    assert list(ours.tensors) == [t.name for t in ref.tensors]
    for t in ref.tensors:
        o = ours.tensors[t.name]
        assert o.tensor_type == t.tensor_type and o.shape == tuple(t.shape.tolist()), t.name
        assert (o.offset, o.data_offset, o.n_bytes) == (int(t.field.parts[-1][0]), t.data_offset, t.n_bytes), t.name
        assert ours.raw(t.name).tobytes() == t.data.tobytes(), t.name
    return ours


@pytest.mark.slow
def test_parser_equals_gguf_reader_on_smollm2():
    g = assert_same_as_gguf_reader(fetch_smollm2())
    assert g.length("tokenizer.ggml.tokens") == 49152 and len(g.tensors) == 272


V = gguf.GGUFValueType
_ONE_OF_EACH = {
    V.UINT8: 255, V.INT8: -128, V.UINT16: 65535, V.INT16: -32768, V.UINT32: 2**32 - 1, V.INT32: -2**31,
    V.UINT64: 2**64 - 1, V.INT64: -2**63, V.FLOAT32: 0.1, V.FLOAT64: -1e300, V.BOOL: True, V.STRING: "ünïcode ✓ \0",
}


def write_every_value_type(path, endian=gguf.GGUFEndian.LITTLE):
    """Each metadata value type as a scalar and as an array, a non-default alignment, and tensors
    of 1 to 4 dimensions; returns the tensors written as name -> values."""
    w = gguf.GGUFWriter(str(path), "llama", endianess=endian)
    w.add_custom_alignment(64)
    for vtype, v in _ONE_OF_EACH.items():
        w.add_key_value(f"test.{vtype.name.lower()}", v, vtype)
        items = [True, False, True] if vtype == V.BOOL else [v, v, v]
        w.add_key_value(f"test.{vtype.name.lower()}_array", items, V.ARRAY, sub_type=vtype)
    w.add_key_value("test.empty_string", "", V.STRING)
    w.add_array("test.strings", ["", "a", "ü" * 300, "tab\tnul\0"])
    rng = np.random.default_rng(0)
    tensors = {
        "f32_4d": rng.standard_normal((2, 3, 4, 5)).astype(np.float32),
        "f16_2d": rng.standard_normal((3, 64)).astype(np.float16),
        "f32_1d": rng.standard_normal(7).astype(np.float32),
    }
    for name, a in tensors.items():
        w.add_tensor(name, a.copy())  # the big-endian writer swaps its argument in place
    w.add_tensor("q8", gguf.quants.quantize(rng.standard_normal((2, 64)).astype(np.float32), Q.Q8_0), raw_dtype=Q.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return tensors


def _handmade_gguf(kvs: list[tuple[str, int, bytes]], version: int = 3) -> bytes:
    """A GGUF of metadata only, (key, value type, value bytes) each: for what GGUFWriter refuses to
    write (empty arrays) and for damage placed exactly."""
    out = b"GGUF" + struct.pack("<IQQ", version, 0, len(kvs))
    for key, vtype, payload in kvs:
        k = key.encode()
        out += struct.pack("<Q", len(k)) + k + struct.pack("<I", vtype) + payload
    return out


def _arch_kv(arch: str = "llama") -> tuple[str, int, bytes]:
    return ("general.architecture", V.STRING, struct.pack("<Q", len(arch)) + arch.encode())


_TINY_FILES = {
    "f32": lambda p: write_llama_gguf(p, _hf_llama()),
    "mixed-quant": lambda p: write_llama_gguf(p, _hf_llama(seed=7), types=_mixed_types),
    "tied-bias-rope-freqs": lambda p: write_llama_gguf(
        p, _hf_llama(**TINY["mha-bias"], tie_word_embeddings=True), rope_freqs=np.linspace(1, 3, 4, dtype=np.float32)),
    "iq4_nl": lambda p: write_llama_gguf(p, _hf_llama(), drop={"blk.1.attn_v.weight"}, extra={
        "blk.1.attn_v.weight": (np.random.default_rng(0).integers(0, 256, (16, 36), dtype=np.uint8), Q.IQ4_NL)}),
    "vocabulary": lambda p: _tiny_gguf_vocab(p, "qwen2", add_bos=True, hf_json="{}"),
    "every-value-type": write_every_value_type,
    "empty-arrays-and-odd-bool": lambda p: p.write_bytes(_handmade_gguf([
        _arch_kv(), ("test.bool_two", V.BOOL, b"\x02"), ("test.bools", V.ARRAY, struct.pack("<IQ", V.BOOL, 3) + b"\x00\x01\x07"),
        *((f"test.empty_{t.name.lower()}", V.ARRAY, struct.pack("<IQ", t, 0)) for t in _ONE_OF_EACH),
    ])),
}


@pytest.mark.parametrize("name", list(_TINY_FILES))
def test_parser_equals_gguf_reader_on_tiny_files(tmp_path, name):
    path = tmp_path / "t.gguf"
    _TINY_FILES[name](path)
    assert_same_as_gguf_reader(path)


def test_every_value_type_as_python(tmp_path):
    write_every_value_type(tmp_path / "t.gguf")
    g = GGUFFile(tmp_path / "t.gguf")
    for vtype, v in _ONE_OF_EACH.items():
        got = g.value(f"test.{vtype.name.lower()}")
        want = float(np.float32(v)) if vtype == V.FLOAT32 else v
        assert got == want and type(got) is type(want), vtype.name
    assert g.value("test.bool_array") == [True, False, True]
    assert g.value("test.strings") == ["", "a", "ü" * 300, "tab\tnul\0"]
    assert g.shape("f32_4d") == (2, 3, 4, 5) and g.tensors["f32_4d"].shape == (5, 4, 3, 2)
    assert all(t.data_offset % 64 == 0 for t in g.tensors.values())


def test_big_endian_file(tmp_path):
    """gguf-py writes big-endian files for big-endian machines: the metadata reads the same, and
    F32/F16 tensors come back as the numbers written; quantized blocks are refused, not misread."""
    path = tmp_path / "be.gguf"
    tensors = write_every_value_type(path, endian=gguf.GGUFEndian.BIG)
    g = assert_same_as_gguf_reader(path)
    assert g.byte_order == ">" and g.value("test.uint16") == 65535
    for name, a in tensors.items():
        np.testing.assert_array_equal(g.read(name), a.astype(np.float32))
    with pytest.raises(CheckpointError, match=r"tensor 'q8' is Q8_0 in a big-endian GGUF file"):
        g.read("q8")


# ---- broken files: each a CheckpointError that says what is wrong ---------------------------------

@pytest.fixture(scope="module")
def tiny_bytes(tmp_path_factory) -> bytes:
    path = write_llama_gguf(tmp_path_factory.mktemp("tiny") / "tiny.gguf", _hf_llama(), types=_mixed_types)
    return path.read_bytes()


@pytest.mark.parametrize("keep", [0, 5, 100, 2000, 0.5, 0.999], ids=lambda k: f"keep-{k}")
def test_truncated_file(tmp_path, tiny_bytes, keep):
    n = int(len(tiny_bytes) * keep) if isinstance(keep, float) else keep
    path = tmp_path / "cut.gguf"
    path.write_bytes(tiny_bytes[:n])
    with pytest.raises(CheckpointError, match=r"cut\.gguf: .*(truncated|too short)") as e:
        archlab.load(path)
    assert "Traceback" not in str(e.value)


def test_garbage_bytes(tmp_path):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()
    cases = {
        "noise.gguf": (noise, r"not a GGUF file \(starts with .*expected the magic bytes b'GGUF'"),
        "version.gguf": (b"GGUF" + (77).to_bytes(4, "little") + noise, r"GGUF version 77 is not supported"),
        "body.gguf": (b"GGUF" + (3).to_bytes(4, "little") + noise, r"cannot be read as GGUF; the file may be truncated or corrupted"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=rf"{name}: {message}"):
            archlab.load(tmp_path / name)


def test_unsupported_quant_type(tmp_path):
    rng = np.random.default_rng(0)
    # attn_v is (kv_heads * head_dim, d_model) = (16, 64): 2 blocks of 32 values, 18 bytes each, per row
    iq4 = rng.integers(0, 256, size=(16, 2 * 18), dtype=np.uint8)
    path = write_llama_gguf(tmp_path / "iq.gguf", _hf_llama(), drop={"blk.1.attn_v.weight"},
                            extra={"blk.1.attn_v.weight": (iq4, Q.IQ4_NL)})
    with pytest.raises(CheckpointError, match=r"tensors of unsupported type: blk\.1\.attn_v\.weight \(IQ4_NL\); supported types: .*Q4_K"):
        archlab.load(path)


def test_unknown_architecture(tmp_path):
    path = write_llama_gguf(tmp_path / "m.gguf", _hf_llama(), arch="mamba")
    from archlab.io.gguf import ARCHITECTURES

    listed = ", ".join(sorted(ARCHITECTURES))
    assert {"llama", "qwen2", "qwen3", "gemma3", "deepseek2", "gpt-oss"} <= set(ARCHITECTURES)
    with pytest.raises(CheckpointError, match=rf"m\.gguf: general\.architecture 'mamba' is not supported; supported: {re.escape(listed)}$"):
        archlab.load(path)
    with pytest.raises(CheckpointError, match="'mamba' is not supported"):
        read_gguf_config(path)


def test_missing_tensor(tmp_path):
    path = write_llama_gguf(tmp_path / "m.gguf", _hf_llama(), drop={"blk.1.ffn_up.weight"})
    with pytest.raises(CheckpointError, match=r"missing tensors: blk\.1\.ffn_up\.weight \(for layers\.1\.ffn\.up\.weight\)"):
        archlab.load(path)


def test_every_problem_reported_at_once(tmp_path):
    wrong = np.zeros((64, 60), dtype=np.float32)  # attn_output should be (64, 64)
    path = write_llama_gguf(
        tmp_path / "m.gguf", _hf_llama(), drop={"blk.0.ffn_gate.weight", "blk.0.attn_output.weight"},
        extra={"blk.0.attn_output.weight": (wrong, None), "blk.9.attn_q.weight": (np.zeros((4, 4), np.float32), None)},
    )
    with pytest.raises(CheckpointError) as e:
        archlab.load(path)
    msg = str(e.value)
    assert "missing tensors: blk.0.ffn_gate.weight" in msg
    assert "unexpected tensors (not part of the model the metadata describes): blk.9.attn_q.weight" in msg
    assert "wrongly shaped tensors: blk.0.attn_output.weight (for layers.0.attn.wo.weight): expected (64, 64), got (64, 60)" in msg


def test_missing_metadata(tmp_path):
    path = write_llama_gguf(tmp_path / "m.gguf", _hf_llama(), metadata_drop={"block_count"})
    with pytest.raises(CheckpointError, match=r"m\.gguf: GGUF metadata field 'llama\.block_count' is missing"):
        archlab.load(path)


def test_rope_freqs_of_unknown_shape(tmp_path):
    freqs = np.linspace(1.0, 3.0, 4, dtype=np.float32)  # not any Llama 3 curve
    path = write_llama_gguf(tmp_path / "m.gguf", _hf_llama(), rope_freqs=freqs)
    with pytest.raises(CheckpointError, match=r"rope_freqs\.weight holds RoPE frequency divisors .* match no Llama 3 scaling"):
        archlab.load(path)


def _damaged(tmp_path, content: bytes, name: str = "bad.gguf"):
    path = tmp_path / name
    path.write_bytes(content)
    return path


_HUGE = 2**60  # a corrupted length: allocating it, or looping over it, must never be tried


@pytest.mark.parametrize("kvs, message", [
    ([("general.architecture", V.STRING, struct.pack("<Q", _HUGE) + b"llama")], r"metadata 'general\.architecture' at byte \d+ needs 1152921504606846976 bytes"),
    ([_arch_kv(), ("t.strings", V.ARRAY, struct.pack("<IQ", V.STRING, _HUGE) + struct.pack("<Q", 1) + b"a")], r"metadata 't\.strings' \(1152921504606846976 strings\)"),
    ([_arch_kv(), ("t.strings", V.ARRAY, struct.pack("<IQ", V.STRING, 2) + struct.pack("<Q", 1) + b"a" + struct.pack("<Q", _HUGE))], r"metadata 't\.strings' \(2 strings\) runs past the end"),
    ([_arch_kv(), ("t.ints", V.ARRAY, struct.pack("<IQ", V.UINT64, _HUGE) + bytes(8))], r"metadata 't\.ints' \(1152921504606846976 items\)"),
    ([_arch_kv(), ("t.nested", V.ARRAY, struct.pack("<IQ", V.ARRAY, 1) + struct.pack("<IQ", V.UINT8, 1) + b"x")], r"metadata 't\.nested' at byte \d+ is an array of arrays, which llama\.cpp does not read either"),
    ([_arch_kv(), ("t.odd", 13, bytes(8))], r"metadata 't\.odd' at byte \d+ has unknown value type 13"),
    ([_arch_kv(), ("t.x", V.UINT8, b"\x01"), ("t.x", V.UINT8, b"\x02")], r"metadata key 't\.x' appears twice"),
    ([_arch_kv(), ("general.alignment", V.UINT32, struct.pack("<I", 48))], r"general\.alignment must be a UINT32 power of two, got 48"),
    ([_arch_kv(), ("general.alignment", V.UINT64, struct.pack("<Q", 64))], r"general\.alignment must be a UINT32 power of two"),
], ids=["string-length", "string-array-count", "string-in-array", "int-array-count", "nested-array", "value-type", "duplicate-key", "alignment", "alignment-type"])
def test_damaged_metadata(tmp_path, kvs, message):
    path = _damaged(tmp_path, _handmade_gguf(kvs))
    with pytest.raises(CheckpointError, match=rf"bad\.gguf: cannot be read as GGUF; the file may be truncated or corrupted \(\d+ bytes; {message}"):
        GGUFFile(path)


def test_damaged_counts_and_tensor_infos(tmp_path, tiny_bytes):
    prefix = r"bad\.gguf: cannot be read as GGUF; the file may be truncated or corrupted"
    for at in (8, 16):  # tensor count, metadata count
        content = tiny_bytes[:at] + struct.pack("<Q", _HUGE) + tiny_bytes[at + 8:]
        with pytest.raises(CheckpointError, match=rf"{prefix} .*declares \d+ metadata entries and \d+ tensors, more than the file can hold"):
            GGUFFile(_damaged(tmp_path, content))

    def one_tensor(name: bytes, dims: tuple[int, ...], ggml_type: int, offset: int = 0, n_dims: int | None = None) -> bytes:
        info = struct.pack("<Q", len(name)) + name + struct.pack("<I", len(dims) if n_dims is None else n_dims)
        info += struct.pack(f"<{len(dims)}QIQ", *dims, ggml_type, offset)
        kv = _handmade_gguf([_arch_kv()])
        return kv[:8] + struct.pack("<Q", 1) + kv[16:] + info + bytes(64)

    cases = {
        "huge-dims": (one_tensor(b"t", (2**40, 2**40), int(Q.F32)), r"data of tensor 't' \(\d+ bytes at byte \d+\) runs past the end"),
        "offset": (one_tensor(b"t", (4,), int(Q.F32), offset=_HUGE), r"tensor 't' has data offset 1152921504606846976, expected 0"),
        "n-dims": (one_tensor(b"t", (4,), int(Q.F32), n_dims=9), r"tensor 't' has 9 dimensions \(ggml tensors have at most 4\)"),
        "dims-cut": (one_tensor(b"t", (4,), int(Q.F32), n_dims=4)[:-64], r"dimensions of tensor 't' at byte \d+ needs 32 bytes"),
        "type": (one_tensor(b"t", (4,), 1000), r"tensor 't' has ggml type 1000, which is not a known ggml type"),
        "block": (one_tensor(b"t", (33,), int(Q.Q8_0)), r"tensor 't' \(Q8_0\) has rows of 33 values, not a multiple of its block size 32"),
        "name-utf8": (one_tensor(b"\xff\xfe", (4,), int(Q.F32)), r"name of tensor #0 at byte \d+ is not UTF-8"),
    }
    for case, (content, message) in cases.items():
        with pytest.raises(CheckpointError, match=rf"{prefix} \(\d+ bytes; {message}"):
            GGUFFile(_damaged(tmp_path, content))
    assert GGUFFile(_damaged(tmp_path, one_tensor(b"t", (4,), int(Q.F32)))).read("t").shape == (4,)


def test_metadata_string_not_utf8_fails_when_read(tmp_path):
    bad = b"ok\xff"
    content = _handmade_gguf([_arch_kv(), ("t.text", V.STRING, struct.pack("<Q", len(bad)) + bad),
                              ("t.list", V.ARRAY, struct.pack("<IQ", V.STRING, 1) + struct.pack("<Q", len(bad)) + bad)])
    g = GGUFFile(_damaged(tmp_path, content))  # as with gguf-py, a field is decoded only when asked for
    for key in ("t.text", "t.list"):
        with pytest.raises(CheckpointError, match=rf"bad\.gguf: GGUF metadata field '{key}' cannot be read \(.*utf-8.*\); the file may be corrupted"):
            g.value(key)


@pytest.mark.slow
def test_every_cut_of_the_header_is_truncated(tmp_path, tiny_bytes):
    """Cut anywhere from the version to the end of the last tensor: always 'truncated', never a stray exception."""
    full = GGUFFile(_damaged(tmp_path, tiny_bytes, "full.gguf"))
    header_end = min(t.data_offset for t in full.tensors.values())
    data_end = max(t.data_offset + t.n_bytes for t in full.tensors.values())
    cuts = [*range(8, header_end + 1), *range(header_end + 1, data_end, 997), data_end - 1]
    for n in cuts:
        with pytest.raises(CheckpointError, match=r"cut\.gguf: cannot be read as GGUF; the file may be truncated or corrupted"):
            GGUFFile(_damaged(tmp_path, tiny_bytes[:n], "cut.gguf"))


@pytest.mark.slow
def test_random_damage_to_the_header_is_a_checkpoint_error(tmp_path, tiny_bytes):
    """Flipped header bytes either still parse (a changed value) or are a CheckpointError, and so is
    then reading every value and tensor."""
    header_end = min(t.data_offset for t in GGUFFile(_damaged(tmp_path, tiny_bytes, "full.gguf")).tensors.values())
    rng = np.random.default_rng(0)
    outcomes = {"parsed": 0, "refused": 0}
    for _ in range(300):
        content = bytearray(tiny_bytes)
        for at in rng.integers(8, header_end, size=rng.integers(1, 4)):
            content[at] = rng.choice([0, 0xFF, rng.integers(0, 256)])
        try:
            g = GGUFFile(_damaged(tmp_path, bytes(content)))
            for key in g.keys():
                g.value(key, None)
            with np.errstate(all="ignore"):  # damaged scales dequantize to inf/NaN, which is fine here
                for name in g.tensors:
                    g.read(name)
            outcomes["parsed"] += 1
        except CheckpointError as e:
            assert "bad.gguf" in str(e)
            outcomes["refused"] += 1
    assert min(outcomes.values()) > 10, outcomes  # both happened: the damage was not all harmless
