"""When each preset's model was first made public (year-month), and where that is stated.

Kept in one table beside the presets rather than in each family module's Published figures:
a date is about the release, not the size, and one table is what the notes' timeline reads.
tests/test_notes.py holds it to the registry (every preset dated, no unknown names).

The date is the first public release of that model: the paper or announcement that made its
weights (or, for GPT-3 and PaLM, which were never released, its description) public.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Released:
    month: str  # "YYYY-MM"
    source: str


_GPT2_STAGED = "OpenAI, GPT-2: 1.5B Release (openai.com/index/gpt-2-1-5b-release, 2019-11-05), the staged-release timeline"
_QWEN3 = "Qwen team, Qwen3: Think Deeper, Act Faster (qwenlm.github.io/blog/qwen3, 2025-04-29)"

RELEASED: dict[str, Released] = {
    "gpt-1": Released("2018-06", "OpenAI, Improving Language Understanding with Unsupervised Learning (openai.com/index/language-unsupervised, 2018-06-11)"),
    "gpt2": Released("2019-02", _GPT2_STAGED),
    "gpt2-medium": Released("2019-05", _GPT2_STAGED),
    "gpt2-large": Released("2019-08", _GPT2_STAGED),
    "gpt2-xl": Released("2019-11", _GPT2_STAGED),
    "gpt-3-175b": Released("2020-05", "Brown et al., Language Models are Few-Shot Learners (arXiv:2005.14165, 2020-05-28)"),
    "gpt-neox-20b": Released("2022-02", "EleutherAI, Announcing GPT-NeoX-20B (blog.eleuther.ai/announcing-20b, 2022-02-02)"),
    "palm-540b": Released("2022-04", "Chowdhery et al., PaLM (arXiv:2204.02311, 2022-04-05)"),
    "bloom-176b": Released("2022-07", "BigScience, BLOOM release (huggingface.co/blog/bloom, 2022-07-12)"),
    "llama-2-7b": Released("2023-07", "Touvron et al., Llama 2 (arXiv:2307.09288, 2023-07-18)"),
    "mistral-7b": Released("2023-09", "Mistral AI, Mistral 7B (mistral.ai/news/announcing-mistral-7b, 2023-09-27)"),
    "mixtral-8x7b": Released("2023-12", "Mistral AI, Mixtral of experts (mistral.ai/news/mixtral-of-experts, 2023-12-11)"),
    "qwen1.5-moe-a2.7b": Released("2024-03", "Qwen team, Qwen1.5-MoE (qwenlm.github.io/blog/qwen-moe, 2024-03-28)"),
    "llama-3-8b": Released("2024-04", "Meta, Introducing Meta Llama 3 (ai.meta.com/blog/meta-llama-3, 2024-04-18)"),
    "llama-3-70b": Released("2024-04", "Meta, Introducing Meta Llama 3 (ai.meta.com/blog/meta-llama-3, 2024-04-18)"),
    "deepseek-v2": Released("2024-05", "DeepSeek-AI, DeepSeek-V2 (arXiv:2405.04434, 2024-05-07)"),
    "deepseek-v2-lite": Released("2024-05", "DeepSeek-AI, DeepSeek-V2-Lite model card (huggingface.co/deepseek-ai/DeepSeek-V2-Lite, 2024-05-16)"),
    "qwen2-57b-a14b": Released("2024-06", "Qwen team, Hello Qwen2 (qwenlm.github.io/blog/qwen2, 2024-06-07)"),
    "llama-3.1-405b": Released("2024-07", "Meta, Introducing Llama 3.1 (ai.meta.com/blog/meta-llama-3-1, 2024-07-23)"),
    "qwen2.5-7b": Released("2024-09", "Qwen team, Qwen2.5: A Party of Foundation Models (qwenlm.github.io/blog/qwen2.5, 2024-09-19)"),
    "qwen2.5-72b": Released("2024-09", "Qwen team, Qwen2.5: A Party of Foundation Models (qwenlm.github.io/blog/qwen2.5, 2024-09-19)"),
    "smollm2-135m": Released("2024-11", "Hugging Face, SmolLM2 model card (huggingface.co/HuggingFaceTB/SmolLM2-135M, 2024-11-01)"),
    "olmo-2-7b": Released("2024-11", "Ai2, OLMo 2 (allenai.org/blog/olmo2, 2024-11-26)"),
    "deepseek-v3": Released("2024-12", "DeepSeek-AI, DeepSeek-V3 Technical Report (arXiv:2412.19437, 2024-12-26)"),
    "gemma-3-1b": Released("2025-03", "Google, Introducing Gemma 3 (blog.google/technology/developers/gemma-3, 2025-03-12)"),
    "gemma-3-27b": Released("2025-03", "Google, Introducing Gemma 3 (blog.google/technology/developers/gemma-3, 2025-03-12)"),
    "mistral-small-3.1-24b": Released("2025-03", "Mistral AI, Mistral Small 3.1 (mistral.ai/news/mistral-small-3-1, 2025-03-17)"),
    "llama-4-scout": Released("2025-04", "Meta, The Llama 4 herd (ai.meta.com/blog/llama-4-multimodal-intelligence, 2025-04-05)"),
    "llama-4-maverick": Released("2025-04", "Meta, The Llama 4 herd (ai.meta.com/blog/llama-4-multimodal-intelligence, 2025-04-05)"),
    "qwen3-0.6b": Released("2025-04", _QWEN3),
    "qwen3-1.7b": Released("2025-04", _QWEN3),
    "qwen3-4b": Released("2025-04", _QWEN3),
    "qwen3-8b": Released("2025-04", _QWEN3),
    "qwen3-14b": Released("2025-04", _QWEN3),
    "qwen3-32b": Released("2025-04", _QWEN3),
    "qwen3-30b-a3b": Released("2025-04", _QWEN3),
    "qwen3-235b-a22b": Released("2025-04", _QWEN3),
    "smollm3-3b": Released("2025-07", "Hugging Face, SmolLM3 (huggingface.co/blog/smollm3, 2025-07-08)"),
    "kimi-k2": Released("2025-07", "Moonshot AI, Kimi K2 (moonshotai.github.io/Kimi-K2, 2025-07-11)"),
    "glm-4.5": Released("2025-07", "Zhipu AI, GLM-4.5 (z.ai/blog/glm-4.5, 2025-07-28)"),
    "gpt-oss-20b": Released("2025-08", "OpenAI, Introducing gpt-oss (openai.com/index/introducing-gpt-oss, 2025-08-05)"),
    "gpt-oss-120b": Released("2025-08", "OpenAI, Introducing gpt-oss (openai.com/index/introducing-gpt-oss, 2025-08-05)"),
    "grok-2.5": Released("2025-08", "xAI, Grok 2.5 weights (huggingface.co/xai-org/grok-2, 2025-08-23)"),
    "qwen3-next-80b-a3b": Released("2025-09", "Qwen team, Qwen3-Next-80B-A3B model card (huggingface.co/Qwen/Qwen3-Next-80B-A3B-Instruct, 2025-09-11)"),
}


def released(name: str) -> Released | None:
    """The release month of a preset, or None for a name not in the table (tiny or own configs)."""
    return RELEASED.get(name)
