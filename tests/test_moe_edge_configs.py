"""MoE configs no published model uses but HF accepts and runs (issue 11, part B): each loads
and its logits equal HF's. The cases are in families.py (MOE_EDGE_CASES), where the slow run
also puts them through every common check; here, the quick run's parity on one batch."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
from families import MOE_EDGE_CASES, case
from hf_reference import max_logit_diff, record
from safetensors.torch import load_file, save_file
from tolerance import atol

import archlab
from archlab.io.hf import FAMILIES


@pytest.mark.parametrize("name", MOE_EDGE_CASES)
def test_logits_equal_hf(name, hf_pair):
    ref, ours = hf_pair(name)
    c = case(name)
    d = max_logit_diff(ref, ours, ref.config.vocab_size, shapes=((2, 9),))
    record(c.family, logit_diff=d)
    assert d < (c.atol if c.atol is not None else atol(ref.config.model_type))  # None: the type's measured limit


def test_moe_layer_freq_is_ignored_with_a_warning(hf_pair, tmp_path):
    """HF's DeepseekV2DecoderLayer ignores moe_layer_freq; so do we (the parity above), and say so."""
    directory = shutil.copytree(hf_pair.path("dsv2-moe-layer-freq"), tmp_path / "ckpt")
    with pytest.warns(UserWarning, match=r"moe_layer_freq=2 in config.json is ignored, as HF transformers ignores it"):
        ours = archlab.load(directory)
    assert ours.config.ffn_types == ("dense", "moe", "moe", "moe")


def test_mlp_bias_without_shared_expert_is_refused(hf_pair):
    """HF's zero-width shared expert would still add its down_proj bias: refused, named."""
    hf = json.loads((hf_pair.path("dsv2-mlp-bias") / "config.json").read_text())
    with pytest.raises(archlab.CheckpointError, match=r"mlp_bias=true with n_shared_experts=0"):
        FAMILIES["deepseek_v2"].read_config({**hf, "n_shared_experts": 0})


def test_non_empty_tensor_of_an_absent_shared_expert_is_named(hf_pair, tmp_path):
    directory = shutil.copytree(hf_pair.path("dsv3-no-shared"), tmp_path / "ckpt")
    tensors = load_file(str(directory / "model.safetensors"))
    name = "model.layers.1.mlp.shared_experts.up_proj.weight"
    assert tensors[name].shape == (0, 64)  # what HF writes for moe_intermediate_size * 0
    tensors[name] = torch.ones(24, 64)
    save_file(tensors, str(directory / "model.safetensors"))
    with pytest.raises(archlab.CheckpointError, match=re.escape(f"{name}' has shape (24, 64)")):
        archlab.load(directory)


def test_new_moe_fields_refuse_what_nothing_would_read():
    from archlab.model_config import ConfigError, MoEConfig

    with pytest.raises(ConfigError, match=r"moe\.shared_hidden: is the width of one shared expert, but n_shared is 2"):
        MoEConfig(n_experts=4, top_k=2, hidden=8, n_shared=2, shared_hidden=12)
    with pytest.raises(ConfigError, match=r"moe\.swiglu_alpha: 1\.2 would be ignored"):
        MoEConfig(n_experts=4, top_k=2, hidden=8, swiglu_alpha=1.2)
    with pytest.raises(ConfigError, match=r"moe\.router\.dropped_groups: expected one of"):
        MoEConfig(n_experts=4, top_k=2, hidden=8, router=archlab.RouterConfig(dropped_groups="masked"))


def test_deepseek_v2_norm_topk_prob_is_ignored_with_a_warning(hf_pair):
    """HF's DeepseekV2TopkRouter ignores norm_topk_prob, and so do we (the parity of
    dsv2-norm-topk-ignored), saying at load that DeepSeek's own code would not."""
    hf = json.loads((hf_pair.path("dsv2-norm-topk-ignored") / "config.json").read_text())
    assert hf["norm_topk_prob"] is True
    with pytest.warns(UserWarning, match=r"norm_topk_prob=true in a deepseek_v2 config.json is ignored"):
        cfg = FAMILIES["deepseek_v2"].read_config(hf)
    assert not cfg.moe.router.norm_topk and cfg.moe.router.scale == 1.5
