"""HF `openai-gpt` (GPT-1): post-norm blocks, learned positions, GPT-2's Conv1D layout.

modeling_openai.py: Block computes n = ln_1(x + attn(x)), h = ln_2(n + mlp(n)) (our
block="post": the residual stream itself is normalised, and there is no final norm);
c_attn / c_proj / c_fc are Conv1D, weights stored (in, out), q | k | v fused in c_attn as in
GPT-2. Attention always scales by 1/sqrt(head_dim) (Block(scale=True)).
"""

from __future__ import annotations

from ...model_config import ModelConfig
from ..mapping import Rule, rename
from .core import CheckpointError, HFFamily, base_model_alternatives, get_field, register
from .gpt_like import block_rules, gpt_like_config

# modeling_openai.py ACT_FNS: its "gelu" is gelu_new, GELU's tanh approximation (as OpenAI's
# original finetune-transformer-lm code computed it), not the exact erf form.
_AFN = {"gelu": "gelu_tanh", "relu": "relu", "silu": "silu", "swish": "silu"}


def _openai_gpt_config(hf: dict) -> ModelConfig:
    afn = get_field(hf, "afn", "gelu")
    if afn not in _AFN:
        raise CheckpointError(f"config.json: afn={afn!r} is not supported (modeling_openai.py accepts {sorted(_AFN)})")
    d = get_field(hf, "n_embd")
    n_heads = get_field(hf, "n_head")
    if d % n_heads:
        raise CheckpointError(f"config.json: n_embd={d} is not divisible by n_head={n_heads}")
    return gpt_like_config(hf, family="openai_gpt", activation=_AFN[afn], block="post")


def _openai_gpt_rules(cfg: ModelConfig, hf: dict) -> list[Rule]:
    rules = [
        rename("tok_emb.weight", "transformer.tokens_embed.weight"),
        rename("pos_emb.weight", "transformer.positions_embed.weight"),
        rename("head.weight", "lm_head.weight"),
    ]
    # GPT-2's block tensors; ln_1 follows the attention's residual add, ln_2 the MLP's: our
    # post-norm block's attn_norm / ffn_norm
    return base_model_alternatives(rules + block_rules())


# attn.bias: the causal-mask buffer older checkpoints saved
register(HFFamily(("openai-gpt",), _openai_gpt_config, _openai_gpt_rules, ignore=(r".*\.attn\.bias$",)))
