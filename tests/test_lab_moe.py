"""The moe claim: dense against MoE at equal active parameters."""

from __future__ import annotations

import math

import pytest

from archlab.lab import moe, run_claim

from test_lab import check_result


def test_equal_active_parameters_and_flops():
    import archlab

    from archlab.lab import _runs

    dense = _runs.llama_tiny(128, 4, 4, 256)
    sparse = moe.moe_config(dense)
    a, b = archlab.analyze(dense), archlab.analyze(sparse)
    router = 4 * moe.N_EXPERTS * 128  # the only active weights the dense model lacks
    assert b.active_params - a.active_params == router
    assert b.total_params > 3 * a.total_params // 2
    assert abs(b.flops_per_token(256) / a.flops_per_token(256) - 1) < 0.05


def test_specialisation_is_mutual_information():
    assert moe.specialisation([[5, 5], [5, 5]]) == 0.0  # classes spread alike
    assert moe.specialisation([[10, 0], [0, 10]]) == pytest.approx(1.0)  # one expert per class: 1 bit of 2 experts
    assert moe.specialisation([[0, 0], [0, 0]]) == 0.0


def test_byte_classes():
    assert [moe.byte_class(ord(c)) for c in " \n,Tae7é"[:7]] == ["space", "newline", "punctuation", "capital", "vowel",
                                                                   "vowel", "digit"]
    assert moe.byte_class(0xC3) == "other" and moe.byte_class(ord("z")) == "consonant"


@pytest.mark.slow
def test_smoke_run(tmp_path):
    result = run_claim(moe.CLAIM, tmp_path, budget="smoke", seed=0, quiet=True)
    check_result(tmp_path, "moe")
    m = result["measurements"]
    assert m["total_params"]["moe"] > m["total_params"]["dense"]
    counts = m["routing_counts"]
    assert len(counts) == 2 and all(len(c) == len(moe.CLASSES) and len(c[0]) == moe.N_EXPERTS for c in counts)
    assert all(sum(map(sum, c)) == sum(map(sum, counts[0])) > 0 for c in counts)  # every byte routed in every layer
    assert all(0 <= mi <= math.log2(moe.N_EXPERTS) for mi in m["class_expert_mutual_information_bits"])
    assert all(math.isfinite(v) for vs in m["final_val_loss"].values() for v in vs)
