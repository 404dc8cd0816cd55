"""The positions claim: its smoke run leaves a complete result, and its rule decides as stated."""

from __future__ import annotations

import json
import math

import pytest

from archlab.lab import core, positions
from archlab.lab.core import run_claim

from test_lab import check_result

UNIGRAM = 3.3


@pytest.mark.slow
def test_positions_smoke(tmp_path):
    result = run_claim(positions.CLAIM, tmp_path, budget="smoke", seed=0, quiet=True)
    saved = check_result(tmp_path, "positions")
    assert saved["claim"] == "positions" and saved["verdict"] in core.VERDICTS and saved["budget"] == "smoke"
    assert saved["verdict"] == result["verdict"]

    m = saved["measurements"]
    L, lengths = m["L"], [str(k) for k in m["lengths_x_L"]]
    assert set(m["loss"]) == set(positions.VARIANTS)
    assert set(m["scaled_rope_loss"]) == {f"rope {k} x4" for k in ("linear", "llama3", "yarn", "ntk")}
    # learned positions: a number at L, and "cannot" (with the model's reason) beyond it
    assert math.isfinite(m["loss"]["learned"]["1"]["mean"])
    for k in lengths[1:]:
        assert "context of" in m["loss"]["learned"][k]["cannot"]
    assert m["learned_cannot_past_L"] is True
    # every other variant, and every scaling, has a finite loss at every length
    for group in (m["loss"], m["scaled_rope_loss"]):
        for label, ev in group.items():
            for k in lengths if label != "learned" else lengths[:1]:
                assert math.isfinite(ev[k]["mean"]) and math.isfinite(ev[k]["last_L"]), (label, k)
                assert 0 < ev[k]["mean"] < 10
            assert ev["1"]["mean"] == pytest.approx(ev["1"]["last_L"])  # at L the last L positions are all of them
    # the ratios behind the verdict are the measured losses' ratios
    for v in ("rope", "alibi"):
        assert m["ratios_at_4L"][v] == pytest.approx(m["loss"][v]["4"]["mean"] / m["loss"][v]["1"]["mean"])
    assert m["training"]["learned"]["max_seq_len"] == L
    assert all(m["training"][v]["max_seq_len"] == 8 * L for v in positions.VARIANTS if v != "learned")
    assert set(m["scaling_extends_to_4L"]) == set(m["scaled_rope_loss"])
    assert m["tokens_scored_per_length"] % (8 * L) == 0
    # the fine-tune half: every scaling and the unscaled control, trained on from the RoPE run at 4L
    ft = m["fine_tune"]
    assert ft["seq_len"] == 4 * L and ft["tokens"] == ft["steps"] * ft["batch"] * 4 * L
    assert set(m["fine_tuned_rope_loss"]) == {"rope (no scaling)"} | set(m["scaled_rope_loss"])
    for label, ev in m["fine_tuned_rope_loss"].items():
        assert all(math.isfinite(ev[k]["mean"]) for k in lengths), label
        # its step-0 evaluation (at 4L) saw the RoPE run's weights, not fresh ones (ln 256 = 5.55)
        assert ft["training"][label]["val_loss_at_4L_before"] < 5.5
    runs = tmp_path / "positions" / "runs"
    meta = json.loads((runs / "ft-rope-yarn-x4" / "train_config.json").read_text())
    assert meta["init_from"]["checkpoint"].startswith(str(runs / "rope"))
    assert any("yarn" in c for c in meta["init_from"]["config_changes"])


def _ev(at_1: float, at_4: float | None) -> dict:
    four = {"mean": at_4, "last_L": at_4} if at_4 is not None else {"cannot": "input_ids: ... context of ..."}
    return {"1": {"mean": at_1, "last_L": at_1}, "2": four, "4": four, "8": four}


def _evals(rope: tuple, alibi: tuple, learned_at_4=None) -> dict:
    return {"learned": _ev(2.2, learned_at_4), "rope": _ev(*rope), "alibi": _ev(*alibi),
            "nope": _ev(2.3, 2.3), "rope+nope/4": _ev(2.2, 2.2)}


def test_rule_confirms_when_both_stay_within_tolerance():
    verdict, rule, why = positions.decide(_evals((2.0, 2.05), (2.0, 1.95)), UNIGRAM)
    assert verdict == "confirmed" and "5%" in rule
    assert why["extrapolates"]["rope"] and why["extrapolates"]["alibi"]


def test_rule_denies_when_neither_extrapolates_or_learned_goes_past_L():
    assert positions.decide(_evals((2.0, 3.5), (2.0, 2.2)), UNIGRAM)[0] == "not confirmed"
    assert positions.decide(_evals((2.0, 2.0), (2.0, 2.0), learned_at_4=2.1), UNIGRAM)[0] == "not confirmed"


def test_rule_is_mixed_when_one_extrapolates_or_the_models_are_untrained():
    verdict, _, why = positions.decide(_evals((2.0, 3.5), (2.0, 1.9)), UNIGRAM)  # Press et al.'s picture
    assert verdict == "mixed" and not why["extrapolates"]["rope"] and why["extrapolates"]["alibi"]
    # barely below the unigram entropy: extrapolating says nothing about positions
    verdict, _, why = positions.decide(_evals((3.2, 3.2), (3.2, 3.2)), UNIGRAM)
    assert verdict == "mixed" and not any(why["learned_context"].values())


def test_helps_compares_with_plain_rope_at_4L():
    evals = _evals((2.0, 3.0), (2.0, 2.0))
    assert positions._helps({**evals, "x": _ev(2.0, 2.5)}, "x") is True
    assert positions._helps({**evals, "x": _ev(2.0, 2.95)}, "x") is False  # under 2% better
    assert positions._helps({**evals, "x": _ev(2.0, None)}, "x") is None


def test_a_scaling_extends_rope_when_4L_stays_near_ropes_loss_at_L():
    evals = _evals((2.0, 3.0), (2.0, 2.0))
    assert positions._extends({**evals, "x": _ev(2.2, 2.08)}, "x") is True
    assert positions._extends({**evals, "x": _ev(2.0, 2.2)}, "x") is False
