import math

import pytest

from archlab.lab import attention_kernel as ak
from archlab.lab import core

from test_lab import check_result



def test_rule_both_directions_and_mixed():
    assert ak.verdict_from(speedup=3.0, fused_exp=1.0, eager_exp=2.0) == "confirmed"
    assert ak.verdict_from(speedup=1.1, fused_exp=1.0, eager_exp=2.0) == "not confirmed"
    assert ak.verdict_from(speedup=3.0, fused_exp=1.9, eager_exp=2.0) == "not confirmed"  # fused memory quadratic
    assert ak.verdict_from(speedup=1.5, fused_exp=1.0, eager_exp=2.0) == "mixed"
    assert ak.verdict_from(speedup=3.0, fused_exp=1.0, eager_exp=1.2) == "mixed"  # eager not yet quadratic: no contrast


def test_exponent():
    assert ak.exponent([256, 512], [10.0, 40.0]) == pytest.approx(2.0)
    assert ak.exponent([128, 256, 512], [1.0, 5.0, 10.0]) == pytest.approx(1.0)


def test_eager_baseline_matches_sdpa():
    import torch

    q, k, v = (torch.randn(2, 3, 17, 8, generator=torch.Generator().manual_seed(i)) for i in range(3))
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert (ak.eager_attention(q, k, v) - want).abs().max() < 1e-5


@pytest.mark.slow
def test_smoke_run(tmp_path):
    result = core.run_claim(ak.CLAIM, tmp_path, budget="smoke", seed=0, quiet=True)
    on_disk = check_result(tmp_path, "attention-kernel")
    assert on_disk["verdict"] in core.VERDICTS and on_disk["budget"] == "smoke" and on_disk["seed"] == 0
    m = result["measurements"]
    rows = m["rows"]
    assert [r["length"] for r in rows] == m["lengths"]
    fused = m["fused"]
    for r in rows:
        assert r["max_abs_diff"][fused] < 1e-4 and r["max_abs_diff"]["eager"] == 0
        for samples in r["times_s"].values():
            assert len(samples) == m["repeats"] and all(math.isfinite(t) and t > 0 for t in samples)
        assert all(b > 0 for b in r["peak_bytes"].values())
    last = rows[-1]
    assert m["speedup_fwd_bwd"] == pytest.approx(last["median_s"]["eager/fwd+bwd"] / last["median_s"][f"{fused}/fwd+bwd"])
    exps = m["memory_exponent"]
    assert on_disk["verdict"] == ak.verdict_from(m["speedup_fwd_bwd"], exps["fused"], exps["eager"])
    # eager holds at least one (T, T) matrix at its peak, and more than the fused kernel
    assert last["peak_bytes"]["eager"] >= last["eager_scores_bytes"]
    assert last["peak_bytes"]["eager"] > last["peak_bytes"][fused]
