"""The presets as the notes see them: config, analysis, words, release month and family."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import catalog
from ..analysis import Analysis, analyze
from ..catalog.released import released
from ..describe import Description, describe
from ..model_config import ModelConfig

# The contexts the family pages give KV cache and FLOPs at (4K, 32K, 128K tokens).
CONTEXTS = (4096, 32768, 131072)
# describe()'s context for the words it computes (KV at, FLOPs at): a common serving length.
DESCRIBE_CONTEXT = 8192

# Each family's predecessor: the preset its design most directly builds on, which its page
# compares against. Chosen from what each family's paper or report says it departs from.
LINEAGE = {
    "gpt2": "gpt-1",  # GPT-2 paper sec. 2.3: GPT-1's model with pre-norm and a final norm
    "gpt3": "gpt2-xl",  # GPT-3 paper sec. 2.1: "the same model and architecture as GPT-2"
    "gpt_neox": "gpt-3-175b",  # GPT-NeoX-20B paper sec. 2.1: GPT-3-like, with rotary and parallel blocks
    "bloom": "gpt-3-175b",  # BLOOM paper sec. 3.2: a GPT-3-style decoder with ALiBi and an embedding norm
    "palm": "gpt-3-175b",  # PaLM paper sec. 2: a standard decoder with SwiGLU, parallel blocks, MQA, RoPE
    "llama": "gpt-neox-20b",  # LLaMA paper sec. 2.2: pre-norm (GPT-3), SwiGLU (PaLM), rotary (GPT-Neo)
    "mistral": "llama-2-7b",  # Mistral 7B paper: compared with and built like Llama 2
    "deepseek": "mixtral-8x7b",  # the MoE design DeepSeekMoE / V2 set themselves against
    "olmo2": "llama-2-7b",  # OLMo 2 paper: Llama-style, with norms moved and QK-norm added
    "gemma3": "llama-3-8b",  # Gemma 3 report: a dense GQA decoder like Llama 3 with local/global layers
    "llama4": "llama-3.1-405b",  # Meta's previous generation
    "qwen2": "llama-2-7b",  # Qwen2 report: a Llama-style decoder with QKV biases
    "qwen3": "qwen2.5-7b",  # Qwen3 report sec. 2: Qwen2.5 without QKV bias, with QK-norm
    "qwen": "qwen3-30b-a3b",  # Qwen3-Next: the Qwen3 MoE with hybrid DeltaNet layers
    "smollm": "llama-3-8b",  # SmolLM2/3 model cards: Llama architecture (SmolLM3 adds NoPE layers)
    "kimi": "deepseek-v3",  # Kimi K2 report: DeepSeek-V3's architecture, more experts, fewer heads
    "glm": "deepseek-v3",  # GLM-4.5 report: a DeepSeek-V3-style MoE with GQA and more layers
    "gpt-oss": "gpt-3-175b",  # gpt-oss model card: alternating banded attention "similar to GPT-3"
    "grok": "mixtral-8x7b",  # a top-2-of-8 MoE like Mixtral
}


@dataclass(frozen=True)
class Model:
    name: str
    config: ModelConfig
    analysis: Analysis
    description: Description
    released: str  # "YYYY-MM"
    published: catalog.Published | None
    module: str  # the catalog module that defines it, e.g. "catalog/llama.py"

    @property
    def family(self) -> str:
        return self.config.family


def family_dir(family: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", family):
        raise ValueError(f"family {family!r}: not usable as a folder name in the notes tree")
    return family


def family_page(family: str) -> str:
    return f"{family_dir(family)}/README.md"


def load_models() -> list[Model]:
    """Every registered preset, in the catalog's display order."""
    out = []
    for name in catalog.names():
        cfg = catalog.get(name)
        if not cfg.family:
            raise catalog.ConfigError(f"preset {name!r}: family is empty; the notes file each preset under its family")
        rel = released(name)
        if rel is None:
            raise catalog.ConfigError(f"preset {name!r}: no release month in archlab/catalog/released.py")
        a = analyze(cfg)
        module = catalog._REGISTRY[name].__module__.rsplit(".", 1)[-1]
        out.append(Model(name, cfg, a, describe(cfg, a, context=DESCRIBE_CONTEXT), rel.month,
                         catalog.published(name), f"catalog/{module}.py"))
    return out


def families(models: list[Model]) -> dict[str, list[Model]]:
    """Family -> its presets, families in the order their first preset appears."""
    out: dict[str, list[Model]] = {}
    for m in models:
        out.setdefault(m.family, []).append(m)
    return out
