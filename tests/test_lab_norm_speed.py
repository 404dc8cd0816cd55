import math

import pytest

from archlab.lab import core, norm_speed

from test_lab import check_result



def test_rule_both_directions_and_mixed():
    assert norm_speed.verdict_from([0.80, 0.90, 0.70]) == ("confirmed", 0.80)
    assert norm_speed.verdict_from([1.00, 1.30, 0.90])[0] == "not confirmed"  # median exactly 1.0: no gain
    assert norm_speed.verdict_from([0.97, 0.90, 1.02])[0] == "mixed"
    # the median over widths decides, not one width
    assert norm_speed.verdict_from([0.5, 1.1, 1.2])[0] == "not confirmed"


def test_interleaved_times_alternates_order():
    calls = []
    times = norm_speed.interleaved_times({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=1)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert [len(v) for v in times.values()] == [3, 3]


@pytest.mark.slow
def test_smoke_run(tmp_path):
    result = core.run_claim(norm_speed.CLAIM, tmp_path, budget="smoke", seed=0, quiet=True)
    on_disk = check_result(tmp_path, "norm-speed")
    assert on_disk["verdict"] in core.VERDICTS and on_disk["budget"] == "smoke" and on_disk["seed"] == 0
    m = result["measurements"]
    rows = m["modes"]["eager"]["rows"]
    assert [r["width"] for r in rows] == m["widths"]
    assert "compiled" not in m["modes"]  # smoke leaves compile out
    for r in rows:
        for key, samples in r["times_s"].items():
            assert len(samples) == m["repeats"] and all(math.isfinite(t) and t > 0 for t in samples)
        assert r["ratio_fwd_bwd"] == pytest.approx(r["median_s"]["rmsnorm/fwd+bwd"] / r["median_s"]["layernorm/fwd+bwd"])
    verdict, ratio = norm_speed.verdict_from([r["ratio_fwd_bwd"] for r in rows])
    assert (verdict, ratio) == (on_disk["verdict"], m["ratio_fwd_bwd_eager_median"])
    step = m["step"]
    assert set(step["median_s"]) == {"rmsnorm", "layernorm"}
    assert step["ratio"] == pytest.approx(step["median_s"]["rmsnorm"] / step["median_s"]["layernorm"])
