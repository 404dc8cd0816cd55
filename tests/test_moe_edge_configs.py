"""MoE configs no published model uses but HF accepts and runs (issue 11, part B): each loads
and its logits equal HF's. The cases are in families.py (MOE_EDGE_CASES), where the slow run
also puts them through every common check; here, the quick run's parity on one batch."""

from __future__ import annotations

import pytest
from families import MOE_EDGE_CASES, case
from hf_reference import max_logit_diff, record


@pytest.mark.parametrize("name", MOE_EDGE_CASES)
def test_logits_equal_hf(name, hf_pair):
    ref, ours = hf_pair(name)
    c = case(name)
    d = max_logit_diff(ref, ours, ref.config.vocab_size, shapes=((2, 9),))
    record(c.family, logit_diff=d)
    assert d < c.atol
