"""The architectures claim: GPT-2, LLaMA and DeepSeek at equal active parameters."""

from __future__ import annotations

import pytest

from archlab.lab import architectures, run_claim
from archlab.lab.core import better_beyond_spread

from test_lab import check_result


def test_widths_match_active_parameters():
    import archlab

    target = archlab.analyze(archlab.tiny("llama-3-8b", d_model=128, n_layers=4, n_heads=4, vocab_size=256)).active_params
    for preset in architectures.PRESETS:
        cfg = architectures._matched(preset, target, 4)
        active = archlab.analyze(cfg).active_params
        assert abs(active - target) / target < 0.15, (preset, cfg.d_model, active, target)
    # DeepSeek keeps its MoE layer at this depth (its first three layers are dense)
    assert any(s.ffn == "moe" for s in architectures._matched("deepseek-v3", target, 4).layers)


@pytest.mark.slow
def test_smoke_run(tmp_path):
    result = run_claim(architectures.CLAIM, tmp_path, budget="smoke", seed=0, quiet=True)
    check_result(tmp_path, "architectures")
    m = result["measurements"]
    assert set(m["final_val_loss"]) == set(architectures.PRESETS)
    assert all(len(v) == len(m["seeds"]) == 2 for v in m["final_val_loss"].values())
    for p in architectures.PRESETS:
        assert m["samples"][p].startswith("ROMEO. ")
        assert m["tokens_per_s"][p] and all(t > 0 for t in m["tokens_per_s"][p])
    # the verdict is what the rule gives for the measured losses
    a = better_beyond_spread(m["final_val_loss"]["llama-3-8b"], m["final_val_loss"]["gpt2"])[0]
    b = better_beyond_spread(m["final_val_loss"]["deepseek-v3"], m["final_val_loss"]["llama-3-8b"])[0]
    assert result["verdict"] == (a if a == b else "mixed")
