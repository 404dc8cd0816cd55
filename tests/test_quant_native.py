"""The C decode kernel (archlab/quant/gemv.c through quant/native.py) against F.linear on the
dequantized weight: every kept GGUF type (blocks written by gguf-py), our own int8/int4,
shapes drawn by hypothesis, its refusals, its fallback without a compiler, and torch.compile."""

from __future__ import annotations

import shutil

import gguf
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import archlab
from archlab.quant import native, packed_linear, quantize_int4, quantize_int8, set_kernel
from archlab.quant.gguf import KEPT_TYPES, pack_gguf
from archlab.quant.packed import PackedWeight
from test_gguf import _hf_llama, _random_blocks, write_llama_gguf

Q = gguf.GGMLQuantizationType

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None,
                                reason="no C compiler: the kernel cannot be built (its fallback is tested below)")


def _close(y, ref):
    # float32 sums in another order than the GEMM's: relative to the size of the terms
    tol = 1e-5 * max(1.0, ref.abs().max().item())
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=tol)


def test_the_kernel_builds_here():
    assert native.available(), native.why_unavailable()


@pytest.mark.parametrize("type_name", sorted(KEPT_TYPES))
@pytest.mark.parametrize("m", [1, 2, 7, 16])
def test_every_kept_gguf_type(type_name, m):
    rng = np.random.default_rng(sorted(KEPT_TYPES).index(type_name))
    rows, cols = 40, 512
    pw = pack_gguf(_random_blocks(Q[type_name], rows, cols, rng), type_name, (rows, cols))
    x = torch.from_numpy(rng.standard_normal((m, cols), dtype=np.float32))
    layout = native.kernel_layout(pw)
    assert layout is not None, type_name
    y = native.gemv(x, pw, *layout)
    assert y is not None
    _close(y, F.linear(x, pw.dequantize()))
    _close(packed_linear(x, pw, None, "native"), F.linear(x, pw.dequantize()))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 70), nb=st.integers(1, 6), block=st.sampled_from([16, 32, 64, 256]), bits=st.sampled_from([4, 8]),
       has_min=st.booleans(), offset=st.sampled_from([0, 8, 32]), m=st.integers(1, 16), seed=st.integers(0, 2**16))
def test_any_layout(n, nb, block, bits, has_min, offset, m, seed):
    """Random integers, scales and mins in every layout the kernel takes; None where it declines,
    and then packed_linear still gives F.linear's answer (through the dequantize path)."""
    g = torch.Generator().manual_seed(seed)
    k = nb * block
    if bits == 4:
        q = torch.randint(0, 256, (n, k // 2), generator=g, dtype=torch.uint8)
    else:
        q = torch.randint(-128, 128, (n, k), generator=g, dtype=torch.int8)
    scale = torch.randn(n, nb, generator=g) * 0.01
    mn = torch.randn(n, nb, generator=g) * 0.01 if has_min else None
    pw = PackedWeight(q, scale, mn, bits, "test", offset)
    x = torch.randn(m, k, generator=g)
    ref = F.linear(x, pw.dequantize())
    layout = native.kernel_layout(pw)
    takes = not (bits == 4 and nb % 2)
    assert (layout is not None) == takes
    if takes:
        _close(native.gemv(x, pw, *layout), ref)
    _close(packed_linear(x, pw, None, "auto"), ref)


def test_per_channel_int8_and_ours():
    torch.manual_seed(0)
    w = torch.randn(33, 576) * 0.02
    for pw in (quantize_int8(w), quantize_int8(w, 32), quantize_int4(w, 32)):
        x = torch.randn(3, 576)
        _close(packed_linear(x, pw, None, "native"), F.linear(x, pw.dequantize()))


def test_more_rows_than_the_kernel_takes_go_to_the_gemm():
    torch.manual_seed(0)
    pw = quantize_int4(torch.randn(24, 64))
    x = torch.randn(native.MAX_ROWS + 1, 64)
    assert native.gemv(x, pw, *native.kernel_layout(pw)) is None
    _close(packed_linear(x, pw, None, "native"), F.linear(x, pw.dequantize()))


def test_bfloat16_activations_come_back_bfloat16():
    torch.manual_seed(0)
    pw = quantize_int4(torch.randn(24, 64))
    x = torch.randn(1, 64).to(torch.bfloat16)
    y = packed_linear(x, pw, None, "native")
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), F.linear(x.float(), pw.dequantize()), rtol=1e-2, atol=1e-2)


