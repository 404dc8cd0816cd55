"""GLM-4.5 (HF `glm4_moe`): partial rotate-half RoPE, q/k/v biases without an o bias, QK-norm,
DeepSeek-V3-style sigmoid routing with groups, dense first layers, MTP layers ignored. The
checks every family passes run over its cases in test_families.py (cases in families.py); here,
GLM's own."""

from __future__ import annotations

import json

import pytest
import torch
from families import glm_config
from hf_reference import ATOL, make_hf, save_hf
from safetensors.torch import save_file

import archlab


def test_mtp_layers_are_ignored(tmp_path):
    """GLM-4.5 stores its multi-token-prediction layer after the last one (model.layers.92);
    HF's model has no place for it, and neither has ours."""
    cfg = glm_config(num_nextn_predict_layers=1)
    ref = make_hf(cfg)
    save_hf(ref, tmp_path)
    g = torch.Generator().manual_seed(0)
    mtp = {f"model.layers.2.{k}": torch.randn(64, 128, generator=g) for k in ("eh_proj.weight",)}
    mtp["model.layers.2.enorm.weight"] = torch.ones(64)
    save_file(mtp, str(tmp_path / "mtp.safetensors"))
    ours = archlab.load(tmp_path)
    ids = torch.randint(0, 301, (1, 7), generator=g)
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), ref(ids).logits, atol=ATOL, rtol=0)
    # without MTP layers in config.json, the same tensors are unexpected
    hf = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**hf, "num_nextn_predict_layers": 0}))
    with pytest.raises(archlab.CheckpointError, match=r"unexpected tensors.*model\.layers\.2\.eh_proj"):
        archlab.load(tmp_path)


def test_tiny_preset_keeps_glm_parts():
    cfg = archlab.tiny("glm-4.5")
    assert cfg.rope.partial == 0.5 and cfg.moe.router.score_bias
