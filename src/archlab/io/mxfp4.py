"""MXFP4 (OCP Microscaling Formats v1.0: 4-bit FP4 E2M1 elements sharing one 8-bit E8M0 power
of two per block of 32), as OpenAI's GPT-OSS release stores its experts' weights.

Layout of a (rows, cols) matrix, per transformers/integrations/mxfp4.py
(_convert_moe_packed_tensors) and OpenAI's gpt_oss/torch/weights.py:
  X_blocks  uint8 (..., rows, cols / 32, 16): 32 4-bit codes per block, two per byte, the
            element at even column 2j in the low nibble, 2j + 1 in the high one
  X_scales  uint8 (..., rows, cols / 32): the block's exponent biased by 127, value 2**(s - 127)
  code      an index into FP4_E2M1 (sign bit 3, then 2 exponent bits and 1 mantissa bit)
Every dequantized value is an FP4 value times a power of two: exact in float32 and bfloat16.
"""

from __future__ import annotations

import torch

# E2M1 code -> value: transformers/integrations/mxfp4.py FP4_VALUES (OCP MX v1.0, table 5)
FP4_E2M1 = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0)
BLOCK = 32  # elements per scale
SCALE_BIAS = 127  # E8M0: 2**(s - 127)


def packed_shapes(lead: tuple[int, ...], rows: int, cols: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The shapes of X_blocks and X_scales that hold a (*lead, rows, cols) matrix."""
    return (*lead, rows, cols // BLOCK, BLOCK // 2), (*lead, rows, cols // BLOCK)


def dequantize(blocks: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """X_blocks (..., G, 16), X_scales (..., G) -> float32 (..., G * 32). On the meta device,
    only the shape (checkpoint checks run the conversion without reading data)."""
    *lead, G, half = blocks.shape
    if blocks.is_meta or scales.is_meta:
        return torch.empty(*lead, G * 2 * half, device="meta")
    if blocks.dim() > 3:  # one expert's (rows, G, 16) at a time: the temporaries stay small
        return torch.stack([dequantize(b, s) for b, s in zip(blocks, scales)])
    lut = torch.tensor(FP4_E2M1, dtype=torch.float32, device=blocks.device)
    byte = torch.arange(256, device=blocks.device)
    pairs = torch.stack((lut[byte & 0x0F], lut[byte >> 4]), dim=-1)  # byte -> its two values, low nibble first
    values = pairs[blocks.long()].flatten(-3)  # (..., G, 16, 2) -> (..., G * 32)
    values = values.unflatten(-1, (-1, BLOCK))  # (..., G, 32)
    # ldexp as the reference does: value * 2**(s - 127), exact for every s in 0..255
    values = torch.ldexp(values, (scales.to(torch.int32) - SCALE_BIAS).unsqueeze(-1))
    return values.flatten(-2)


def quantize(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float (..., rows, cols) -> (X_blocks, X_scales): each block of 32 scaled by the smallest
    power of two that brings its largest magnitude within FP4's 6, each value rounded to the
    nearest FP4 value (ties to the lower code). The inverse of `dequantize` on values it can
    hold exactly; used to write test checkpoints in the release's layout."""
    *lead, rows, cols = w.shape
    if cols % BLOCK:
        raise ValueError(f"MXFP4 needs the last dimension a multiple of {BLOCK}, got {cols}")
    b = w.float().reshape(*lead, rows, cols // BLOCK, BLOCK)
    amax = b.abs().amax(-1).clamp(min=torch.finfo(torch.float32).tiny)
    exp = torch.ceil(torch.log2(amax / 6.0)).clamp(-SCALE_BIAS, 255 - SCALE_BIAS).to(torch.int32)
    scaled = torch.ldexp(b, -exp.unsqueeze(-1))
    codes = (scaled.unsqueeze(-1) - torch.tensor(FP4_E2M1)).abs().argmin(-1).to(torch.uint8)
    return codes[..., 0::2] | (codes[..., 1::2] << 4), (exp + SCALE_BIAS).to(torch.uint8)
