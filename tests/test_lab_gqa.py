"""The gqa claim: parameters matched across K/V head counts, its rule on hand-made numbers, a smoke run."""

import json
import math

import pytest

import archlab
from archlab.lab import core, gqa

from test_lab import check_result

KV = {"mha": 8, "gqa4": 4, "gqa2": 2, "mqa": 1}
EXACT_CACHE = {k: 8 / v for k, v in KV.items()}


def test_variants_and_equal_parameters():
    assert gqa.variants(8) == KV
    with pytest.raises(ValueError):
        gqa.variants(4)
    cfgs = gqa.equal_params(archlab.tiny("llama-3-8b", d_model=64, n_layers=2, n_heads=8, vocab_size=256), KV)
    counts = {k: archlab.analyze(c).total_params for k, c in cfgs.items()}
    unit = 3 * 64 * 2  # one more GLU hidden unit in each of the 2 layers
    assert max(counts.values()) - min(counts.values()) <= unit, counts
    assert {k: c.resolved_attention.n_kv_heads for k, c in cfgs.items()} == KV
    assert cfgs["mqa"].resolved_ffn.hidden > cfgs["mha"].resolved_ffn.hidden


def _speed(x):
    return {k: {"1": x, "8": x} for k in KV}


def test_rule_confirms_with_equal_loss_smaller_cache_faster_decode():
    loss = {"mha": [2.00, 2.02], "gqa4": [2.00, 2.03], "gqa2": [2.01, 2.03], "mqa": [2.10, 2.12]}
    v, rule, checks = gqa.verdict(loss, EXACT_CACHE, _speed(1.2), KV)
    assert v == "confirmed" and set(checks) == {"gqa4", "gqa2"} and "MQA" in rule


def test_rule_denies_on_quality_or_cache():
    worse = {"mha": [2.00, 2.01], "gqa4": [2.00, 2.01], "gqa2": [2.20, 2.21], "mqa": [2.3, 2.3]}
    assert gqa.verdict(worse, EXACT_CACHE, _speed(1.2), KV)[0] == "not confirmed"
    same = {k: [2.00, 2.01] for k in KV}
    assert gqa.verdict(same, {**EXACT_CACHE, "gqa2": 2.0}, _speed(1.2), KV)[0] == "not confirmed"


def test_rule_is_mixed_when_decode_is_not_faster_or_one_seed():
    same = {k: [2.00, 2.01] for k in KV}
    v, _, checks = gqa.verdict(same, EXACT_CACHE, _speed(1.0), KV)
    assert v == "mixed" and checks["gqa4"]["quality"] and checks["gqa4"]["cache"] and not checks["gqa4"]["decode"]
    assert gqa.verdict({k: [2.0] for k in KV}, EXACT_CACHE, _speed(2.0), KV)[0] == "mixed"
    # MQA's quality cost does not decide
    assert gqa.verdict({**same, "mqa": [3.0, 3.0]}, EXACT_CACHE, _speed(1.2), KV)[0] == "confirmed"


@pytest.mark.slow
def test_smoke_run(tmp_path):
    result = core.run_claim(gqa.CLAIM, tmp_path, budget="smoke", seed=0, quiet=True)
    saved = check_result(tmp_path, "gqa")
    assert saved["verdict"] in core.VERDICTS and saved == json.loads(json.dumps(result))
    m = saved["measurements"]
    kv = {k: p["n_kv_heads"] for k, p in m["params"].items()}
    assert kv == KV
    assert m["finite"] and all(math.isfinite(x) for v in m["val_loss"].values() for x in v)
    for k, n in kv.items():
        c = m["kv_cache_bytes_per_token"][k]
        assert c["measured_float32"] == c["analyze_float32"] == 2 * c["analyze_bfloat16"]
        assert m["cache_ratio_vs_mha"][k] == 8 / n
        for b, d in m["decode"]["by_variant"][k].items():
            assert d["tokens_per_s"] == pytest.approx(int(b) * d["new_tokens"] / d["seconds"])
            assert m["decode_speedup_vs_mha"][k][b] == pytest.approx(
                d["tokens_per_s"] / m["decode"]["by_variant"]["mha"][b]["tokens_per_s"])
    assert saved["verdict"] == "mixed"  # one seed at smoke
