"""Packed weights (archlab.quant): GGUF blocks kept packed equal gguf-py's dequantization bit for
bit; models with packed weights equal their dequantized twins; the int8/int4 schemes stay close to
the float model; bad arguments are named errors. Each kernel is held to F.linear on the
dequantized weight (the "fused" one, which compiles, in a slow test)."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import archlab
from archlab.quant import QuantEmbedding, QuantLinear, packed_linear, quantize_int4, quantize_int8, set_kernel
from archlab.quant.gguf import KEPT_TYPES, pack_gguf
from test_gguf import _hf_llama, _random_blocks, write_llama_gguf

Q = gguf.GGMLQuantizationType


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.int32)  # -0.0 differs from 0.0 here


@pytest.mark.parametrize("type_name", sorted(KEPT_TYPES))
def test_packing_equals_gguf_dequantize(type_name):
    """Every kept type, random blocks (valid scales, every integer pattern): bit for bit gguf-py's values."""
    rng = np.random.default_rng(sorted(KEPT_TYPES).index(type_name))
    rows, cols = 6, 512
    raw = _random_blocks(Q[type_name], rows, cols, rng)
    ref = gguf.quants.dequantize(raw, Q[type_name]).reshape(rows, cols)
    pw = pack_gguf(raw, type_name, (rows, cols))
    assert pw.shape == (rows, cols) and pw.nbytes() < rows * cols * 2  # packed, not float
    assert np.array_equal(_bits(pw.dequantize().numpy()), _bits(ref))
    # a subset of rows, as the embedding gathers them
    idx = torch.tensor([4, 0, 4])
    assert np.array_equal(_bits(pw.dequantize(rows=idx).numpy()), _bits(ref[[4, 0, 4]]))


def test_q4_0_keeps_the_sign_of_zero():
    """Q4_0 is d * (q - 8): with d < 0 and q = 8 the value is -0.0, which a q * d + min form would make +0.0."""
    block = np.zeros((1, 18), dtype=np.uint8)
    block[0, :2] = np.array([-0.5], dtype=np.float16).view(np.uint8)
    block[0, 2:] = 0x88  # every nibble 8
    ref = gguf.quants.dequantize(block, Q.Q4_0)
    assert np.signbit(ref).all()
    assert np.array_equal(_bits(pack_gguf(block, "Q4_0", (1, 32)).dequantize().numpy()), _bits(ref.reshape(1, 32)))


@pytest.mark.parametrize("make", [quantize_int8, lambda w: quantize_int8(w, 32), quantize_int4])
@pytest.mark.parametrize("kernel", ["dequant", "auto-prefill"])
def test_kernels_equal_linear_on_the_dequantized_weight(make, kernel):
    torch.manual_seed(0)
    w, b = torch.randn(48, 64), torch.randn(48)
    pw = make(w)
    x = torch.randn(2, 11, 64)
    expected = F.linear(x, pw.dequantize(), b)
    if kernel == "auto-prefill":  # 22 tokens: above the fused kernel's limit, the GEMM path
        got = packed_linear(x, pw, b, "auto")
    else:
        got = packed_linear(x, pw, b, kernel)
    assert torch.equal(got, expected)
    # the quantization error itself is small: a scheme, not noise
    err = (pw.dequantize() - w).abs().max() / w.abs().max()
    assert err < (0.01 if pw.bits == 8 else 0.1)


@pytest.mark.slow
@pytest.mark.parametrize("make", [quantize_int8, lambda w: quantize_int8(w, 32), quantize_int4,
                                  lambda w: pack_gguf(_random_blocks(Q.Q4_0, 48, 64, np.random.default_rng(0)), "Q4_0", (48, 64))])
def test_fused_kernel_equals_linear(make):
    torch.manual_seed(0)
    pw = make(torch.randn(48, 64))
    for m in (1, 3):
        x = torch.randn(m, 64)
        torch.testing.assert_close(packed_linear(x, pw, None, "fused"), F.linear(x, pw.dequantize()), rtol=1e-5, atol=1e-5)


