"""The public API: presets, config, tiny, build, load."""

from __future__ import annotations

from pathlib import Path

import torch

from . import presets as _presets
from .config import ConfigError, ModelConfig
from .io import CheckpointError
from .model import Transformer

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
}


def resolve_dtype(dtype: str | torch.dtype | None, default: torch.dtype = torch.float32) -> torch.dtype:
    if dtype is None:
        return default
    if isinstance(dtype, torch.dtype):
        if not dtype.is_floating_point:
            raise ValueError(f"dtype: expected a floating-point dtype, got {dtype}")
        return dtype
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in _DTYPES:
        return _DTYPES[dtype.removeprefix("torch.")]
    raise ValueError(f"dtype: unknown dtype {dtype!r}; expected one of {sorted(set(_DTYPES))}")


def presets() -> list[str]:
    """Names of every preset architecture, in display order."""
    return _presets.names()


def config(name_or_config: str | ModelConfig) -> ModelConfig:
    """The ModelConfig of a preset name (or the config itself)."""
    if isinstance(name_or_config, ModelConfig):
        return name_or_config
    if isinstance(name_or_config, str):
        return _presets.get(name_or_config)
    raise TypeError(f"expected a preset name or a ModelConfig, got {type(name_or_config).__name__}")


def tiny(name_or_config: str | ModelConfig, **overrides) -> ModelConfig:
    """A few-million-parameter config with the same architecture as the preset."""
    return _presets.tiny(config(name_or_config), **overrides)


def build(
    name_or_config: str | ModelConfig,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> Transformer:
    """A freshly initialised model. device="meta" allocates nothing (for counting)."""
    cfg = config(name_or_config)
    dt = resolve_dtype(dtype)
    with torch.device("meta"):
        model = Transformer(cfg)
    model = model.to(dtype=dt)
    if device is not None and torch.device(device).type == "meta":
        return model
    model = model.to_empty(device=device or "cpu")
    model.init_weights()
    return model


def load(
    path: str | Path,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> Transformer:
    """A model from an HF-format directory (config.json and *.safetensors). float32 unless dtype says otherwise."""
    from .io.hf import load_hf

    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: no such file or directory")
    if p.is_dir():
        return load_hf(p, dtype=resolve_dtype(dtype), device=device)
    raise CheckpointError(f"{p}: expected an HF-format model directory (config.json and *.safetensors)")


__all__ = ["presets", "config", "tiny", "build", "load", "ModelConfig", "ConfigError", "CheckpointError", "Transformer"]
