"""The scale-vs-architecture claim: how many size steps an architecture change is worth."""

from __future__ import annotations

import pytest

from archlab.lab import run_claim, scale

from test_lab import check_result


def test_worth_in_size_steps():
    # each size step gains 0.2; the best architecture beats GPT-2 by 0.1 at each size: half a step
    loss = {"gpt2": [3.0, 2.8, 2.6], "llama-3-8b": [2.9, 2.7, 2.5], "deepseek-v3": [2.95, 2.75, 2.55]}
    arch, per_step, worth = scale.worth_in_size_steps(loss)
    assert arch == pytest.approx(0.1) and per_step == pytest.approx(0.2) and worth == pytest.approx(0.5)
    assert scale.verdict_of(worth)[0] == "confirmed"
    assert scale.verdict_of(2.0)[0] == "not confirmed" and scale.verdict_of(1.0)[0] == "mixed"


@pytest.mark.slow
def test_smoke_run(tmp_path):
    result = run_claim(scale.CLAIM, tmp_path, budget="smoke", seed=0, quiet=True)
    check_result(tmp_path, "scale-vs-architecture")
    m = result["measurements"]
    for p, losses in m["final_val_loss"].items():
        assert len(losses) == len(m["widths"]) == len(m["active_params"][p])
        assert m["active_params"][p] == sorted(m["active_params"][p])  # sizes grow
    assert result["verdict"] == scale.verdict_of(m["worth_in_size_steps"])[0]