def test_int8pack_kernel_and_its_refusal():
    torch.manual_seed(0)
    pw = quantize_int8(torch.randn(32, 64))
    x = torch.randn(3, 64)
    torch.testing.assert_close(packed_linear(x, pw, None, "int8pack"), F.linear(x, pw.dequantize()), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="int8pack.*int4"):
        packed_linear(x, quantize_int4(torch.randn(32, 64)), None, "int8pack")
    with pytest.raises(ValueError, match="unknown kernel 'gemv'"):
        packed_linear(x, pw, None, "gemv")


# Every kept type a tiny llama can carry (rows of 64: the K-quants' 256-wide blocks are covered above)
_KEEP_TYPES = {"token_embd": Q.Q8_0, "attn_q": Q.Q4_0, "attn_k": Q.Q8_0, "attn_v": Q.F16, "attn_output": Q.Q4_1,
               "ffn_gate": Q.Q4_1, "ffn_up": Q.Q5_0, "ffn_down": Q.Q4_0, "output": Q.Q8_0}


@pytest.fixture(scope="module", params=["untied", "tied"])
def tiny_gguf(request, tmp_path_factory):
    src = _hf_llama(seed=5, tie_word_embeddings=request.param == "tied")
    path = write_llama_gguf(tmp_path_factory.mktemp("q") / "tiny.gguf", src, types=lambda n: _KEEP_TYPES[n.split(".")[-2]])
    return path, archlab.load(path).eval()


def _ids():
    return torch.randint(0, 301, (2, 9), generator=torch.Generator().manual_seed(3))


def test_keep_holds_the_files_blocks_and_equals_the_dequantized_model(tiny_gguf):
    path, ref = tiny_gguf
    kept = archlab.load(path, quant="keep").eval()
    set_kernel(kept, "dequant")
    a = kept.layers[0].attn
    assert isinstance(a.wq, QuantLinear) and a.wq.fmt == "Q4_0" and a.wk.fmt == "Q8_0"
    assert isinstance(a.wv, torch.nn.Linear)  # F16 is no packed type: read as before
    assert isinstance(kept.tok_emb, QuantEmbedding) and kept.layers[1].ffn.up.__class__ is torch.nn.Linear  # Q5_0 not kept
    # the same values, the Q/K row permutation undone on the packed rows
    ref_params = dict(ref.named_parameters())
    for name, m in kept.named_modules():
        if isinstance(m, (QuantLinear, QuantEmbedding)):
            assert torch.equal(m.weight, ref_params[f"{name}.weight"]), name
    with torch.no_grad():
        assert torch.equal(kept(_ids()), ref(_ids()))  # same weights, same GEMMs: identical


def test_int8_int4_close_to_their_float_model(tiny_gguf):
    path, ref = tiny_gguf
    with torch.no_grad():
        expected = ref(_ids())
        for quant, tol in (("int8", 0.05), ("int4", 0.3)):  # measured ~0.02 and ~0.1 on these random weights
            m = archlab.load(path, quant=quant).eval()
            set_kernel(m, "dequant")
            assert all(not isinstance(x, torch.nn.Linear) for x in m.modules())
            rel = ((m(_ids()) - expected).norm() / expected.norm()).item()  # relative RMS error of the logits
            assert 0 < rel < tol, (quant, rel)


def test_generation_with_packed_weights_equals_its_dequantized_twin(tiny_gguf):
    path, ref = tiny_gguf
    kept = archlab.load(path, quant="keep").eval()
    set_kernel(kept, "dequant")
    prompt = [5, 17, 42, 7]
    assert archlab.generate(kept, prompt, 8) == archlab.generate(ref, prompt, 8)


