"""GGUF (llama.cpp's file format) -> archlab.

- reader.py: the file itself (header, metadata, tensors, dequantization); numpy only, no torch.
- arch.py: per `general.architecture`, its metadata as a ModelConfig and its tensor names as
  rules of the mapping engine (io/mapping.py).
- load.py: a model from a file, checked as a whole against what its metadata describes.

Importing this package imports only the reader; the names that need torch (load_gguf,
read_gguf_config, ARCHITECTURES) load their modules on first use, so that reading a vocabulary
(tokenizer.py) never imports torch.
"""

from importlib import import_module

from .reader import SUPPORTED_TYPES, GGUFFile, GGUFTensor

# name -> module that defines it; imported on first access (these need torch)
_LAZY = {"load_gguf": "load", "read_gguf_config": "load", "GGUFCheckpoint": "load", "ARCHITECTURES": "arch", "GGUFArch": "arch"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["load_gguf", "read_gguf_config", "GGUFFile", "GGUFTensor", "GGUFCheckpoint", "ARCHITECTURES", "GGUFArch", "SUPPORTED_TYPES"]
