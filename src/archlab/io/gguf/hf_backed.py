"""GGUF architectures read through archlab's HF families (io/hf): the metadata re-spelt as the
config.json llama.cpp's converter read it from, and the HF family's tensor rules re-pointed at
llama.cpp's tensor names, so one family module says what the model is and how its tensors
become ours, whichever format they come in.

The tensor names are llama.cpp's (gguf-py gguf/constants.py TENSOR_NAMES, and
gguf/tensor_mapping.py for which HF tensor each is); the layout changes are those of
convert_hf_to_gguf.py: experts stacked into one (E, out, in) tensor per projection, Gemma's
norm weights stored as 1 + w (Gemma3Model.modify_tensors, `norm_shift`). These architectures
keep HF's rotate-half Q/K rows (only llama.cpp's LlamaModel permutes them; arch.py reads those).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ...errors import CheckpointError
from ...model_config import ConfigError, ModelConfig
from ..mapping import Rule, Tensors
from .reader import GGUFFile

__all__ = ["HFBacked", "translate_rules"]

# HF decoder-layer module (under model.layers.{i}.) -> llama.cpp's tensor, in the Llama layout.
LAYER = {
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",  # Llama: the norm before the MLP
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    "mlp.gate": "ffn_gate_inp",  # the MoE router
    "mlp.shared_expert.gate_proj": "ffn_gate_shexp", "mlp.shared_expert.up_proj": "ffn_up_shexp",
    "mlp.shared_expert.down_proj": "ffn_down_shexp",
}
# Gemma 2/3 and OLMo 2 put post_attention_layernorm *after* attention (tensor_mapping.py
# MODEL_TENSOR.ATTN_POST_NORM), and name the norms around the MLP explicitly.
SANDWICH = {
    "post_attention_layernorm": "post_attention_norm",
    "pre_feedforward_layernorm": "ffn_norm",
    "post_feedforward_layernorm": "post_ffw_norm",
}
TOP = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}


def _cat_rows(ts: Tensors) -> torch.Tensor:
    # HF v5's fused experts: gate_up_proj (E, 2F, D) holds gate's rows first, then up's
    return torch.cat(ts, dim=1)


def _one(ts: Tensors) -> torch.Tensor:
    return ts[0]


# HF v5's fused expert tensors <- llama.cpp's stacked ones (convert_hf_to_gguf.py stacks each
# projection's per-expert matrices along a new first dimension: ffn_{gate,up,down}_exps).
FUSED = {
    "mlp.experts.gate_up_proj": (("ffn_gate_exps.weight", "ffn_up_exps.weight"), _cat_rows),
    "mlp.experts.down_proj": (("ffn_down_exps.weight",), _one),
}


# a layout change on load: (llama.cpp's tensor, the config.json) -> HF's tensor
Transform = Callable[[torch.Tensor, dict], torch.Tensor]


def unpermute_qk(heads_key: str) -> Transform:
    """llama.cpp's LlamaModel.permute undone: each head's rows from adjacent RoPE pairs back to
    HF's rotate-half halves (HF's own LlamaTensorProcessor._reverse_permute_weights)."""

    def load(t: torch.Tensor, hf: dict) -> torch.Tensor:
        n = hf[heads_key]
        return t.reshape(n, t.shape[0] // n // 2, 2, *t.shape[1:]).transpose(1, 2).reshape(t.shape)

    return load


@dataclass(frozen=True)
class Names:
    """HF checkpoint names -> llama.cpp's, for one architecture: `top` whole names, `layer`
    modules under `prefix` (weight and bias alike), `transforms` by HF module."""

    layer: dict[str, str] = field(default_factory=lambda: dict(LAYER))
    top: dict[str, str] = field(default_factory=lambda: dict(TOP))
    prefix: str = "model.layers.{i}."
    transforms: dict[str, Transform] = field(default_factory=dict)
    # convert_hf_to_gguf.py adds this to every norm weight (Gemma3Model.norm_shift = 1.0: its
    # RMSNorm scales by 1 + w and llama.cpp's by w); loading subtracts it again
    norm_shift: float = 0.0

    def of(self, hf_template: str, hf: dict) -> tuple[tuple[str, ...], Callable[[Tensors], torch.Tensor]] | None:
        """llama.cpp's tensors for one HF template (with {i}), and how they make the HF tensor."""
        module = None
        if hf_template in self.top:
            names, make = (self.top[hf_template],), _one
        elif hf_template.startswith(self.prefix):
            rest = hf_template[len(self.prefix):]
            if rest in FUSED:
                names, make = FUSED[rest]
            else:
                module, _, kind = rest.rpartition(".")
                if module not in self.layer:
                    return None
                names, make = (f"{self.layer[module]}.{kind}",), _one
            names = tuple(f"blk.{{i}}.{n}" for n in names)
        else:
            return None
        if module in self.transforms:
            transform, inner = self.transforms[module], make
            make = lambda ts: transform(inner(ts), hf)  # noqa: E731
        if self.norm_shift and hf_template.endswith("norm.weight"):
            shift, inner_ = self.norm_shift, make
            make = lambda ts: inner_(ts) - shift  # noqa: E731
        return names, make


def _translate(rule: Rule, names: Names, hf: dict) -> Rule | None:
    parts = [names.of(t, hf) for t in rule.theirs]
    if any(p is None for p in parts):
        # e.g. per-expert HF names: llama.cpp stores the fused alternative's layout
        return _translate(rule.alternative, names, hf) if rule.alternative is not None else None
    theirs = tuple(n for gguf_names, _ in parts for n in gguf_names)

    def load(ts: Tensors, cfg: ModelConfig) -> Tensors:
        hf_tensors, at = [], 0
        for gguf_names, make in parts:
            hf_tensors.append(make(ts[at:at + len(gguf_names)]))
            at += len(gguf_names)
        return rule.load(hf_tensors, cfg)

    return Rule(rule.ours, theirs, load)


def translate_rules(rules: list[Rule], names: Names, hf: dict) -> list[Rule]:
    """The HF family's rules, reading llama.cpp's tensors. A rule with no llama.cpp counterpart
    is dropped: a model that needs its tensor is then refused naming that tensor of ours."""
    return [r for r in (_translate(r, names, hf) for r in rules) if r is not None]


@dataclass(frozen=True)
class HFBacked:
    """A GGUF architecture read as HF `model_type`: `config_json(g)` gives the config.json."""

    model_type: str
    config_json: Callable[[GGUFFile], dict[str, Any]]
    names: Names = field(default_factory=Names)

    def family(self):
        from ..hf import FAMILIES

        return FAMILIES[self.model_type]

    def read_config(self, g: GGUFFile) -> ModelConfig:
        hf = self.config_json(g)
        try:
            cfg = self.family().read_config(hf)
        except (CheckpointError, ConfigError) as e:
            # the HF reader speaks of config.json; here the fields come from the GGUF metadata
            msg = str(e).removeprefix("config.json: ")
            raise CheckpointError(f"{g.path}: the metadata, read as an HF {self.model_type} config.json, is not supported: {msg}") from None
        return cfg.replace(name=g.path.stem, source=str(g.path))

    def rules(self, cfg: ModelConfig, g: GGUFFile) -> list[Rule]:
        with warnings.catch_warnings():  # read_config has said what there is to say about the metadata
            warnings.simplefilter("ignore")
            hf = self.config_json(g)
        return translate_rules(self.family().rules(cfg, hf), self.names, hf)
