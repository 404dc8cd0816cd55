"""What training needs of the model beyond a correct forward: depth-scaled init of every
residual writer."""

import math
import re

import pytest
import torch

import archlab

# ---- initialisation -----------------------------------------------------------------------

# Named independently of the modules' own declarations: what a block adds to the residual
# stream is the output of its mixer's `wo` and of its FFN's `down` (dense, routed, shared).
RESIDUAL = re.compile(r"^layers\.\d+\.(attn\.wo\.weight|ffn\.down\.weight|ffn\.experts\.down|ffn\.shared\.down\.weight)$")


def _close_std(t: torch.Tensor, std: float) -> bool:
    # the sample std of n normal draws has relative error ~ 1/sqrt(2n); 6 of those never fails by chance
    n = t.numel()
    return abs(t.float().std().item() / std - 1) < 6 / math.sqrt(2 * n) and abs(t.float().mean().item()) < 6 * std / math.sqrt(n)


@pytest.mark.parametrize("name", archlab.presets())
def test_every_residual_writer_is_depth_scaled(name):
    torch.manual_seed(0)
    cfg = archlab.tiny(name)
    model = archlab.build(cfg)
    declared = {id(p) for p in model.residual_params()}
    params = dict(model.named_parameters())
    assert {n for n, p in params.items() if id(p) in declared} == {n for n in params if RESIDUAL.match(n)}
    for i, layer in enumerate(model.layers):  # every sublayer writes through something
        assert any(id(p) in declared for p in layer.attn.parameters()), f"layer {i} attention"
        assert any(id(p) in declared for p in layer.ffn.parameters()), f"layer {i} ffn"

    residual_std = 0.02 / math.sqrt(2 * cfg.n_layers)
    for n, p in params.items():
        if p.dim() < 2 or n.endswith("attn.conv"):  # vectors, and DeltaNet's depthwise filter (its own init)
            continue
        if n.endswith("bias"):  # the stacked experts' biases (E, F)
            assert not p.any(), n
            continue
        std = residual_std if id(p) in declared else 0.02
        assert _close_std(p.detach(), std), f"{n}: std {p.std().item():.5f}, expected {std:.5f}"


def test_routed_experts_down_is_scaled():
    # the stacked (E, D, F) parameter is no nn.Linear: it was once left at 0.02
    torch.manual_seed(0)
    cfg = archlab.tiny("deepseek-v3")
    model = archlab.build(cfg)
    downs = [layer.ffn.experts.down for layer in model.layers if hasattr(layer.ffn, "experts")]
    assert downs
    for d in downs:
        assert _close_std(d.detach(), 0.02 / math.sqrt(2 * cfg.n_layers))
