"""Layout changes between a checkpoint's tensors and ours that more than one format (or family)
needs, written once as load/save transforms of mapping rules."""

from __future__ import annotations

from collections.abc import Callable

from ..model_config import ModelConfig
from ..nn.position import interleaved_to_halves
from .mapping import Tensors


def rope_pairs_to_halves(n_heads: Callable[[ModelConfig], int]) -> Callable[[Tensors, ModelConfig], Tensors]:
    """Query/key projection rows whose RoPE pairs are adjacent features of each head (2j, 2j+1):
    llama.cpp's converter permutes HF's rows that way (convert_hf_to_gguf.py, LlamaModel.permute),
    and Llama 4 rotates in complex form (view_as_complex) -> our rotate-half rows (j, j + hd/2).
    `n_heads` picks the projection's head count (queries or key/value heads)."""

    def load(ts: Tensors, cfg: ModelConfig) -> Tensors:
        w, hd = ts[0], cfg.resolved_attention.head_dim
        perm = interleaved_to_halves(hd)
        return [w.reshape(n_heads(cfg), hd, *w.shape[1:])[:, perm].reshape(w.shape).contiguous()]

    return load


def rope_halves_to_pairs(n_heads: Callable[[ModelConfig], int]) -> Callable[[Tensors, ModelConfig], Tensors]:
    """rope_pairs_to_halves' inverse: our rotate-half rows -> adjacent-pair rows (saving)."""

    def save(ts: Tensors, cfg: ModelConfig) -> Tensors:
        w, hd = ts[0], cfg.resolved_attention.head_dim
        perm = interleaved_to_halves(hd).argsort()
        return [w.reshape(n_heads(cfg), hd, *w.shape[1:])[:, perm].reshape(w.shape).contiguous()]

    return save


def transpose_experts(ts: Tensors, cfg: ModelConfig) -> Tensors:
    """Stacked expert matrices stored (E, in, out), applied as x @ w[e], <-> ours (E, out, in)."""
    return [ts[0].transpose(1, 2).contiguous()]
