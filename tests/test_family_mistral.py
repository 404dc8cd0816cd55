"""HF `mistral` (sliding window in every layer) and `mixtral` (8 experts, top 2). The checks
every family passes run over their cases in test_families.py (cases in families.py); here,
Mistral's and Mixtral's own."""

from __future__ import annotations

import pytest
from families import case
from safetensors.torch import load_file, save_file

import archlab
from archlab.errors import CheckpointError


def test_mistral_window_reaches_the_config():
    """The sliding window is read as one window for every layer, in tokens seen including the query."""
    cfg = archlab.io.hf.FAMILIES["mistral"].read_config(case("mistral-sliding-gqa").hf_config().to_dict())
    assert cfg.layer_types == ("sliding", "sliding") and cfg.attention.window == 8


def test_mixtral_missing_expert_is_named(hf_pair, tmp_path):
    source = hf_pair.path("mixtral-8e-top2")
    (tmp_path / "config.json").write_bytes((source / "config.json").read_bytes())
    state = load_file(str(source / "model.safetensors"))
    del state["model.layers.1.block_sparse_moe.experts.5.w3.weight"]
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=r"experts\.5\.w3"):
        archlab.load(tmp_path)


def test_bad_window_is_a_clear_error():
    hf = case("mistral-sliding-gqa").hf_config().to_dict() | {"sliding_window": -3}
    with pytest.raises(CheckpointError, match="sliding_window"):
        archlab.io.hf.FAMILIES["mistral"].read_config(hf)
