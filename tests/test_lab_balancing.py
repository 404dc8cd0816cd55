"""The balancing claim: its rule on hand-made numbers, its MaxVio and load counts, and a smoke run."""

import math

import pytest

from archlab.lab import balancing, core
from archlab.lab.core import run_claim

from test_lab import check_result



def _m(maxvio, val_loss):
    return {"maxvio": maxvio, "val_loss": val_loss}


def test_rule_confirms_when_loss_free_is_balanced_and_no_worse():
    m = _m({"none": [2.0, 2.2, 1.9], "aux": [0.5, 0.6, 0.55], "loss-free": [0.1, 0.12, 0.11]},
           {"none": [2.50, 2.52, 2.49], "aux": [2.50, 2.51, 2.52], "loss-free": [2.505, 2.515, 2.52]})
    assert balancing.verdict(m)[0] == "confirmed"
    # both far below none's: a loss-free MaxVio a little above aux's still counts as balanced
    m["maxvio"]["loss-free"] = [0.7, 0.8, 0.75]
    assert balancing.verdict(m)[0] == "confirmed"


def test_rule_denies_when_loss_free_is_worse_in_loss_or_balance():
    worse_loss = _m({"none": [2.0, 2.2, 1.9], "aux": [0.5, 0.6, 0.55], "loss-free": [0.1, 0.12, 0.11]},
                    {"none": [2.5, 2.5, 2.5], "aux": [2.50, 2.51, 2.50], "loss-free": [2.60, 2.61, 2.62]})
    assert balancing.verdict(worse_loss)[0] == "not confirmed"
    less_balanced = _m({"none": [1.0, 1.1, 1.0], "aux": [0.2, 0.21, 0.2], "loss-free": [0.9, 0.95, 0.92]},
                       {"none": [2.5, 2.5, 2.5], "aux": [2.50, 2.51, 2.50], "loss-free": [2.50, 2.51, 2.50]})
    assert balancing.verdict(less_balanced)[0] == "not confirmed"


def test_rule_is_mixed_within_the_spread_or_with_one_seed():
    close = _m({"none": [1.0, 1.1, 1.0], "aux": [0.5, 0.7, 0.6], "loss-free": [0.6, 0.7, 0.65]},
               {"none": [2.5, 2.5, 2.5], "aux": [2.50, 2.51, 2.50], "loss-free": [2.50, 2.51, 2.50]})
    assert balancing.verdict(close)[0] == "mixed"
    one = _m({"none": [2.0], "aux": [0.5], "loss-free": [0.1]}, {"none": [2.5], "aux": [2.6], "loss-free": [2.4]})
    assert balancing.verdict(one)[0] == "mixed"


def test_maxvio_and_load_extremes():
    # second half of the steps only, mean over layers, minus one
    assert balancing.maxvio([[9.0, 9.0], [2.0, 4.0], [1.0, 3.0]]) == pytest.approx(((3 - 1) + (2 - 1)) / 2)
    assert balancing.load_extremes([[0.0, 0.3, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]]) == (1, 0)
    assert balancing.load_extremes([[0.01, 0.6, 0.2, 0.19]]) == (1, 1)


@pytest.mark.slow
def test_smoke_run_writes_a_result(tmp_path):
    result = run_claim(balancing.CLAIM, tmp_path, budget="smoke", seed=0, quiet=True)
    saved = check_result(tmp_path, "balancing")
    assert saved["verdict"] in core.VERDICTS and saved["budget"] == "smoke"
    m = result["measurements"]
    n = len(m["seeds"])
    assert n >= 1
    for method in balancing.METHODS:
        assert len(m["maxvio"][method]) == len(m["val_loss"][method]) == n
        assert all(math.isfinite(v) and v >= 0 for v in m["maxvio"][method])
        assert all(math.isfinite(v) for v in m["val_loss"][method])
        for shares in m["final_shares"][method]:  # one row per MoE layer, each a distribution over experts
            assert len(shares) == m["moe_layers"]
            assert all(len(row) == m["n_experts"] and sum(row) == pytest.approx(1, abs=1e-2) for row in shares)
        # the dropped/overloaded counts are the ones the shares give
        assert m["dropped"][method] == [balancing.load_extremes(s)[0] for s in m["final_shares"][method]]
        curve = m["curves"][method]
        assert len(curve["imbalance"]) == n and all(len(c) == len(curve["steps"]) for c in curve["imbalance"])
        assert all(v >= 1.0 - 1e-6 for c in curve["imbalance"] for v in c)  # max / mean is never below 1
    if n < 2:
        assert saved["verdict"] == "mixed"
