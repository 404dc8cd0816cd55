"""GGUF architectures read through archlab's HF families (io/hf): the metadata re-spelt as the
config.json llama.cpp's converter read it from, and the HF family's tensor rules re-pointed at
llama.cpp's tensor names, so one family module says what the model is and how its tensors
become ours, whichever format they come in.

The tensor names are llama.cpp's (gguf-py gguf/constants.py TENSOR_NAMES, and
gguf/tensor_mapping.py for which HF tensor each is); the layout changes are those of
convert_hf_to_gguf.py: experts stacked into one (E, out, in) tensor per projection, Gemma's
and Qwen3-Next's norm weights stored as 1 + w (`norm_shift`), fused projections split apart
(`special`), and, for the classes derived from LlamaModel (smollm3, Mixtral), each head's Q/K
rows permuted into adjacent RoPE pairs (`unpermute_qk`). The others keep the HF checkpoint's rows.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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


# how llama.cpp's tensors make one HF tensor: (tensors, config.json) -> tensor
Maker = Callable[[Tensors, dict], torch.Tensor]
# a layout change on load: (llama.cpp's tensor, the config.json) -> HF's tensor
Transform = Callable[[torch.Tensor, dict], torch.Tensor]
# llama.cpp's tensor names (after blk.{i}.) and how they make the HF tensor
Layout = tuple[tuple[str, ...], Maker]


def _one(ts: Tensors, hf: dict) -> torch.Tensor:
    return ts[0]


def _cat_rows(ts: Tensors, hf: dict) -> torch.Tensor:
    # HF v5's fused experts: gate_up_proj (E, 2F, D) holds gate's rows first, then up's
    return torch.cat(ts, dim=1)


# HF tensors (under the layer prefix) that llama.cpp stores in another shape, each with the
# layouts a file may hold, in the order tried. Experts: convert_hf_to_gguf.py stacks each
# projection's per-expert matrices along a new first dimension (ffn_{gate,up,down}_exps), which
# are HF v5's fused tensors.
SPECIAL: dict[str, list[Layout]] = {
    # or fused as one (E, 2F, D), gate rows first, where the converter's fuse_gate_up_exps is on
    # (TextModel.modify_tensors; gguf-py MODEL_TENSOR.FFN_GATE_UP_EXP)
    "mlp.experts.gate_up_proj": [(("ffn_gate_exps.weight", "ffn_up_exps.weight"), _cat_rows),
                                 (("ffn_gate_up_exps.weight",), _one)],
    "mlp.experts.down_proj": [(("ffn_down_exps.weight",), _one)],
}


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
    modules under `prefix` (weight and bias alike), `special` tensors under `prefix` stored in
    another shape, `transforms` by HF module."""

    layer: dict[str, str] = field(default_factory=lambda: dict(LAYER))
    top: dict[str, str] = field(default_factory=lambda: dict(TOP))
    prefix: str = "model.layers.{i}."
    special: dict[str, list[Layout]] = field(default_factory=lambda: dict(SPECIAL))
    transforms: dict[str, Transform] = field(default_factory=dict)
    # convert_hf_to_gguf.py adds this to every norm weight (Gemma3Model.norm_shift = 1.0: its
    # RMSNorm scales by 1 + w and llama.cpp's by w); loading subtracts it again
    norm_shift: float = 0.0
    unshifted: tuple[str, ...] = ()  # HF modules whose norm weight the converter leaves as it is

    def of(self, hf_template: str) -> list[Layout]:
        """llama.cpp's layouts of one HF template (with {i}, or a layer's own index where a
        family's rules differ per layer); empty when llama.cpp has none."""
        module = None
        layer = re.match(re.escape(self.prefix).replace(r"\{i\}", r"(\{i\}|\d+)"), hf_template)
        if hf_template in self.top:
            layouts = [((self.top[hf_template],), _one)]
        elif layer is not None:
            rest = hf_template[layer.end():]
            if rest in self.special:
                layouts = self.special[rest]
            else:
                module, _, kind = rest.rpartition(".")
                if module not in self.layer:
                    return []
                layouts = [((f"{self.layer[module]}.{kind}",), _one)]
            layouts = [(tuple(f"blk.{layer[1]}.{n}" for n in names), make) for names, make in layouts]
            module = module or rest
        else:
            return []
        return [(names, self._adjusted(make, module, hf_template)) for names, make in layouts]

    def _adjusted(self, make: Maker, module: str | None, hf_template: str) -> Maker:
        if module in self.transforms:
            transform, inner = self.transforms[module], make
            make = lambda ts, hf: transform(inner(ts, hf), hf)  # noqa: E731
        if self.norm_shift and hf_template.endswith("norm.weight") and module not in self.unshifted:
            shift, inner_ = self.norm_shift, make
            make = lambda ts, hf: inner_(ts, hf) - shift  # noqa: E731
        return make


