"""generate/stream with hostile prompts, stop ids and seeds (issue 12; found by
scripts/fuzz.py --targets generation): each is refused with a ValueError naming the argument, or
generates; never a TypeError/RuntimeError from torch deep inside (a bool or float tensor reached
the embedding, a seed of 2**70 or 1.5 reached torch.Generator.manual_seed, stop="12" was read as
the ids 1 and 2, an int temperature of 2**64 overflowed in the division, and a top_p below
float32's range dropped every token)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archlab

_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
_TOKENS = st.one_of(st.integers(-3, 600), st.booleans(), st.floats(allow_nan=True), st.text(max_size=2), st.none(),
                    st.lists(st.integers(0, 5), max_size=2))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return archlab.build(archlab.tiny("llama-3-8b", max_seq_len=32)).eval()


def _generates_or_names(model, names, **kw):
    kw = {"input_ids": [1, 2, 3], "max_new_tokens": 2, **kw}
    try:
        out = list(archlab.stream(model, **kw)) if kw.pop("streamed", False) else archlab.generate(model, **kw)
    except ValueError as e:
        assert any(n in str(e) for n in names), e
        return None
    return out


@_SETTINGS
@given(ids=st.one_of(st.lists(_TOKENS, max_size=4), st.lists(st.lists(_TOKENS, max_size=3), max_size=3),
                     st.text(max_size=4)), streamed=st.booleans())
def test_any_prompt_list_generates_or_is_named(model, ids, streamed):
    out = _generates_or_names(model, ("input_ids", "prompt"), input_ids=ids, streamed=streamed)
    flat = [t for p in ids for t in (p if isinstance(p, list) else [p])]
    if out is not None:  # accepted: every token id was a real one
        assert all(type(t) is int and 0 <= t < model.config.vocab_size for t in flat), ids


@pytest.mark.parametrize("dtype", [torch.bool, torch.float32, torch.float64, torch.complex64])
def test_a_non_integer_tensor_prompt_is_named(model, dtype):
    with pytest.raises(ValueError, match="input_ids.*dtype"):
        archlab.generate(model, torch.ones(1, 3, dtype=dtype), 2)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.uint8])
def test_integer_tensor_prompts_generate(model, dtype):
    want = archlab.generate(model, [[1, 2, 3]], 3)
    assert archlab.generate(model, torch.tensor([[1, 2, 3]], dtype=dtype), 3).tolist() == want


@_SETTINGS
@given(stop=st.one_of(_TOKENS, st.lists(_TOKENS, max_size=3), st.integers(-(2**80), 2**80)), streamed=st.booleans())
def test_any_stop_generates_or_is_named(model, stop, streamed):
    _generates_or_names(model, ("stop",), stop=stop, streamed=streamed)


def test_stop_as_a_string_is_not_read_as_digits(model):
    with pytest.raises(ValueError, match="stop"):
        archlab.generate(model, [1, 2, 3], 4, stop="12")


def test_stop_ids_the_model_cannot_emit_change_nothing(model):
    """A tokenizer may have stop ids past the embedding (added tokens): they cannot stop anything."""
    V = model.config.vocab_size
    assert archlab.generate(model, [1, 2, 3], 5, stop=[V, V + 7, 2**70, -1]) == archlab.generate(model, [1, 2, 3], 5)


@_SETTINGS
@given(seed=st.one_of(st.integers(-(2**80), 2**80), st.floats(allow_nan=True), st.booleans(), st.text(max_size=2),
                      st.lists(st.integers(), max_size=1)))
def test_any_seed_samples_or_is_named(model, seed):
    out = _generates_or_names(model, ("seed",), seed=seed, temperature=0.8)
    if out is not None:
        assert type(seed) is int and out == archlab.generate(model, [1, 2, 3], 2, seed=seed, temperature=0.8)


@pytest.mark.parametrize("kw", [dict(temperature=2**64), dict(temperature=10**400), dict(top_p=5e-324, temperature=2.0),
                                dict(top_p=1e-46, temperature=1.0), dict(top_p=10**400, temperature=1.0)])
def test_extreme_sampling_numbers_sample_or_are_named(model, kw):
    out = _generates_or_names(model, tuple(kw), seed=0, **kw)
    if out is not None:
        assert all(0 <= t < model.config.vocab_size for t in out)
