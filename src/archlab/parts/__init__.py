"""What the rest of archlab needs to know about each kind of mixer and feed-forward, torch-free.

A kind of layer part (softmax attention, MLA, Gated DeltaNet; dense FFN, mixture of experts)
is one object here that carries, in one place: its parameter count, its FLOPs per token, its
cache bytes, its description in words and as data, its tiny version for tests, and the name
of the nn.Module that computes it. `analysis`, `describe`, `report`, `catalog.tiny` and the
block builder loop over these registries instead of branching on kinds, so a new kind is one
module here (plus its config, its nn module and its cache), registered below.

The numbers are held to the code by tests: parameters equal the model built on the meta
device, cache bytes equal the tensors the caches allocate, FLOPs equal torch's FLOP counter.
"""

from __future__ import annotations

from .base import FFNKind, MixerKind, Part, linear, norm_params
from .attention import ATTENTION
from .mla import MLA
from .deltanet import DELTANET
from .dense import DENSE
from .moe import MOE

# LayerSpec.mixer -> kind, in the order descriptions list them
MIXERS: dict[str, MixerKind] = {k.name: k for k in (ATTENTION, MLA, DELTANET)}
# LayerSpec.ffn -> kind
FFNS: dict[str, FFNKind] = {k.name: k for k in (DENSE, MOE)}

__all__ = ["FFNS", "MIXERS", "FFNKind", "MixerKind", "Part", "linear", "norm_params"]
