"""archlab: every decoder-only LLM architecture from GPT-2 to DeepSeek-V3, built from one
small set of PyTorch parts, proven equal to the reference, and compared side by side."""

from .api import build, config, fetch, generate, load, load_tokenizer, presets, save, stream, tiny
from .config import (
    AttentionConfig,
    ConfigError,
    FFNConfig,
    MLAConfig,
    ModelConfig,
    MoEConfig,
    NormConfig,
    RopeConfig,
    RopeScaling,
    RouterConfig,
)
from .io import CheckpointError
from .model import Transformer

__version__ = "0.1.0"

__all__ = [
    "build", "config", "load", "save", "load_tokenizer", "fetch", "presets", "tiny", "generate", "stream",
    "ModelConfig", "AttentionConfig", "MLAConfig", "FFNConfig", "MoEConfig", "RouterConfig",
    "NormConfig", "RopeConfig", "RopeScaling", "ConfigError", "CheckpointError", "Transformer",
]
