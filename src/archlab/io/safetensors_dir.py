"""Safetensors directories: lazy reading of one or more *.safetensors files (sharded ones
listed in model.safetensors.index.json) as a mapping engine Checkpoint, and writing them
shard by shard."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import CheckpointError
from .files import INDEX_CAP, check_regular, dangling, file_named_in, read_json
from .mapping import Checkpoint


class TensorSource(Checkpoint):
    """Every tensor name in the checkpoint, its shape and dtype from the files' headers, its
    data read from disk only when asked for."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.where = str(self.directory)
        self._where: dict[str, Path] = {}
        self._handles: dict[Path, object] = {}
        index = self.directory / "model.safetensors.index.json"
        if index.exists():
            weight_map = read_json(index, INDEX_CAP, self.directory).get("weight_map")
            if not isinstance(weight_map, dict):
                raise CheckpointError(f"{index}: not a valid safetensors index (no 'weight_map' object)")
            files = sorted({file_named_in(self.directory, f, index) for f in weight_map.values()})
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
            check_regular(f, self.directory)  # a FIFO would block safe_open; a link may lead outside
        except FileNotFoundError:  # found by the glob, so a link to nothing (a cleaned HF cache's blob)
            raise CheckpointError(f"{f}: {dangling(f)}") from None
        try:
            handle = safe_open(str(f), framework="pt")
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{f}: not a readable safetensors file, perhaps truncated or corrupted ({e})") from None
        self._handles[f] = handle
        return handle

    def __contains__(self, key: str) -> bool:
        return key in self._where

    def names(self) -> list[str]:
        return list(self._where)

    def _slice(self, key: str):
        f = self._where[key]
        try:
            return self._handles[f].get_slice(key)
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{f}: cannot read the header of tensor {key!r}, the file may be corrupted ({e})") from None

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._slice(key).get_shape())

    def dtype_name(self, key: str) -> str:
        """The header's dtype name (safetensors' spelling: F32, BF16, F8_E4M3, ...)."""
        return self._slice(key).get_dtype()

    def read(self, key: str) -> torch.Tensor:
        f = self._where[key]
        try:
            return self._handles[f].get_tensor(key)
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{f}: cannot read tensor {key!r}, the file may be truncated or corrupted ({e})") from None


def _owned(t: torch.Tensor, seen: set[int]) -> torch.Tensor:
    """A contiguous CPU tensor sharing memory with no other written tensor (safetensors
    refuses shared storage; a view of a stacked or fused tensor would save all of it)."""
    t = t.detach()
    if t.device.type == "meta":
        raise CheckpointError("cannot save a model on the meta device: it has shapes but no weights")
    t = t.cpu()
    if t.numel() == 0:
        return t.contiguous()
    storage = t.untyped_storage()
    whole = t.is_contiguous() and t.storage_offset() == 0 and storage.nbytes() == t.numel() * t.element_size()
    if not whole or storage.data_ptr() in seen:
        t = t.contiguous().clone() if t.is_contiguous() else t.contiguous()
        storage = t.untyped_storage()
    seen.add(storage.data_ptr())
    return t


def write_safetensors(directory: Path, tensors, max_shard_bytes: int) -> list[Path]:
    """Write (name, tensor) pairs as model.safetensors, or as numbered shards of at most
    max_shard_bytes each (a single larger tensor gets a shard of its own) plus
    model.safetensors.index.json. Holds one shard in memory at a time."""
    shards: list[tuple[Path, list[str]]] = []
    current: dict[str, torch.Tensor] = {}
    size = total = 0
    seen: set[int] = set()

    def flush() -> None:
        path = directory / f"shard-{len(shards) + 1}.partial"
        save_file(current, str(path), metadata={"format": "pt"})
        shards.append((path, list(current)))
        current.clear()
        seen.clear()

    for name, t in tensors:
        t = _owned(t, seen)
        nbytes = t.numel() * t.element_size()
        if current and size + nbytes > max_shard_bytes:
            flush()
            size = 0
        current[name] = t
        size += nbytes
        total += nbytes
    if current or not shards:
        flush()

    written = []
    if len(shards) == 1:
        final = directory / "model.safetensors"
        shards[0][0].rename(final)
        written.append(final)
    else:
        weight_map = {}
        for n, (path, names) in enumerate(shards, start=1):
            final = directory / f"model-{n:05d}-of-{len(shards):05d}.safetensors"
            path.rename(final)
            written.append(final)
            weight_map.update((k, final.name) for k in names)
        index = directory / "model.safetensors.index.json"
        index.write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, indent=2) + "\n")
        written.append(index)
    return written
