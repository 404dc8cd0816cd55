"""Whole models to packed weights: quantize a float model, or keep a GGUF file's own blocks.

quantize_model(model, "int8" | "int4") replaces every nn.Linear (and the token embedding) with
a packed module: "int8" symmetric per output channel; "int4" asymmetric 4-bit in blocks of 32
columns (llama.cpp's Q4_1 layout), with the embedding at int8 per channel, as llama.cpp's 4-bit
files keep token_embd at 8 bits or more. Expert weights stored stacked (nn/moe.py) stay float."""

from __future__ import annotations

import torch
from torch import nn

from .modules import QuantEmbedding, QuantLinear, _Packed
from .packed import PackedWeight, quantize_int4, quantize_int8

__all__ = ["SCHEMES", "QUANT_CHOICES", "check_quant", "quantize_model", "packed_targets", "install_packed"]

SCHEMES = ("int8", "int4")
QUANT_CHOICES = (None, "keep") + SCHEMES


def check_quant(quant) -> None:
    if quant not in QUANT_CHOICES:
        raise ValueError(f"quant={quant!r} is not a quantization; expected None (float weights), 'keep' (a GGUF "
                         f"file's own quantized blocks, kept packed), 'int8' or 'int4'")


def packed_targets(model: nn.Module) -> dict[str, type]:
    """Our weight names that may be packed -> the packed module class that replaces their module."""
    out: dict[str, type] = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            out[f"{name}.weight"] = QuantLinear
        elif isinstance(m, nn.Embedding) and name == "tok_emb":
            out[f"{name}.weight"] = QuantEmbedding
    return out


def install_packed(model: nn.Module, packed: dict[str, PackedWeight], dtype: torch.dtype) -> nn.Module:
    """Replace the modules of the weights named in `packed` with packed modules (biases kept)."""
    targets = packed_targets(model)
    for wname, pw in packed.items():
        mname = wname.rsplit(".", 1)[0]
        parent_name, _, attr = mname.rpartition(".")
        parent = model.get_submodule(parent_name)
        old = getattr(parent, attr)
        if targets.get(wname) is QuantLinear:
            if tuple(old.weight.shape) != pw.shape:
                raise ValueError(f"{wname}: packed shape {pw.shape} differs from the module's {tuple(old.weight.shape)}")
            new = QuantLinear(pw, bias=old.bias)
        elif targets.get(wname) is QuantEmbedding:
            new = QuantEmbedding(pw)
        else:
            raise ValueError(f"{wname} is not the weight of an nn.Linear or of the token embedding; it cannot be packed")
        new.dtype = dtype
        setattr(parent, attr, new)
    return model


@torch.no_grad()
def quantize_model(model: nn.Module, scheme: str) -> nn.Module:
    """`model` with its linear weights (and token embedding) packed by `scheme`, in place."""
    if scheme not in SCHEMES:
        raise ValueError(f"quantization scheme {scheme!r} is unknown; expected one of {', '.join(SCHEMES)}")
    if any(isinstance(m, _Packed) for m in model.modules()):
        raise ValueError("the model already holds packed weights; quantize its float original instead")
    packed = {}
    dtype = torch.float32
    for wname, cls in packed_targets(model).items():
        w = model.get_parameter(wname)
        dtype = w.dtype
        if scheme == "int4" and cls is QuantLinear and w.shape[1] % 32 == 0:
            packed[wname] = quantize_int4(w, 32)
        else:  # int8 per channel (and the embedding of int4, and a row width that 32 does not divide)
            packed[wname] = quantize_int8(w)
    return install_packed(model, packed, dtype)
