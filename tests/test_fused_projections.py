"""Projections that read the same input run as one matmul (nn/fused.py) from FUSE_MIN_ROWS
rows on: the same values and gradients as the separate layers, for every attention and FFN
kind they apply to (plain GQA, biased QKV, QK-norm over the whole projection, an output gate,
GLU and plain MLP, shared experts)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import archlab
from archlab.nn import fused
from marks import slow_except

# llama: GQA + SwiGLU; qwen2: biased qkv; olmo-2: QK-norm over the projection; qwen3-next:
# gated attention and a shared expert; gpt2: fused c_attn in checkpoints, MLP; gemma-3: GeGLU
NAMES = ["llama-3-8b", "qwen2.5-7b", "olmo-2-7b", "qwen3-next-80b-a3b", "gpt2", "gemma-3-27b"]


def _run(model, ids, min_rows, monkeypatch):
    monkeypatch.setattr(fused, "FUSE_MIN_ROWS", min_rows)
    model.zero_grad(set_to_none=True)
    loss = model(ids[:, :-1], targets=ids[:, 1:])
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


# the quick run takes the model with the most kinds at once; the full run all of them
@pytest.mark.parametrize("name", slow_except(NAMES, ("qwen3-next-80b-a3b",)))
def test_fused_projections_equal_separate(name, monkeypatch):
    torch.manual_seed(0)
    cfg = archlab.tiny(name)
    model = archlab.build(cfg, dtype=torch.float64)
    ids = torch.randint(0, cfg.vocab_size, (2, 17))
    calls = []
    # fused.py's own torch.cat counted, nobody else's
    monkeypatch.setattr(fused, "torch", SimpleNamespace(cat=lambda *a, **k: calls.append(1) or torch.cat(*a, **k)))
    loss_sep, grads_sep = _run(model, ids, 10**9, monkeypatch)
    assert not calls
    loss_fused, grads_fused = _run(model, ids, 1, monkeypatch)
    assert calls  # the fused path ran
    torch.testing.assert_close(loss_fused, loss_sep, rtol=1e-12, atol=1e-12)
    assert grads_fused.keys() == grads_sep.keys()
    for n in grads_sep:
        torch.testing.assert_close(grads_fused[n], grads_sep[n], rtol=1e-10, atol=1e-12, msg=n)


def test_fusion_skips_mixed_biases_and_stand_ins():
    x = torch.randn(256, 8)
    a, b = torch.nn.Linear(8, 4, bias=True), torch.nn.Linear(8, 4, bias=False)
    ya, yb = fused.linears_on(x, (a, b))
    torch.testing.assert_close(ya, a(x)), torch.testing.assert_close(yb, b(x))

    class Wrapped(torch.nn.Linear):  # a quantized or adapted stand-in keeps its own forward
        def forward(self, x):
            return super().forward(x) * 2

    w = Wrapped(8, 4, bias=False)
    torch.testing.assert_close(fused.linears_on(x, (b, w))[1], 2 * b.__class__.forward(w, x))
