"""Generation arguments from users (the CLI's --temperature, --top-k, --top-p, or the API's):
any value either generates or is refused naming the argument, never a torch error from inside
the sampler (`--temperature nan` or `1e-45` used to end in "probability tensor contains inf/nan")."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archlab

_ANY = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10**6), st.booleans(), st.none(),
    st.sampled_from([1e-45, 5e-324, 1e300, -0.0, "0.7", [1]]),
)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return archlab.build(archlab.tiny("llama-3-8b")).eval()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True)
@given(temperature=_ANY, top_k=_ANY, top_p=_ANY)
def test_any_sampling_argument_generates_or_is_named(model, temperature, top_k, top_p):
    kw = dict(temperature=temperature, top_k=top_k, top_p=top_p)
    try:
        out = archlab.generate(model, [1, 2, 3], 3, seed=0, **kw)
    except ValueError as e:
        assert any(name in str(e) for name in kw), e
        return
    assert len(out) == 3 and all(0 <= t < model.config.vocab_size for t in out)


@pytest.mark.parametrize("temperature", [1e-45, 5e-324, 1e-30])
def test_a_tiny_temperature_is_greedy(model, temperature):
    """The limit of sampling as the temperature falls is the argmax: no NaN on the way."""
    assert archlab.generate(model, [1, 2, 3], 5, temperature=temperature, seed=0) == archlab.generate(model, [1, 2, 3], 5)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, True])
def test_bad_temperature_is_named(model, bad):
    with pytest.raises(ValueError, match="temperature"):
        archlab.generate(model, [1, 2], 2, temperature=bad)


@pytest.mark.parametrize("text", ["1e400", "nan", "inf", "-1", "2.5", "1e13", "x"])
def test_cli_context_out_of_range_is_one_line(text, capsys):
    from archlab.cli import main

    try:
        code = main(["compare", "gpt2", "--context", text])
    except SystemExit as e:  # argparse's own exit
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert "--context" in err and "Traceback" not in err
