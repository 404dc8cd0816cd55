"""A GGUF file -> an archlab model: the file (reader.py) read as a Checkpoint of the mapping
engine, with the rules of its architecture (arch.py)."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ...model_config import ModelConfig
from ...memory import check_load_memory
from ...model import build
from ..mapping import Checkpoint, Step, listing, load_state, plan, same
from ...quant.convert import install_packed, packed_targets
from ...quant.gguf import KEPT_TYPES, pack_gguf
from ...quant.packed import PackedWeight
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


def _row_order(step: Step, cfg: ModelConfig, shape: tuple[int, int]) -> torch.Tensor | None | bool:
    """How the step's load transform reorders a weight, found by running it on element indices:
    None when it leaves the matrix as it is, the row order when it only moves whole rows (as
    unpermute_qk does), False otherwise (the weight is then dequantized as usual)."""
    if step.rule.load is same:
        return None
    n, k = shape
    idx = torch.arange(n * k, dtype=torch.int64).view(n, k)
    try:
        out = step.rule.load([idx], cfg)[0]
    except (RuntimeError, ValueError, IndexError, TypeError):
        return False
    if out.dtype != torch.int64 or tuple(out.shape) != (n, k):
        return False
    rows = out[:, 0] // k
    if not torch.equal(out, rows[:, None] * k + torch.arange(k)):
        return False
    return rows


def _kept(g: GGUFFile, cfg: ModelConfig, steps: list[Step], targets: dict[str, type]) -> dict[str, tuple[PackedWeight, str]]:
    """Our weight name -> (its packed form, the file's tensor) for every quantized 2-D tensor of a
    kept type that becomes one linear weight (or the token embedding) by moving rows at most."""
    kept = {}
    for step in steps:
        if len(step.ours) != 1 or len(step.theirs) != 1 or len(step.theirs[0]) != 1 or step.ours[0] not in targets:
            continue
        name = step.theirs[0][0]
        shape = g.shape(name)
        if g.type_name(name) not in KEPT_TYPES or len(shape) != 2 or g.byte_order != "<":
            continue
        order = _row_order(step, cfg, shape)
        if order is False:
            continue
        pw = pack_gguf(g.raw(name), g.type_name(name), shape)
        kept[step.ours[0]] = (pw if order is None else pw.select_rows(order), name)
    return kept


def load_gguf(path: str | Path, dtype: torch.dtype = torch.float32, device: str | torch.device | None = None,
              check_memory: bool = True, quant: str | None = None):
    """A model from a GGUF file. quant=None: quantized tensors are dequantized (to float32, then
    `dtype`). quant="keep": the linear weights (and the token embedding) stored as Q8_0, Q4_0,
    Q4_1, Q4_K, Q5_K or Q6_K stay packed (archlab.quant), with values equal to the dequantized
    ones; other tensors are read as with None."""
    if quant not in (None, "keep"):
        raise ValueError(f"load_gguf: quant={quant!r}; expected None or 'keep' (archlab.load quantizes to int8/int4)")
    g = GGUFFile(path)
    arch = architecture(g)
    cfg = read_config(g, arch)
    if check_memory:
        check_load_memory(cfg, dtype, device, source=path)
    model = build(cfg, dtype=dtype, device="meta")
    expected = {k: v.shape for k, v in model.state_dict().items()}
    rules, ckpt = arch.rules(cfg, g), GGUFCheckpoint(g)
    ignore = arch.ignore + arch.extra_ignore(g)
    kept: dict[str, tuple[PackedWeight, str]] = {}
    if quant == "keep":
        n_experts = cfg.moe.n_experts if cfg.moe is not None else 0
        kept = _kept(g, cfg, plan(rules, expected, ckpt, n_experts)[0], packed_targets(model))
        expected = {k: v for k, v in expected.items() if k not in kept}
        ignore = list(ignore) + [re.escape(name) + "$" for _, name in kept.values()]
    state = load_state(rules, cfg, expected, ckpt, dtype, described_by="the metadata", ignore=ignore)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if set(missing) != set(kept) or unexpected:  # load_state checked the names; this cannot differ
        raise RuntimeError(f"{path}: state dict mismatch after loading (missing {missing}, unexpected {unexpected})")
    install_packed(model, {k: pw for k, (pw, _) in kept.items()}, dtype)
    return model.to(device) if device is not None else model
