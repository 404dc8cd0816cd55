"""archlab: every decoder-only LLM architecture from GPT-2 to DeepSeek-V3 and beyond, built
from one small set of PyTorch parts, proven equal to the reference, and compared side by side.

Importing archlab is cheap: configs, presets and their analysis need no torch. The parts that
do (build, load, generate, ...) import it on first use."""

from .model_config import (
    AttentionConfig,
    AttnTemperature,
    ConfigError,
    DeltaNetConfig,
    FFNConfig,
    MLAConfig,
    ModelConfig,
    MoEConfig,
    NormConfig,
    Pattern,
    RopeConfig,
    RopeScaling,
    RouterConfig,
)
from ._lazy import lazy_attributes
from .errors import CheckpointError
from .catalog import names as _preset_names, resolve as _resolve_config, tiny as _tiny_config  # registers every preset

__version__ = "0.1.0"


def presets() -> list[str]:
    """Names of every preset architecture, in display order."""
    return _preset_names()


def config(name_or_config: "str | ModelConfig") -> ModelConfig:
    """The ModelConfig of a preset name (or the config itself)."""
    return _resolve_config(name_or_config)


def tiny(name_or_config: "str | ModelConfig", **overrides) -> ModelConfig:
    """A few-million-parameter config with the same architecture as the preset."""
    return _tiny_config(config(name_or_config), **overrides)


# name -> module that defines it; imported on first access (these need torch)
_LAZY = {
    "build": "api", "load": "api", "save": "api", "load_tokenizer": "api", "fetch": "api", "train": "api",
    "TrainOptions": "training", "TrainError": "training", "prepare_data": "api",
    "generate": "generation", "stream": "generation", "Transformer": "model",
    "analyze": "analysis", "Analysis": "analysis",
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


__all__ = [
    "build", "config", "load", "save", "load_tokenizer", "fetch", "train", "TrainOptions", "TrainError", "prepare_data", "presets", "tiny", "generate", "stream",
    "analyze", "Analysis",
    "ModelConfig", "AttentionConfig", "MLAConfig", "DeltaNetConfig", "AttnTemperature", "FFNConfig", "MoEConfig",
    "RouterConfig", "NormConfig", "Pattern", "RopeConfig", "RopeScaling", "ConfigError", "CheckpointError", "Transformer",
]