def _rule(rule: Rule, parts: list[Layout], hf: dict) -> Rule:
    def load(ts: Tensors, cfg: ModelConfig) -> Tensors:
        hf_tensors, at = [], 0
        for gguf_names, make in parts:
            hf_tensors.append(make(ts[at:at + len(gguf_names)], hf))
            at += len(gguf_names)
        return rule.load(hf_tensors, cfg)

    return Rule(rule.ours, tuple(n for gguf_names, _ in parts for n in gguf_names), load)


def _translate(rule: Rule, names: Names, hf: dict) -> Rule | None:
    options = [names.of(t) for t in rule.theirs]
    if not all(options):
        # e.g. per-expert HF names: llama.cpp stores the fused alternative's layout
        return _translate(rule.alternative, names, hf) if rule.alternative is not None else None
    if sum(len(o) > 1 for o in options) > 1:
        raise RuntimeError(f"GGUF rule for {rule.ours}: more than one tensor with several layouts")
    # one rule per layout of the tensor that has several (e.g. MLA's kv_b), each the next's alternative
    varying = next((n for n, o in enumerate(options) if len(o) > 1), 0)
    made = None
    for layout in reversed(options[varying]):
        parts = [layout if n == varying else o[0] for n, o in enumerate(options)]
        r = _rule(rule, parts, hf)
        made = r if made is None else replace(r, alternative=made)
    return made


def translate_rules(rules: list[Rule], names: Names, hf: dict) -> list[Rule]:
    """The HF family's rules, reading llama.cpp's tensors. A rule with no llama.cpp counterpart
    is dropped: a model that needs its tensor is then refused naming that tensor of ours."""
    return [r for r in (_translate(r, names, hf) for r in rules) if r is not None]


@dataclass(frozen=True)
class HFBacked:
    """A GGUF architecture read through an HF family: `config_json(g)` gives the config.json
    (its model_type picks the family), `names` llama.cpp's tensor names."""

    config_json: Callable[[GGUFFile], dict[str, Any]]
    names: Names = field(default_factory=Names)
    # regular expressions of tensors the file holds beside the model (e.g. MTP layers)
    ignore: Callable[[GGUFFile], tuple[str, ...]] = lambda g: ()

    @staticmethod
    def family(hf: dict):
        from ..hf import FAMILIES

        return FAMILIES[hf["model_type"]]

    def read_config(self, g: GGUFFile) -> ModelConfig:
        hf = self.config_json(g)
        from ..hf.values import check_values

        try:
            check_values(hf)  # the same checks as a config.json's, before the family reader
            cfg = self.family(hf).read_config(hf)
        except (CheckpointError, ConfigError) as e:
            # the HF reader speaks of config.json; here the fields come from the GGUF metadata
            msg = str(e).removeprefix("config.json: ")
            raise CheckpointError(
                f"{g.path}: the metadata, read as an HF {hf['model_type']} config.json, is not supported: {msg}"
            ) from None
        except (TypeError, KeyError, AttributeError, ValueError, OverflowError, ZeroDivisionError, RecursionError) as e:
            raise CheckpointError(f"{g.path}: metadata a {hf['model_type']} reader cannot use ({type(e).__name__}: {e})") from None
        return cfg.replace(name=g.path.stem, source=str(g.path))

    def rules(self, cfg: ModelConfig, g: GGUFFile) -> list[Rule]:
        with warnings.catch_warnings():  # read_config has said what there is to say about the metadata
            warnings.simplefilter("ignore")
            hf = self.config_json(g)
        return translate_rules(self.family(hf).rules(cfg, hf), self.names, hf)
