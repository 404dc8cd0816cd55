"""`archlab diff`: the parts that differ between two configs, exactly, with their effects
computed by analyze()."""

from __future__ import annotations

import json
import re

import pytest

import archlab
from archlab.analysis import analyze
from archlab.cli import main
from archlab.describe import fmt_bytes
from archlab.diff import PARTS, changes, fields_differing, part_of
from archlab.model_config import NormConfig, Pattern

PRESETS = archlab.presets()


@pytest.mark.parametrize("name", PRESETS)
def test_a_model_against_itself_is_no_change(name):
    cfg = archlab.config(name)
    assert changes(cfg, cfg) == []
    # the same model stated another way (everything derived written out, another name)
    assert changes(cfg, cfg.resolved().replace(name="copy", source="elsewhere")) == []


def _leaves(d, prefix=""):
    if isinstance(d, dict):
        out = {}
        for k, v in d.items():
            out.update(_leaves(v, f"{prefix}.{k}" if prefix else k))
        return out
    return {prefix: d}


@pytest.mark.parametrize("a, b", list(zip(PRESETS, PRESETS[1:])))
def test_fields_listed_are_exactly_those_that_differ(a, b):
    ca, cb = archlab.config(a), archlab.config(b)
    la, lb = _leaves(ca.resolved().to_dict()), _leaves(cb.resolved().to_dict())
    differing = {k for k in la.keys() | lb.keys() if la.get(k) != lb.get(k) and k.split(".")[0] not in ("name", "family", "source")}
    listed = fields_differing(ca, cb)
    covered = lambda k: any(k == f or k.startswith(f + ".") for f in listed)  # noqa: E731
    per_layer = ("layer_types", "ffn_types", "rope_layers")
    # every differing leaf is listed (per-layer rules of different depths only when their pattern differs)
    assert all(covered(k) for k in differing if ca.n_layers == cb.n_layers or k not in per_layer)
    # every listed field does differ
    assert all(any(k == f or k.startswith(f + ".") for k in differing) for f in listed)
    ch = changes(ca, cb)
    assert {c.part for c in ch} - {"cache"} == {part_of(f) for f in listed}
    lengths = [1, 2, 3, 100, 128, 129, 512, 513, 1024, 1025, 4096, 4097, 8192, 8193, 10**6]
    kv = lambda x: [sum(x.cache_bytes_per_layer(t)) for t in lengths]  # noqa: E731
    assert ("cache" in {c.part for c in ch}) == (kv(analyze(ca)) != kv(analyze(cb)))
    assert [c.part for c in ch] == [p for p in PARTS if p in {c.part for c in ch}]


def _ablations():
    llama, gemma, dsv3 = (archlab.config(n) for n in ("llama-3-8b", "gemma-3-27b", "deepseek-v3"))
    return [
        (llama, {"norm": NormConfig("layernorm", eps=1e-5)}, {"norm"}),
        (llama, {"block": "sandwich"}, {"norm"}),
        (llama, {"attention": {"qk_norm": NormConfig()}}, {"norm"}),
        (llama, {"attention": {"n_kv_heads": 32}}, {"attention", "cache"}),
        (llama, {"attention": {"n_kv_heads": 1}}, {"attention", "cache"}),
        (llama, {"attention": {"sinks": True}}, {"attention"}),
        (llama, {"ffn": {"activation": "gelu"}}, {"ffn"}),
        (llama, {"tie_embeddings": True}, {"layout"}),
        (llama, {"position": archlab.RopeConfig(theta=10_000.0)}, {"position"}),
        (llama, {"rope_layers": Pattern((True, True, True, False))}, {"position"}),
        (llama, {"vocab_size": 32000}, {"sizes"}),
        (llama, {"n_layers": 16}, {"sizes", "cache"}),
        (gemma, {"attention": {"window": 4096}}, {"attention", "cache"}),
        (gemma, {"layer_types": Pattern(("sliding", "global"))}, {"layout", "cache"}),
        (dsv3, {"moe": {"top_k": 4}}, {"ffn"}),
        (dsv3, {"attention": {"kv_lora_rank": 256}}, {"attention", "cache"}),
        (dsv3, {"ffn_types": None, "ffn": None}, {"ffn", "layout"}),
    ]


@pytest.mark.parametrize("i", range(len(_ablations())))
def test_one_knob_is_one_part(i):
    cfg, change, parts = _ablations()[i]
    new = cfg.replace(**change)
    assert {c.part for c in changes(cfg, new)} == parts
    assert {c.part for c in changes(new, cfg)} == parts


def _ratio_in(text: str, label: str) -> float:
    return float(re.search(label + r" x([0-9.e+-]+)", text).group(1))


@pytest.mark.parametrize("a, b", [("gpt2", "llama-3-8b"), ("llama-3-8b", "deepseek-v3"), ("llama-3-8b", "gemma-3-27b"),
                                  ("mistral-7b", "mixtral-8x7b"), ("llama-3-70b", "qwen3-next-80b-a3b")])
def test_kv_ratio_is_analyze_ratio(a, b):
    aa, ab = analyze(a), analyze(b)
    ch = {c.part: c for c in changes(a, b)}
    if aa.kv_cache_bytes_per_token() == 0:  # all sliding (Mistral 7B): nothing grows per token
        assert "from none" in ch["attention"].effect and "from none" in ch["cache"].effect
        return
    want = ab.kv_cache_bytes_per_token() / aa.kv_cache_bytes_per_token()
    if "attention" in ch:  # per layer: the whole model's ratio over the ratio of depths
        per_layer = want * aa.config.n_layers / ab.config.n_layers
        assert _ratio_in(ch["attention"].effect, "KV per token per layer") == pytest.approx(per_layer, rel=5e-3)
    if want != 1:
        cache = ch["cache"].effect
        assert f"{fmt_bytes(aa.kv_cache_bytes_per_token())} -> {fmt_bytes(ab.kv_cache_bytes_per_token())}" in cache
        assert f"(x{want:.3g})" in cache
    sizes = ch["sizes"].effect
    assert _ratio_in(sizes, "active") == pytest.approx(ab.active_params / aa.active_params, rel=5e-3)


def test_classic_three_columns(capsys):
    assert main(["diff", "gpt2", "llama-3-8b", "deepseek-v3"]) == 0
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 100
    for part in ("norm", "position", "attention", "ffn", "layout", "cache", "sizes"):
        assert re.search(rf"^{part}\s+\|", out, re.M), part
    assert "LayerNorm" in out and "RMSNorm" in out and "learned" in out and "MLA" in out and "MoE" in out
    # whole model: 12 layers of K,V 12 x 64 -> 32 of 8 x 128 -> 61 of latent 512 + 64 (analyze's bytes)
    assert "x3.56" in out and "x0.536" in out
    # per layer: 2*12*64 -> 2*8*128 -> 512+64 values per token
    assert "per layer x1.33" in out and "per layer x0.281" in out
    assert main(["diff", "gpt2"]) == 2


def test_lab_verdicts_attach_to_their_part(tmp_path):
    d = tmp_path / "gqa"
    d.mkdir()
    (d / "result.json").write_text(json.dumps({"claim": "gqa", "statement": "s", "verdict": "supported", "summary": "KV x0.25"}))
    from archlab.lab.core import read_results

    ch = {c.part: c for c in changes("llama-2-7b", "llama-3-8b", results=read_results(tmp_path))}
    assert ch["attention"].verdict == "lab gqa: supported (KV x0.25)"
    assert ch["sizes"].verdict is None
    assert main(["diff", "llama-2-7b", "llama-3-8b", "--lab", str(tmp_path)]) == 0
