"""The norm-placement claim: its rule on hand-made numbers, its four layouts, and a smoke run."""

import math

import pytest

from archlab.lab import core, norm_placement
from archlab.lab.core import run_claim

from test_lab import check_result



def _m(diverged, val_loss, nan_steps=None, seeds=(0, 1, 2)):
    return {"seeds": list(seeds), "diverged": diverged, "val_loss": val_loss,
            "nan_steps": nan_steps or {k: [] for k in norm_placement.VARIANTS}}


def _div(pre, post):
    return {"pre": pre, "post": post, "olmo2": 0, "sandwich": 0}


def test_rule_confirms_when_post_norm_diverges_more_or_ends_worse():
    assert norm_placement.verdict(_m(_div(0, 2), {"pre": [2.1, 2.2, 2.15], "post": [2.3]}))[0] == "confirmed"
    worse = {"pre": [2.10, 2.12, 2.11], "post": [2.40, 2.45, 2.42]}
    assert norm_placement.verdict(_m(_div(0, 0), worse))[0] == "confirmed"


def test_rule_denies_when_pre_norm_diverges_more_or_ends_worse():
    assert norm_placement.verdict(_m(_div(2, 0), {"pre": [2.1], "post": [2.1, 2.2, 2.1]}))[0] == "not confirmed"
    better_post = {"pre": [2.40, 2.45, 2.42], "post": [2.10, 2.12, 2.11]}
    assert norm_placement.verdict(_m(_div(0, 0), better_post))[0] == "not confirmed"


def test_rule_is_mixed_when_all_converge_alike_or_nothing_converges():
    alike = {"pre": [2.10, 2.20, 2.15], "post": [2.12, 2.18, 2.16]}
    assert norm_placement.verdict(_m(_div(0, 0), alike))[0] == "mixed"
    everything = {k: 3 for k in norm_placement.VARIANTS}
    assert norm_placement.verdict(_m(everything, {"pre": [], "post": []}))[0] == "mixed"
    one = {"pre": [2.1], "post": [2.4]}
    assert norm_placement.verdict(_m(_div(0, 0), one, seeds=(0,)))[0] == "mixed"


def test_variants_differ_only_in_block_and_qk_norm():
    import archlab

    base = archlab.tiny("llama-3-8b", n_layers=4)
    v = norm_placement.variant_configs(base)
    assert {k: c.block for k, c in v.items()} == {"pre": "pre", "post": "post", "olmo2": "output", "sandwich": "sandwich"}
    assert v["pre"].attention.qk_norm is None and v["post"].attention.qk_norm is None
    assert v["olmo2"].attention.qk_norm_scope == "all" and v["sandwich"].attention.qk_norm_scope == "head"
    # the presets they stand for use these layouts
    assert archlab.config("olmo-2-7b").block == "output" and archlab.config("olmo-2-7b").attention.qk_norm is not None
    assert archlab.config("gemma-3-27b").block == "sandwich" and archlab.config("gpt-1").block == "post"
    for c in v.values():
        assert (c.d_model, c.n_layers, c.norm) == (base.d_model, base.n_layers, base.norm)


@pytest.mark.slow
def test_smoke_run_writes_a_result(tmp_path):
    result = run_claim(norm_placement.CLAIM, tmp_path, budget="smoke", seed=0, quiet=True)
    saved = check_result(tmp_path, "norm-placement")
    assert saved["verdict"] in core.VERDICTS and saved["budget"] == "smoke"
    m = result["measurements"]
    n = len(m["seeds"])
    for k in norm_placement.VARIANTS:
        assert 0 <= m["diverged"][k] <= n
        assert len(m["all_val_loss"][k]) == n and len(m["curves"][k]) == n
        # the converged losses are exactly the finite finals below the unigram line
        assert len(m["val_loss"][k]) == n - m["diverged"][k]
        assert all(math.isfinite(v) and v < m["unigram"] for v in m["val_loss"][k])
    if n < 2:
        assert saved["verdict"] == "mixed"
