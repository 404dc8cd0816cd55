"""HF `qwen3` (QK-norm per head, head_dim independent of hidden_size) and `qwen3_moe` (routed
experts, dense layers by mlp_only_layers / decoder_sparse_step). The checks every family passes
run over their cases in test_families.py (cases in families.py); here, Qwen3's own."""

from __future__ import annotations

import pytest
from families import QWEN3_BASE, case

from archlab.errors import CheckpointError
from archlab.io.hf import FAMILIES

transformers = pytest.importorskip("transformers")


def _hf(name: str) -> dict:
    return case(name).hf_config().to_dict()


def test_layer_plans_follow_hf():
    """Which layers slide and which are MoE, as HF's config classes decide them."""
    dense = FAMILIES["qwen3"].read_config(_hf("qwen3-bias-sliding"))
    assert dense.layer_types == ("global", "sliding", "sliding") and dense.attention.window == 6
    # without layer_types in config.json: Qwen3Config's rule (sliding from max_window_layers on)
    for first in (0, 2, 5):
        hf = {**_hf("qwen3-bias-sliding"), "max_window_layers": first}
        del hf["layer_types"]
        want = [{"full_attention": "global", "sliding_attention": "sliding"}[t]
                for t in transformers.Qwen3Config.from_dict(hf).layer_types]
        assert list(FAMILIES["qwen3"].read_config(hf).layer_types) == want
        assert set(want) == ({"sliding"} if first == 0 else {"global"} if first == 5 else {"global", "sliding"})
    mixed = FAMILIES["qwen3_moe"].read_config(_hf("qwen3moe-mixed-sliding"))
    assert mixed.ffn_types == ("dense", "moe", "dense", "dense")
    assert mixed.layer_types == ("sliding",) * 4 and mixed.moe.router.norm_topk is False
    # the hub's name for the expert count (attribute_map maps it onto num_local_experts)
    hub = {**_hf("qwen3moe-8e-top2-norm"), "num_experts": 8}
    hub.pop("num_local_experts", None)
    assert FAMILIES["qwen3_moe"].read_config(hub).moe.n_experts == 8


def test_qwen3_head_dim_defaults_to_128():
    """Qwen3Config's head_dim default is 128, whatever hidden_size / heads is."""
    hf = transformers.Qwen3Config(**QWEN3_BASE, num_key_value_heads=2).to_dict()
    hf.pop("head_dim")
    assert FAMILIES["qwen3"].read_config(hf).attention.head_dim == 128
    assert transformers.Qwen3Config(**QWEN3_BASE, num_key_value_heads=2).head_dim == 128


def test_sliding_layers_without_a_window_are_refused():
    hf = transformers.Qwen3Config(**QWEN3_BASE, num_key_value_heads=2).to_dict()
    hf["layer_types"] = ["full_attention", "sliding_attention"]
    with pytest.raises(CheckpointError, match="use_sliding_window"):
        FAMILIES["qwen3"].read_config(hf)
    hf["layer_types"] = ["full_attention", "chunked_attention"]
    with pytest.raises(CheckpointError, match="layer_types"):
        FAMILIES["qwen3"].read_config(hf)
