"""A GGUF file -> an archlab model: the file (reader.py) read as a Checkpoint of the mapping
engine, with the rules of its architecture (arch.py)."""

from __future__ import annotations

from pathlib import Path

import torch

from ...model_config import ModelConfig
from ...memory import check_load_memory
from ...model import build
from ..mapping import Checkpoint, listing, load_state
from .arch import architecture, read_config
from .reader import SUPPORTED_TYPES, GGUFFile

__all__ = ["GGUFCheckpoint", "load_gguf", "read_gguf_config"]


class GGUFCheckpoint(Checkpoint):
    """A GGUF file's tensors, dequantized to float32 torch tensors when read."""

    def __init__(self, g: GGUFFile):
        self.g, self.where = g, str(g.path)

    def names(self) -> list[str]:
        return list(self.g.tensors)

    def __contains__(self, name: str) -> bool:
        return name in self.g

    def shape(self, name: str) -> tuple[int, ...]:
        return self.g.shape(name)

    def read(self, name: str) -> torch.Tensor:
        return torch.from_numpy(self.g.read(name))

    def problems(self, names: list[str]) -> list[str]:
        unsupported = [f"{n} ({self.g.type_name(n)})" for n in names if self.g.type_name(n) not in SUPPORTED_TYPES]
        if not unsupported:
            return []
        return [f"tensors of unsupported type: {listing(unsupported)}; supported types: {', '.join(sorted(SUPPORTED_TYPES))}"]


def read_gguf_config(path: str | Path) -> ModelConfig:
    """The ModelConfig a GGUF file's metadata describes (no tensor is read)."""
    g = GGUFFile(path)
    return read_config(g, architecture(g))


def load_gguf(path: str | Path, dtype: torch.dtype = torch.float32, device: str | torch.device | None = None,
              check_memory: bool = True):
    """A model from a GGUF file; quantized tensors are dequantized (to float32, then `dtype`)."""
    g = GGUFFile(path)
    arch = architecture(g)
    cfg = read_config(g, arch)
    if check_memory:
        check_load_memory(cfg, dtype, device, source=path)
    model = build(cfg, dtype=dtype, device="meta")
    expected = {k: v.shape for k, v in model.state_dict().items()}
    state = load_state(arch.rules(cfg, g), cfg, expected, GGUFCheckpoint(g), dtype, described_by="the metadata",
                       ignore=arch.ignore + arch.extra_ignore(g))
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device) if device is not None else model
