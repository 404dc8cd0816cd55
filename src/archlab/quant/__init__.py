"""Packed weights and the matmuls that use them (GGUF blocks kept as they are, int8/int4).

    packed.py   PackedWeight: integers + float32 scales (+ mins); quantize_int8 / quantize_int4
    gguf.py     llama.cpp's Q8_0/Q4_0/Q4_1/Q4_K/Q5_K/Q6_K blocks -> PackedWeight, values exact
    kernels.py  x @ W.T against a PackedWeight, kernels chosen by name
    modules.py  QuantLinear / QuantEmbedding in place of nn.Linear / nn.Embedding; set_kernel
    convert.py  quantize_model(model, "int8" | "int4"); the module swap
"""

from .convert import QUANT_CHOICES, SCHEMES, quantize_model
from . import native
from .kernels import KERNELS, packed_linear
from .modules import QuantEmbedding, QuantLinear, set_kernel
from .packed import PackedWeight, quantize_int4, quantize_int8

__all__ = ["PackedWeight", "quantize_int8", "quantize_int4", "QuantLinear", "QuantEmbedding", "set_kernel",
           "quantize_model", "packed_linear", "KERNELS", "SCHEMES", "QUANT_CHOICES"]
