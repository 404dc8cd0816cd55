"""GGUF architectures -> archlab: for each `general.architecture`, how its metadata reads as a
ModelConfig and which rules (io/mapping.py) pair llama.cpp's tensor names with ours.

llama.cpp's converter stores the query/key rows of each head in adjacent-pair RoPE order for
the llama architecture only (LlamaModel.permute); our model uses HF's rotate-half order, so its
rules permute the rows back on load. The architectures whose HF family archlab reads (qwen2,
qwen3, gemma3, ...) are read through it (hf_backed.py, families.py, qwen2.py, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ...model_config import AttentionConfig, ConfigError, FFNConfig, ModelConfig, NormConfig
from ...errors import CheckpointError
from ..layouts import rope_pairs_to_halves
from ..mapping import Rule, rename
from .deepseek2 import DEEPSEEK2
from .families import HF_BACKED, MIXTRAL
from .glm4_moe import GLM4_MOE
from .gpt_oss import GPT_OSS
from .llama4 import LLAMA4
from .qwen2 import QWEN2, QWEN2_MOE
from .qwen3_next import QWEN3_NEXT
from .metadata import float_value, int_value, rope, vocab_size
from .reader import GGUFFile

__all__ = ["GGUFArch", "ARCHITECTURES", "architecture", "read_config"]


def _llama_config(g: GGUFFile) -> ModelConfig:
    d = int_value(g, "embedding_length")
    n_heads = int_value(g, "attention.head_count")
    head_dim = int_value(g, "attention.key_length", None) or (d // n_heads if n_heads else None)
    value_dim = int_value(g, "attention.value_length", head_dim)
    if value_dim != head_dim:
        raise CheckpointError(f"{g.path}: {g.architecture}.attention.value_length={value_dim} differs from key_length={head_dim}; not supported")
    ctx = int_value(g, "context_length")
    return ModelConfig(
        name=g.path.stem,
        family="llama",
        source=str(g.path),
        vocab_size=vocab_size(g),
        d_model=d,
        n_layers=int_value(g, "block_count"),
        max_seq_len=ctx,
        norm=NormConfig("rmsnorm", eps=float_value(g, "attention.layer_norm_rms_epsilon", 1e-5)),
        position=rope(g, head_dim, ctx),
        attention=AttentionConfig(
            n_heads=n_heads,
            n_kv_heads=int_value(g, "attention.head_count_kv", n_heads),
            head_dim=head_dim,
            # llama.cpp's llama graph takes optional biases when the tensors are present.
            qkv_bias="blk.0.attn_q.bias" in g,
            out_bias="blk.0.attn_output.bias" in g,
        ),
        ffn=FFNConfig(hidden=int_value(g, "feed_forward_length"), kind="glu", activation="silu", bias="blk.0.ffn_up.bias" in g),
        # llama.cpp reuses token_embd for the output when the file has no output.weight.
        tie_embeddings="output.weight" not in g,
    )


# ---- tensor names and layouts ---------------------------------------------------------------

@dataclass(frozen=True)
class GGUFArch:
    read_config: Callable[[GGUFFile], ModelConfig]
    rules: Callable[[ModelConfig, GGUFFile], list[Rule]]
    # regular expressions of GGUF tensors consumed while reading the config (not model weights)
    ignore: tuple[str, ...] = ()
    # ... and of tensors the file holds beside the model, by its metadata (GLM-4.5's MTP layers)
    extra_ignore: Callable[[GGUFFile], tuple[str, ...]] = lambda g: ()


def _llama_rules(cfg: ModelConfig, g: GGUFFile) -> list[Rule]:
    # llama.cpp's converter (convert_hf_to_gguf.py, LlamaModel.permute) pairs each head's RoPE rows
    q = rope_pairs_to_halves(lambda c: c.resolved_attention.n_heads)
    k = rope_pairs_to_halves(lambda c: c.resolved_attention.n_kv_heads)
    rules = [
        rename("tok_emb.weight", "token_embd.weight"),
        rename("norm.weight", "output_norm.weight"),
        rename("head.weight", "output.weight"),
        rename("layers.{i}.attn_norm.weight", "blk.{i}.attn_norm.weight"),
        rename("layers.{i}.ffn_norm.weight", "blk.{i}.ffn_norm.weight"),
    ]
    for w in ("weight", "bias"):
        rules += [
            rename(f"layers.{{i}}.attn.wq.{w}", f"blk.{{i}}.attn_q.{w}", q),
            rename(f"layers.{{i}}.attn.wk.{w}", f"blk.{{i}}.attn_k.{w}", k),
            rename(f"layers.{{i}}.attn.wv.{w}", f"blk.{{i}}.attn_v.{w}"),
            rename(f"layers.{{i}}.attn.wo.{w}", f"blk.{{i}}.attn_output.{w}"),
        ]
        for ours, theirs in (("gate", "ffn_gate"), ("up", "ffn_up"), ("down", "ffn_down")):
            rules.append(rename(f"layers.{{i}}.ffn.{ours}.{w}", f"blk.{{i}}.{theirs}.{w}"))
    return rules


def _has_experts(g: GGUFFile) -> bool:
    return bool(int_value(g, "expert_count", 0))


def _llama_or_mixtral_config(g: GGUFFile) -> ModelConfig:
    return MIXTRAL.read_config(g) if _has_experts(g) else _llama_config(g)


def _llama_or_mixtral_rules(cfg: ModelConfig, g: GGUFFile) -> list[Rule]:
    return MIXTRAL.rules(cfg, g) if _has_experts(g) else _llama_rules(cfg, g)


# general.architecture -> how to read it
ARCHITECTURES: dict[str, GGUFArch] = {
    # Mixtral files say `llama` too, with llama.expert_count
    "llama": GGUFArch(_llama_or_mixtral_config, _llama_or_mixtral_rules, ignore=(r"^rope_freqs\.weight$",)),
    **{name: GGUFArch(a.read_config, a.rules, extra_ignore=a.ignore)
       for name, a in {**HF_BACKED, "deepseek2": DEEPSEEK2, "gpt-oss": GPT_OSS, "glm4moe": GLM4_MOE,
                              "qwen3next": QWEN3_NEXT, "llama4": LLAMA4, "qwen2": QWEN2, "qwen2moe": QWEN2_MOE}.items()},
}


def architecture(g: GGUFFile) -> GGUFArch:
    arch = g.architecture
    if arch not in ARCHITECTURES:
        raise CheckpointError(
            f"{g.path}: general.architecture {arch!r} is not supported; supported: {', '.join(sorted(ARCHITECTURES))}"
        )
    return ARCHITECTURES[arch]


def read_config(g: GGUFFile, arch: GGUFArch) -> ModelConfig:
    try:
        return arch.read_config(g)
    except ConfigError as e:
        raise CheckpointError(f"{g.path}: metadata describes an invalid model: {e}") from None
