"""The `archlab` command with hostile arguments (issue 12; found by scripts/fuzz.py --targets cli):
every one is refused with exit status 2 and a message naming the flag or the value, or runs;
never a traceback out of main."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archlab
from archlab.cli import main
from archlab.model_config import ConfigError

_SIZES = st.one_of(st.integers(-5, 10), st.integers(2**20, 10**500), st.booleans(), st.floats(allow_nan=True),
                   st.sampled_from(["64", None]))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(field=st.sampled_from(["d_model", "n_heads", "vocab_size", "max_seq_len", "n_layers"]), value=_SIZES)
def test_tiny_sizes_are_checked_before_any_arithmetic(field, value):
    """archlab.tiny (and `train --tiny --d-model 1e400`) ended in an OverflowError inside the FFN's
    width arithmetic; each size is now an integer within model_config's bounds, or named."""
    if value is None:
        return
    from archlab.model_config import BOUNDS

    most = {"d_model": BOUNDS["widths"], "n_heads": BOUNDS["counts"], "vocab_size": BOUNDS["vocabulary"],
            "max_seq_len": BOUNDS["positions"], "n_layers": BOUNDS["layers"]}[field]
    fits = type(value) is int and 1 <= value <= most
    try:
        archlab.tiny("llama-3-8b", **{field: value})
    except ConfigError as e:
        assert fits or field in str(e), e  # a size within bounds may still not fit the rest (heads in d_model)
        return
    assert fits


@pytest.mark.parametrize("flag", ["--d-model", "--n-heads", "--n-layers"])
@pytest.mark.parametrize("value", ["1" + "0" * 400, "18446744073709551616"])
def test_train_tiny_with_a_huge_size_is_one_line(tmp_path, capsys, flag, value):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("to be or not to be\n" * 20)
    code = main(["train", "llama-3-8b", "--tiny", flag, value, "--data", str(corpus), "--out", str(tmp_path / "run"),
                 "--steps", "1", "-q", "--device", "cpu"])
    assert code == 2 and flag.lstrip("-").replace("-", "_") in capsys.readouterr().err
