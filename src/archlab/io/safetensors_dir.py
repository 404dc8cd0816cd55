"""Lazy access to the tensors of an HF-format directory: one or more *.safetensors files,
sharded ones listed in model.safetensors.index.json."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded: the message names the file, field or tensor."""


class TensorSource:
    """Every tensor name in the checkpoint, read from disk only when asked for.
    Records which names were read, so that leftovers can be reported as unexpected."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._where: dict[str, Path] = {}
        self._handles: dict[Path, object] = {}
        self.used: set[str] = set()
        index = self.directory / "model.safetensors.index.json"
        if index.exists():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise CheckpointError(f"{index}: not a valid safetensors index ({e})") from None
            files = sorted({self.directory / f for f in weight_map.values()})
            missing = [f.name for f in files if not f.exists()]
            if missing:
                raise CheckpointError(f"{index}: lists shard files that are not in {self.directory}: {missing}")
        else:
            files = sorted(self.directory.glob("*.safetensors"))
            if not files:
                raise CheckpointError(f"{self.directory}: no *.safetensors files found")
            weight_map = None
        for f in files:
            handle = self._open(f)
            for key in handle.keys():
                if key in self._where:
                    raise CheckpointError(f"tensor {key!r} appears in both {self._where[key].name} and {f.name}")
                self._where[key] = f
        if weight_map is not None:
            for key, fname in weight_map.items():
                if self._where.get(key) != self.directory / fname:
                    raise CheckpointError(f"{index}: says {key!r} is in {fname}, but that file does not hold it")

    def _open(self, f: Path):
        try:
            handle = safe_open(str(f), framework="pt")
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{f}: not a readable safetensors file, perhaps truncated or corrupted ({e})") from None
        self._handles[f] = handle
        return handle

    def __contains__(self, key: str) -> bool:
        return key in self._where

    def keys(self) -> list[str]:
        return list(self._where)

    def get(self, key: str) -> torch.Tensor:
        f = self._where[key]
        self.used.add(key)
        try:
            return self._handles[f].get_tensor(key)
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{f}: cannot read tensor {key!r}, the file may be truncated or corrupted ({e})") from None

    def unused(self) -> list[str]:
        return sorted(set(self._where) - self.used)
