"""`archlab bench`: runs end to end and writes valid JSON (no timing is asserted), and the
MLA benchmark's three decode methods compute the same logits."""

from __future__ import annotations

import json

import pytest
import torch

import archlab
from archlab.bench import mla, quiet
from archlab.cli import main


def test_mla_bench_methods_equal_full_forward():
    """absorbed, naive-latent (latent cache, decompressed each step) and naive-kv (HF's per-head
    K/V cache, written in the benchmark) give the logits of one uncached forward."""
    torch.manual_seed(0)
    model = archlab.build(mla.config(64, n_heads=8, d_model=64)).eval()
    ids = torch.randint(0, 256, (2, 13))
    with torch.no_grad():
        want = model(ids)[:, -1]
        for name in mla.METHODS:
            cache = model.new_cache(2, 16)
            with mla.method(model, name, batch=2, capacity=16) as layers:
                model(ids[:, :-1], cache=cache)  # prefill 12 tokens
                got = model(ids[:, -1:], cache=cache)[:, -1]  # decode the 13th from the cache
                if name == "naive-kv":
                    assert mla.kv_bytes(layers) > cache.nbytes  # its cache is the big one
            torch.testing.assert_close(got, want, atol=1e-5, rtol=0, msg=name)
    assert all(m.absorb is None and "forward" not in m.__dict__ for m in mla._mla_layers(model))  # restored


def test_quiet_gate_reads_a_share():
    g = quiet.Gate()
    sum(range(200_000))
    assert 0.0 <= g.others() <= 1.0


def test_bench_quick_writes_json(tmp_path, capsys):
    out, md = tmp_path / "b.json", tmp_path / "b.md"
    rc = main(["bench", "--quick", "--suite", "mla", "--no-wait", "--repeats", "1", "-q",
               "--json", str(out), "--markdown", str(md)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert {r["suite"] for r in res["rows"]} == {"mla"}
    row = res["rows"][0]
    assert set(row["values"]) == set(mla.METHODS)
    # cache bytes are the tensors': B x S x (rank + rope) floats against B x H x S x (dqk + dv)
    assert row["cache_bytes"]["absorbed"] == (128 + 1) * (64 + 8) * 4
    assert row["cache_bytes"]["naive-kv"] == 16 * (128 + 1) * (24 + 16) * 4
    assert res["machine"]["torch"] == torch.__version__
    assert "## MLA decode per token" in md.read_text()


@pytest.mark.slow
def test_bench_quick_decode_tiny_model(tmp_path):
    """decode + prefill against HF on a tiny random llama; llama.cpp is skipped and said so."""
    pytest.importorskip("transformers")
    out = tmp_path / "b.json"
    assert main(["bench", "--quick", "--suite", "decode", "--model", "tiny:llama-3-8b", "--no-wait",
                 "--repeats", "1", "-q", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert [r["suite"] for r in res["rows"]] == ["decode-b1", "decode-b8", "prefill"]
    assert all(set(r["values"]) == {"archlab", "hf"} for r in res["rows"])
    assert res["rows"][0]["same_tokens_as_hf"] == {"archlab": True}
    assert any("llama.cpp column skipped" in n for n in res["notes"])


@pytest.mark.slow
def test_bench_quick_decode_of_a_gguf_has_the_packed_column(tmp_path):
    """A GGUF: archlab dequantized and archlab with the file's blocks kept, both giving HF's tokens."""
    pytest.importorskip("transformers")
    from test_gguf import _hf_llama, write_llama_gguf

    import gguf as gg

    path = write_llama_gguf(tmp_path / "q.gguf", _hf_llama(seed=3), types=lambda n: gg.GGMLQuantizationType.Q4_1
                            if n.endswith("weight") and "norm" not in n else gg.GGMLQuantizationType.F32)
    out = tmp_path / "b.json"
    assert main(["bench", "--quick", "--suite", "decode", "--model", str(path), "--no-wait",
                 "--repeats", "1", "-q", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert {"archlab", "archlab packed", "hf"} <= set(rows[0]["values"])
    # a random tiny model's logits are near ties, so float32 rounding of another summation order
    # may flip a greedy token: agreement is held in tests/test_quant_native.py and test_gguf.py
    assert set(rows[0]["same_tokens_as_hf"]) == {"archlab", "archlab packed"}
    # the packed model reads fewer weight bytes per token than the float one
    f = rows[0]["fraction_of_ceiling"]
    assert f["archlab packed"] / rows[0]["values"]["archlab packed"] < f["archlab"] / rows[0]["values"]["archlab"]


@pytest.mark.parametrize("value", ["nan", "-1", "inf", "x"])
def test_bench_refuses_a_bad_wait_timeout(value, capsys):
    assert main(["bench", "--quick", "--wait-timeout", value]) == 2
    assert "--wait-timeout" in capsys.readouterr().err