def test_quantize_save_and_load_round_trip(tiny_gguf, tmp_path):
    from archlab.io.quantized import save_quantized

    path, _ = tiny_gguf
    m = archlab.load(path, quant="int4").eval()
    out = save_quantized(m, tmp_path / "q4", "int4")
    back = archlab.load(out).eval()
    set_kernel(m, "dequant"), set_kernel(back, "dequant")
    with torch.no_grad():
        assert torch.equal(back(_ids()), m(_ids()))
    with pytest.raises(ValueError, match="already quantized"):
        archlab.load(out, quant="int8")


def test_bad_quant_arguments_are_named(tiny_gguf, tmp_path):
    path, ref = tiny_gguf
    with pytest.raises(ValueError, match="quant='int3' is not a quantization"):
        archlab.load(path, quant="int3")
    archlab.save(ref, tmp_path / "hf")
    with pytest.raises(ValueError, match="quant='keep' keeps a GGUF"):
        archlab.load(tmp_path / "hf", quant="keep")
    with pytest.raises(ValueError, match="unknown kernel 'fast'"):
        set_kernel(ref, "fast")
    with pytest.raises(ValueError, match="block size 5 does not divide"):
        quantize_int8(torch.randn(4, 64), 5)
    with pytest.raises(ValueError, match="already holds packed weights"):
        from archlab.quant import quantize_model
        quantize_model(archlab.load(path, quant="int8"), "int4")


def test_cli_quantize_writes_a_loadable_folder(tiny_gguf, tmp_path, capsys):
    from archlab.cli import main

    path, _ = tiny_gguf
    out = tmp_path / "q8"
    assert main(["quantize", str(path), "--to", "int8", "-o", str(out)]) == 0
    m, direct = archlab.load(out).eval(), archlab.load(path, quant="int8").eval()
    set_kernel(m, "dequant"), set_kernel(direct, "dequant")
    with torch.no_grad():
        assert torch.equal(m(_ids()), direct(_ids()))
    assert main(["quantize", str(path), "--to", "int8", "-o", str(out)]) == 2  # exists: refused, named
    assert "--overwrite" in capsys.readouterr().err


def _dequantized_twin(model):
    """A float copy whose linear weights (and embedding) are the packed model's dequantized values."""
    import copy

    twin = copy.deepcopy(model)
    for name, m in list(model.named_modules()):
        if isinstance(m, (QuantLinear, QuantEmbedding)):
            parent_name, _, attr = name.rpartition(".")
            if isinstance(m, QuantLinear):
                new = torch.nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
                if m.bias is not None:
                    new.bias.data = m.bias.data.clone()
            else:
                new = torch.nn.Embedding(m.num_embeddings, m.embedding_dim)
            new.weight.data = m.weight.clone()
            setattr(twin.get_submodule(parent_name), attr, new)
    return twin


# one preset per attention / FFN kind the packed linears replace: GQA+SwiGLU, MHA+GELU (GPT-2, biases,
# learned positions), MLA+MoE (absorbed decode reads wkv_b's matrix), DeltaNet+MoE with a shared gate,
# sliding windows (Gemma 3)
@pytest.mark.parametrize("preset", ["smollm2-135m", "gpt2", "deepseek-v2-lite", "qwen3-next-80b-a3b", "gemma-3-1b"])
@pytest.mark.parametrize("scheme", ["int4"])  # int8 goes through the same modules (tests above)
def test_every_kind_with_packed_weights_equals_its_dequantized_twin(preset, scheme):
    from archlab.quant import quantize_model

    torch.manual_seed(0)
    cfg = archlab.tiny(preset)
    model = archlab.build(cfg)
    model.init_weights()
    model.eval()
    quantize_model(model, scheme)
    set_kernel(model, "dequant")
    twin = _dequantized_twin(model).eval()
    ids = torch.randint(0, cfg.vocab_size, (2, 7), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(ids), twin(ids), rtol=1e-5, atol=1e-5)
    assert archlab.generate(model, [3, 4, 5], 4) == archlab.generate(twin, [3, 4, 5], 4)
