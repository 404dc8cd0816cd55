"""The ffn claim: equal parameters by construction, its rule on hand-made numbers, a smoke run."""

import json
import math

import pytest

import archlab
from archlab.lab import core, ffn

from test_lab import check_result


@pytest.mark.parametrize("d_model", [32, 64, 96, 256])
def test_glu_hidden_is_two_thirds_and_parameters_match(d_model):
    mlp, glu = ffn.widths(d_model)
    assert 3 * glu == 2 * mlp and abs(mlp - 4 * d_model) <= 2
    base = archlab.tiny("llama-3-8b", d_model=d_model, n_layers=2, n_heads=4, vocab_size=256)
    counts = {k: archlab.analyze(base.replace(ffn=f)).total_params for k, f in ffn.ffn_configs(d_model).items()}
    assert len(set(counts.values())) == 1, counts


def test_rule_decides_on_swiglu_against_the_mlp():
    better = {"swiglu": [2.00, 2.01], "geglu": [2.005, 2.015], "gelu_mlp": [2.10, 2.11]}
    v, rule, pairs = ffn.verdict(better)
    assert v == "confirmed" and pairs["swiglu_vs_geglu"] == "mixed" and pairs["geglu_vs_gelu_mlp"] == "confirmed"
    assert "SwiGLU" in rule
    worse = {"swiglu": [2.10, 2.11], "geglu": [2.00, 2.01], "gelu_mlp": [2.00, 2.01]}
    assert ffn.verdict(worse)[0] == "not confirmed"
    close = {"swiglu": [2.00, 2.05], "geglu": [2.00, 2.05], "gelu_mlp": [2.02, 2.06]}
    assert ffn.verdict(close)[0] == "mixed"
    # GeGLU winning does not decide: SwiGLU still beats the MLP
    v, _, pairs = ffn.verdict({"swiglu": [2.00, 2.01], "geglu": [1.90, 1.91], "gelu_mlp": [2.10, 2.11]})
    assert v == "confirmed" and pairs["swiglu_vs_geglu"] == "not confirmed"


@pytest.mark.slow
def test_smoke_run(tmp_path):
    result = core.run_claim(ffn.CLAIM, tmp_path, budget="smoke", seed=0, quiet=True)
    saved = check_result(tmp_path, "ffn")
    assert saved["verdict"] in core.VERDICTS and saved == json.loads(json.dumps(result))
    m = saved["measurements"]
    assert set(m["runs"]) == set(ffn.VARIANTS)
    assert all(len(m["val_loss"][k]) == 2 for k in ffn.VARIANTS)  # 2 seeds at smoke
    assert m["finite"] and all(math.isfinite(x) for v in m["val_loss"].values() for x in v)
    assert m["params_equal"] and m["params"]["gelu_mlp"]["ffn_hidden"] * 2 == m["params"]["swiglu"]["ffn_hidden"] * 3
    # equal tokens: every run saw the same budget
    assert len({r["tokens"] for runs in m["runs"].values() for r in runs}) == 1
    assert saved["verdict"] == ffn.verdict(m["val_loss"])[0]
