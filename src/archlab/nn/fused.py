"""Several linear layers that read the same input, run as one matmul.

Attention's query, key and value projections (and a GLU's gate and up) all multiply the
same x. Concatenating their weights on the fly gives one matmul forward, one for the input's
gradient and one for the weights' instead of three each, and no adding up of the input's
gradient from each branch; the parameters, their names and the checkpoints stay as they are.
The concatenation copies the weights once per call, which a few rows cannot repay (decoding:
one row, and its cost is reading the weights), so it is used from FUSE_MIN_ROWS rows on.
Measured on the CPU in benchmarks/train_speed.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# rows (tokens) from which the weight copy is a small part of the matmul: with r rows the
# matmul reads the weights once and does r multiply-adds per weight, the copy one read+write
FUSE_MIN_ROWS = 128


def linears_on(x: torch.Tensor, layers: tuple[nn.Linear, ...]) -> tuple[torch.Tensor, ...]:
    """(layer(x) for layer in layers), as one matmul where that pays: plain nn.Linear layers
    (not a quantized or wrapped stand-in), with biases on all or on none, on enough rows."""
    plain = all(type(m) is nn.Linear for m in layers)
    if not plain or x.numel() < FUSE_MIN_ROWS * x.shape[-1] or len({m.bias is None for m in layers}) > 1:
        return tuple(m(x) for m in layers)
    weight = torch.cat([m.weight for m in layers])
    bias = None if layers[0].bias is None else torch.cat([m.bias for m in layers])
    return F.linear(x, weight, bias).split([m.out_features for m in layers], dim=-1)
