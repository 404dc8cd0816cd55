"""What torch itself says was allocated or computed: the independent side of checks on our
own accounting (Cache.nbytes, analyze()). Nothing here calls the code it is used to check."""

from __future__ import annotations

import torch


def _tensors(obj, depth: int = 0):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif depth < 3 and isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item, depth + 1)
    elif depth < 3 and isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item, depth + 1)
    elif depth < 3 and hasattr(obj, "__dict__") and not isinstance(obj, type):
        for item in vars(obj).values():
            yield from _tensors(item, depth + 1)


def allocated_bytes(*objects) -> int:
    """Bytes of the storage under every tensor the objects (a layer's cache, ...) hold, found
    through their attributes rather than their tensors() or nbytes, each storage counted once
    and whole (a view of a larger buffer counts the buffer)."""
    storages = {}
    for obj in objects:
        for t in _tensors(obj):
            assert not t.is_meta, "a tensor on the meta device allocates nothing to count"
            s = t.untyped_storage()
            storages[s.data_ptr()] = s.nbytes()
    return sum(storages.values())


def cache_allocated_bytes(cache) -> int:
    """allocated_bytes of a model cache's per-layer caches (its pad and length bookkeeping are
    not cache contents)."""
    return allocated_bytes(*cache.layers)
