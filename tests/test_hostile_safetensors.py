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


@pytest.mark.parametrize("size", [0, True, False, -1, 1.5, float("nan"), "100"])
def test_max_shard_bytes_that_is_no_size_is_refused_before_writing(tmp_path, size):
    # 0 was taken as "the default" and True as 1 byte (a shard per tensor)
    model = archlab.build(archlab.tiny("gpt2"))
    with pytest.raises(ValueError, match=r"max_shard_bytes: expected a positive number of bytes, got"):
        archlab.save(model, tmp_path / "out", max_shard_bytes=size)
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_dangling_link_to_the_weights_is_a_checkpoint_error_naming_it(saved, tmp_path):
    # an HF cache whose blob was deleted leaves model.safetensors linking to nothing: it was a
    # bare FileNotFoundError from deep inside the reader
    d = tmp_path / "model"
    shutil.copytree(saved, d)
    (d / "model.safetensors").unlink()
    (d / "model.safetensors").symlink_to(tmp_path / "blobs" / "gone")
    with pytest.raises(CheckpointError, match=r"model\.safetensors: is a symbolic link to .*gone, which does not exist"):
        archlab.load(d)


def test_output_under_a_file_names_the_file_that_is_no_folder(tmp_path, capsys):
    # it was "[Errno 17] File exists: '.../afile'", as if the output were there already
    from archlab.cli import main

    (tmp_path / "afile").write_text("the user's file")
    with pytest.raises(NotADirectoryError, match=r"afile/out: cannot be written there, .*afile is not a folder"):
        archlab.save(archlab.build(archlab.tiny("gpt2")), tmp_path / "afile" / "out")
    assert main(["report", "gpt2", "-q", "-o", str(tmp_path / "afile" / "r.html")]) == 2
    assert "afile is not a folder" in capsys.readouterr().err
    assert (tmp_path / "afile").read_text() == "the user's file"
