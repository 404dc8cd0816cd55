"""Rotary position embedding (RoPE) and its context-extension rescalings.

Frequencies come straight from a `RopeConfig`, so two layers with different RoPE (Gemma's
local and global layers, NoPE layers) just hold different configs. The model computes
cos/sin once per forward for each distinct config; layers look theirs up.

Convention: the "rotate half" layout (pairs are (x[i], x[i + rot/2])), as HF's Llama. Checkpoints
that pair adjacent dimensions (DeepSeek, Meta's original Llama) are permuted once when loaded.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from ..model_config import FIXED_ROPE_SCALINGS, RopeConfig, RopeScaling


def _llama3(inv_freq: torch.Tensor, s: RopeScaling) -> torch.Tensor:
    # Llama 3.1: keep high frequencies, divide low ones by `factor`, blend the band between.
    low_wavelen = s.original_max_seq_len / s.low_freq_factor
    high_wavelen = s.original_max_seq_len / s.high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > low_wavelen, inv_freq / s.factor, inv_freq)
    # equal factors leave no band to blend (Llama 4 Scout Instruct); avoid dividing by zero
    band = max(s.high_freq_factor - s.low_freq_factor, 1e-12)
    smooth = (s.original_max_seq_len / wavelen - s.low_freq_factor) / band
    blended = (1 - smooth) * scaled / s.factor + smooth * scaled
    medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    return torch.where(medium, blended, scaled)


def _yarn(dim: int, theta: float, s: RopeScaling) -> torch.Tensor:
    # YaRN (arXiv:2309.00071): interpolate low frequencies, extrapolate high ones, linear ramp between.
    def correction_dim(rotations: float) -> float:
        return dim * math.log(s.original_max_seq_len / (rotations * 2 * math.pi)) / (2 * math.log(theta))

    low, high = correction_dim(s.beta_fast), correction_dim(s.beta_slow)
    if s.truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001  # avoid a zero-width ramp
    ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
    pos_freqs = theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    extrapolate = 1.0 / pos_freqs
    interpolate = 1.0 / (s.factor * pos_freqs)
    return interpolate * ramp + extrapolate * (1 - ramp)


@lru_cache(maxsize=64)
def rope_frequencies(rope: RopeConfig, dim: int, long: bool = False) -> tuple[torch.Tensor, float]:
    """Inverse frequencies (dim/2,) on the CPU in float32, and the factor on cos/sin. For the
    kinds that follow the sequence length: those of a sequence within original_max_seq_len
    (dynamic: unscaled; longrope: short_factor), or with long=True longrope's long_factor."""
    s = rope.scaling
    if s is not None and s.kind == "yarn":
        return _yarn(dim, rope.theta, s), s.cos_sin_factor()
    inv_freq = 1.0 / (rope.theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    if s is not None and s.kind == "linear":
        inv_freq = inv_freq / s.factor
    elif s is not None and s.kind == "llama3":
        inv_freq = _llama3(inv_freq, s)
    elif s is not None and s.kind == "longrope":
        # HF _compute_longrope_parameters: 1 / (ext_factors * theta ** (2i / dim))
        ext = torch.tensor(s.long_factor if long else s.short_factor, dtype=torch.float32)
        inv_freq = 1.0 / (ext * rope.theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    return inv_freq, s.cos_sin_factor() if s is not None else 1.0


def _length_dependent(rope: RopeConfig, dim: int, positions: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Frequencies of dynamic NTK and LongRoPE for this forward pass: L = largest position + 1
    over the whole batch, as HF's dynamic_rope_update takes torch.max(position_ids) + 1. Tensor
    ops only (no host sync), so a compiled decode step stays one graph.

    HF's dynamic NTK also keeps state between calls: it regrows only when L passes the longest
    L seen so far and resets only when L falls back within the original length; so a call whose
    L lies between the original length and an earlier, longer call's reuses the longer call's
    frequencies. We compute each call from its own L: the same as HF for a freshly loaded model
    and through any generation whose prompt fits the original length (generate's prefill resets
    HF's state there, and decoding only grows L)."""
    s = rope.scaling
    short, factor = _frequencies_on(rope, dim, positions.device)
    L = positions.max() + 1  # 0-dim int64 tensor
    orig = s.original_max_seq_len
    if s.kind == "longrope":
        long, _ = _frequencies_on(rope, dim, positions.device, True)
        return torch.where(L > orig, long, short), factor
    # dynamic: HF _compute_dynamic_ntk_parameters, in float32 as it computes it for a tensor L
    base = rope.theta * ((s.factor * L / orig) - (s.factor - 1)) ** (dim / (dim - 2))
    grown = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64, device=positions.device).float() / dim))
    return torch.where(L > orig, grown, short), factor


_ON_DEVICE: dict = {}


def _frequencies_on(rope: RopeConfig, dim: int, device: torch.device, long: bool = False) -> tuple[torch.Tensor, float]:
    # A blocking host-to-device copy waits for the device's queue to drain: copied once per
    # device, not on every forward. Computed on the CPU either way, so values do not depend on
    # the device's pow/exp. A plain dict, not lru_cache: torch.compile reads a dict's entry as
    # a constant, where it would trace through an lru_cache wrapper and recompute the table.
    key = (rope, dim, device, long)
    if key not in _ON_DEVICE:
        inv_freq, factor = rope_frequencies(rope, dim, long)
        _ON_DEVICE[key] = (inv_freq.to(device), factor)
    return _ON_DEVICE[key]


def rope_cos_sin(rope: RopeConfig, dim: int, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (B, T, dim) for integer positions (B, T)."""
    if rope.scaling is not None and rope.scaling.kind not in FIXED_ROPE_SCALINGS:
        inv_freq, factor = _length_dependent(rope, dim, positions)
    else:
        inv_freq, factor = _frequencies_on(rope, dim, positions.device)
    angles = positions[..., None].float() * inv_freq  # (B, T, dim/2)
    angles = torch.cat((angles, angles), dim=-1)  # (B, T, dim)
    return (angles.cos() * factor).to(dtype), (angles.sin() * factor).to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first cos.shape[-1] features of x (B, H, T, hd); the rest pass through."""
    rot = cos.shape[-1]
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (B, 1, T, rot)
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    x1, x2 = x_rot[..., : rot // 2], x_rot[..., rot // 2 :]
    rotated = x_rot * cos + torch.cat((-x2, x1), dim=-1) * sin
    return rotated if x_pass.shape[-1] == 0 else torch.cat((rotated, x_pass), dim=-1)


def interleaved_to_halves(n: int) -> torch.Tensor:
    """Row order that turns adjacent-pair RoPE features (0,1),(2,3).. into rotate-half layout."""
    return torch.cat((torch.arange(0, n, 2), torch.arange(1, n, 2)))
