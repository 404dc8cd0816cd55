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

from ..model_config import RopeConfig, RopeScaling


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
def rope_frequencies(rope: RopeConfig, dim: int) -> tuple[torch.Tensor, float]:
    """Inverse frequencies (dim/2,) on the CPU in float32, and the factor on cos/sin."""
    s = rope.scaling
    if s is not None and s.kind == "yarn":
        return _yarn(dim, rope.theta, s), s.cos_sin_factor()
    inv_freq = 1.0 / (rope.theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    if s is not None and s.kind == "linear":
        inv_freq = inv_freq / s.factor
    elif s is not None and s.kind == "llama3":
        inv_freq = _llama3(inv_freq, s)
    return inv_freq, 1.0


@lru_cache(maxsize=64)
def _frequencies_on(rope: RopeConfig, dim: int, device: torch.device) -> tuple[torch.Tensor, float]:
    # A blocking host-to-device copy waits for the device's queue to drain: copied once per
    # device, not on every forward. Computed on the CPU either way, so values do not depend on
    # the device's pow/exp.
    inv_freq, factor = rope_frequencies(rope, dim)
    return inv_freq.to(device), factor


def rope_cos_sin(rope: RopeConfig, dim: int, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (B, T, dim) for integer positions (B, T)."""
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
