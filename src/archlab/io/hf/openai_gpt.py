"""HF `openai-gpt` (GPT-1): post-norm blocks, learned positions, GPT-2's Conv1D layout.

modeling_openai.py: Block computes n = ln_1(x + attn(x)), h = ln_2(n + mlp(n)) (our
block="post": the residual stream itself is normalised, and there is no final norm);
c_attn / c_proj / c_fc are Conv1D, weights stored (in, out), q | k | v fused in c_attn as in
GPT-2. Attention always scales by 1/sqrt(head_dim) (Block(scale=True)).
"""

from __future__ import annotations

from ...config import AttentionConfig, FFNConfig, ModelConfig, NormConfig
from ..mapping import Rule, rename
from .core import CheckpointError, HFFamily, base_model_alternatives, get_field, register
from .gpt2 import _fuse_qkv, _split_qkv, _t  # the same Conv1D layout as GPT-2

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
    return ModelConfig(
        name=str(hf.get("model_type")),
        family="openai_gpt",
        vocab_size=get_field(hf, "vocab_size"),
        d_model=d,
        n_layers=get_field(hf, "n_layer"),
        max_seq_len=get_field(hf, "n_positions"),
        position="learned",
        rope=None,
        block="post",
        norm=NormConfig("layernorm", eps=get_field(hf, "layer_norm_epsilon", 1e-5), bias=True),
        attention=AttentionConfig(n_heads=n_heads, qkv_bias=True, out_bias=True),
        ffn=FFNConfig(hidden=4 * d, kind="mlp", activation=_AFN[afn], bias=True),
        tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
    )


def _openai_gpt_rules(cfg: ModelConfig, hf: dict) -> list[Rule]:
    p = "transformer.h.{i}."
    rules = [
        rename("tok_emb.weight", "transformer.tokens_embed.weight"),
        rename("pos_emb.weight", "transformer.positions_embed.weight"),
        rename("head.weight", "lm_head.weight"),
    ]
    # ln_1 follows the attention's residual add, ln_2 the MLP's: our post-norm block's attn_norm / ffn_norm
    for ours, theirs in (("attn_norm", "ln_1"), ("ffn_norm", "ln_2")):
        for w in ("weight", "bias"):
            rules.append(rename(f"layers.{{i}}.{ours}.{w}", f"{p}{theirs}.{w}"))
    for w in ("weight", "bias"):
        rules.append(Rule(tuple(f"layers.{{i}}.attn.{n}.{w}" for n in ("wq", "wk", "wv")), (f"{p}attn.c_attn.{w}",), _split_qkv, _fuse_qkv))
    for ours, theirs in (("attn.wo", "attn.c_proj"), ("ffn.up", "mlp.c_fc"), ("ffn.down", "mlp.c_proj")):
        rules.append(rename(f"layers.{{i}}.{ours}.weight", f"{p}{theirs}.weight", _t, _t))
        rules.append(rename(f"layers.{{i}}.{ours}.bias", f"{p}{theirs}.bias"))
    return base_model_alternatives(rules)


# attn.bias: the causal-mask buffer older checkpoints saved
register(HFFamily(("openai-gpt",), _openai_gpt_config, _openai_gpt_rules, ignore=(r".*\.attn\.bias$",)))
