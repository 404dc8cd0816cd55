"""Issue 12: a safetensors checkpoint whose values are not numbers a model can compute with.
HF transformers loads NaN and infinite weights silently, and every output they reach is then
NaN with nothing to say why; archlab refuses them naming the file and the tensor."""

from __future__ import annotations

import shutil

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

import archlab
from archlab.errors import CheckpointError


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = archlab.build(archlab.tiny("llama-3-8b"))
    return archlab.save(model, tmp_path_factory.mktemp("st") / "model")


@settings(max_examples=8, deadline=None)
@given(data=st.data(), value=st.sampled_from([float("nan"), float("inf"), float("-inf")]))
def test_non_finite_weights_are_refused_naming_the_tensor(saved, tmp_path_factory, data, value):
    d = tmp_path_factory.mktemp("m") / "model"
    shutil.copytree(saved, d)
    tensors = load_file(str(d / "model.safetensors"))
    name = data.draw(st.sampled_from(sorted(tensors)))
    flat = tensors[name].reshape(-1).clone()
    flat[data.draw(st.integers(0, flat.numel() - 1))] = value
    tensors[name] = flat.reshape(tensors[name].shape)
    save_file(tensors, str(d / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=rf"model\.safetensors: tensor '{name}' holds .*(NaN|infinite)"):
        archlab.load(d)
