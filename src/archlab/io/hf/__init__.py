"""HF transformers format <-> archlab, per model_type.

Each family is an `HFFamily` (in a module of its own): how to read its config.json into a
ModelConfig, and a list of `Rule`s pairing our tensor names with the checkpoint's (with the
layout changes in between: GPT-2's transposed Conv1D weights and fused qkv, DeepSeek's
adjacent-pair RoPE rows, per-expert tensors stacked into one). Loading checks the whole
checkpoint against what the config says the model holds and reports every missing,
unexpected or wrongly shaped tensor at once; nothing is loaded partially.

Saving runs the same rules backwards. The model_type is chosen from the config's parts, and a
config no family expresses exactly is refused with what each family lacks: a checkpoint that
HF would load as a different model is worse than none. The written config.json must read back
as the model's own config, and the directory appears complete or not at all.
"""

from ..mapping import Rule, rename
from .core import FAMILIES, HFFamily, convert_state, load_hf, read_config, register
from .save import DEFAULT_MAX_SHARD_BYTES, choose_family, hf_config_json, save_hf

# Importing a family module registers it; the save order is this order.
from . import gpt2, llama, deepseek  # noqa: E402,F401
from . import mistral, qwen3, olmo2, gemma3, smollm3, gpt_oss, glm4_moe, llama4, qwen3_next  # noqa: E402,F401
from . import bloom, gpt_neox, openai_gpt  # noqa: E402,F401
from . import qwen2  # noqa: E402,F401
# their saving sides; the save order continues in the order these enable it
# (qwen2 before glm4_moe: both express q/k/v biases without an o bias, and a Qwen2.5 is a qwen2)
from . import llama_like_save, qwen2_save, moe_save, gpt_like_save  # noqa: E402,F401

__all__ = [
    "DEFAULT_MAX_SHARD_BYTES", "FAMILIES", "HFFamily", "Rule", "choose_family", "convert_state",
    "hf_config_json", "load_hf", "read_config", "register", "rename", "save_hf",
]
