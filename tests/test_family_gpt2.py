"""GPT-2 (HF `gpt2`). The checks every family passes run over its cases in test_families.py
(cases in families.py); here, config.json settings the cases do not hold, each compared with
HF on a tiny model."""

from __future__ import annotations

import pytest
from hf_reference import ATOL, load_pair, max_logit_diff, transformers

import archlab

_GPT2 = dict(vocab_size=301, n_positions=64, n_embd=48, n_layer=3, n_head=4, bos_token_id=0, eos_token_id=0)


@pytest.mark.parametrize("change", [
    {"activation_function": "quick_gelu"},  # x * sigmoid(1.702 x)
    {"scale_attn_by_inverse_layer_idx": True},  # layer i's scores / (i + 1)
    {"scale_attn_by_inverse_layer_idx": True, "scale_attn_weights": False},
    {"reorder_and_upcast_attn": True},  # the same scores, computed in float32
], ids=["quick_gelu", "inverse_layer_idx", "inverse_layer_idx-unscaled", "reorder_and_upcast"])
def test_config_setting_equals_hf(change, tmp_path):
    ref, ours = load_pair(transformers.GPT2Config(**_GPT2, **change), tmp_path, seed=6)
    d = max_logit_diff(ref, ours, 301, shapes=((2, 9),))
    assert d < ATOL, f"max |logit difference| {d:.2e}"


def test_inverse_layer_scale_saves_and_reads_back(tmp_path):
    """archlab.save writes scale_attn_by_inverse_layer_idx, and HF reads the same model."""
    ref, ours = load_pair(transformers.GPT2Config(**_GPT2, scale_attn_by_inverse_layer_idx=True,
                                                  activation_function="quick_gelu"), tmp_path / "a", seed=6)
    archlab.save(ours, tmp_path / "b")
    again = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "b", attn_implementation="eager").eval()
    assert again.config.scale_attn_by_inverse_layer_idx and again.config.activation_function == "quick_gelu"
    assert max_logit_diff(again, ours, 301, shapes=((2, 9),)) < ATOL


def test_bad_flag_is_named(tmp_path):
    from archlab.io.hf import FAMILIES

    hf = transformers.GPT2Config(**_GPT2).to_dict()
    with pytest.raises(archlab.CheckpointError, match="scale_attn_by_inverse_layer_idx"):
        FAMILIES["gpt2"].read_config({**hf, "scale_attn_by_inverse_layer_idx": "yes"})
