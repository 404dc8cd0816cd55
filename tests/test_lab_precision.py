"""The precision claim: its rule on hand-made numbers, and one smoke run end to end."""

import json
import math

import pytest

from archlab.lab import core, precision

from test_lab import check_result


def test_rule_confirms_a_tie_in_loss_at_a_speedup():
    v, rule, n = precision.verdict([2.00, 2.04], [2.01, 2.03], speedup=1.5)
    assert v == "confirmed" and "1.1" in rule
    assert n["margin"] == pytest.approx(0.04) and n["loss_gap"] == pytest.approx(0.0)


def test_rule_denies_when_bf16_is_slower_or_worse():
    assert precision.verdict([2.00, 2.01], [2.00, 2.01], speedup=0.6)[0] == "not confirmed"
    # worse by 0.1 against a spread of 0.01 and the 0.01 tolerance
    assert precision.verdict([2.00, 2.01], [2.10, 2.11], speedup=2.0)[0] == "not confirmed"


def test_rule_is_mixed_between():
    assert precision.verdict([2.00, 2.01], [2.00, 2.01], speedup=1.05)[0] == "mixed"
    # one seed per dtype: no spread to judge the loss by, whatever the speed
    assert precision.verdict([2.00], [2.00], speedup=3.0)[0] == "mixed"


def test_rule_tolerance_covers_seeds_that_agree_closely():
    # spread 0.001, gap 0.005: inside the stated 0.01-nat tolerance
    assert precision.verdict([2.000, 2.001], [2.005, 2.006], speedup=1.2)[0] == "confirmed"


@pytest.mark.slow
def test_smoke_run(tmp_path):
    result = core.run_claim(precision.CLAIM, tmp_path, budget="smoke", seed=0, quiet=True)
    saved = check_result(tmp_path, "precision")
    assert saved["verdict"] in core.VERDICTS and saved == json.loads(json.dumps(result))
    m = saved["measurements"]
    assert set(m["runs"]) == {"float32", "bfloat16"}
    assert len(m["val_loss"]["float32"]) == len(m["val_loss"]["bfloat16"]) == len(m["training"]["seeds"]) == 1
    assert m["finite"] and all(math.isfinite(x) for v in m["val_loss"].values() for x in v)
    tps = m["tokens_per_s"]
    assert tps["float32"] > 0 and m["speedup"] == pytest.approx(tps["bfloat16"] / tps["float32"])
    assert saved["verdict"] == precision.verdict(m["val_loss"]["float32"], m["val_loss"]["bfloat16"], m["speedup"])[0]
    assert saved["verdict"] == "mixed"  # one seed at smoke: the rule cannot confirm or deny
    assert any("fp8" in n for n in saved["notes"])
    # the same seed and data: the two dtypes start from the same weights and see the same batches
    runs = m["runs"]
    assert runs["float32"][0]["val_losses"]["0"] == pytest.approx(runs["bfloat16"][0]["val_losses"]["0"], abs=0.02)
