"""GGUF (llama.cpp's file format) -> archlab.

- reader.py: the file itself (header, metadata, tensors, dequantization); numpy only, no torch.
- metadata.py: typed `{architecture}.*` values, the vocabulary size, RoPE.
- arch.py: per `general.architecture`, its metadata as a ModelConfig and its tensor names as
  rules of the mapping engine (io/mapping.py): llama directly, every other architecture
  (and Mixtral's `llama` files) through archlab's HF family of the same model (hf_backed.py: the metadata
  re-spelt as config.json, the family's rules re-pointed at llama.cpp's tensor names and
  layouts), described in families.py, qwen2.py, deepseek2.py, gpt_oss.py, glm4_moe.py, qwen3_next.py,
  llama4.py.
- load.py: a model from a file, checked as a whole against what its metadata describes.

Importing this package imports only the reader; the names that need torch (load_gguf,
read_gguf_config, ARCHITECTURES) load their modules on first use, so that reading a vocabulary
(tokenizer.py) never imports torch.
"""

from ..._lazy import lazy_attributes
from .reader import SUPPORTED_TYPES, GGUFFile, GGUFTensor

# name -> module that defines it; imported on first access (these need torch)
_LAZY = {"load_gguf": "load", "read_gguf_config": "load", "GGUFCheckpoint": "load", "ARCHITECTURES": "arch", "GGUFArch": "arch"}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


__all__ = ["load_gguf", "read_gguf_config", "GGUFFile", "GGUFTensor", "GGUFCheckpoint", "ARCHITECTURES", "GGUFArch", "SUPPORTED_TYPES"]