def test_without_a_compiler_the_dequantize_path_serves_and_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setattr(native, "_compiler", lambda: None)
    monkeypatch.setenv("ARCHLAB_CACHE", str(tmp_path))
    torch.manual_seed(0)
    pw = quantize_int4(torch.randn(24, 64))
    x = torch.randn(1, 64)
    with pytest.warns(RuntimeWarning, match="C decode kernel is unavailable.*no C compiler"):
        y = packed_linear(x, pw, None, "auto")
    assert torch.equal(y, F.linear(x, pw.dequantize()))
    assert not native.available() and "no C compiler" in native.why_unavailable()
    monkeypatch.setattr(native, "_lib", None)  # let the next test build or load it again


def test_native_off_by_environment(monkeypatch):
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setenv("ARCHLAB_NATIVE", "0")
    assert not native.available() and native.why_unavailable() == "ARCHLAB_NATIVE=0"
    monkeypatch.setattr(native, "_lib", None)


def test_built_into_the_cache_once(monkeypatch, tmp_path):
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setenv("ARCHLAB_CACHE", str(tmp_path))
    assert native.available()
    built = list((tmp_path / "kernels").iterdir())
    assert len(built) == 1 and built[0].suffix == ".so"  # no temporary left behind
    monkeypatch.setattr(native, "_lib", None)
    assert native.available() and list((tmp_path / "kernels").iterdir()) == built
    monkeypatch.setattr(native, "_lib", None)


def test_compiled_without_a_graph_break():
    """Under torch.compile the kernel is the custom op archlab::packed_gemv: fullgraph traces."""
    torch.manual_seed(0)
    pw = quantize_int4(torch.randn(24, 64))
    x = torch.randn(1, 64)
    fn = torch.compile(lambda x: packed_linear(x, pw, None, "native"), fullgraph=True, backend="aot_eager")
    _close(fn(x), F.linear(x, pw.dequantize()))


@pytest.fixture(scope="module")
def q4_gguf(tmp_path_factory):
    src = _hf_llama(seed=7)
    return write_llama_gguf(tmp_path_factory.mktemp("n") / "q4.gguf", src, types=lambda n: Q.Q4_1 if "token_embd" not in n else Q.Q8_0)


def test_a_packed_model_decodes_as_with_the_dequantize_kernel(q4_gguf):
    native_m = archlab.load(q4_gguf, quant="keep").eval()
    slow = archlab.load(q4_gguf, quant="keep").eval()
    set_kernel(slow, "dequant")
    prompt = [5, 17, 42, 7]
    assert archlab.generate(native_m, prompt, 12) == archlab.generate(slow, prompt, 12)
    ids = torch.tensor([prompt])
    with torch.no_grad():
        _close(native_m(ids[:, :1]), slow(ids[:, :1]))  # one token: the native kernel's path


def test_the_prepared_kernel_follows_new_and_changed_weights():
    """QuantLinear keeps the kernel's arguments between calls: load_state_dict, an in-place change
    of a per-channel scale (whose repeated copy the kernel reads) and .to() must all be seen."""
    from archlab.quant import QuantLinear

    torch.manual_seed(0)
    a, b = quantize_int8(torch.randn(24, 128)), quantize_int8(torch.randn(24, 128))  # per channel: block 128
    layer = QuantLinear(a)
    x = torch.randn(1, 128)
    with torch.no_grad():
        _close(layer(x), F.linear(x, a.dequantize()))
        layer.load_state_dict({"q": b.q, "scale": b.scale})
        _close(layer(x), F.linear(x, b.dequantize()))
        layer.scale.mul_(2)
        _close(layer(x), 2 * F.linear(x, b.dequantize()))
        layer.to(torch.device("cpu"))
        _close(layer(x), 2 * F.linear(x, b.dequantize()))
