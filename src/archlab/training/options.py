"""What a training run is asked to do: every option of `archlab train`, checked before any
work starts (a bad option fails in a second, not after the data is tokenized)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

STRATEGIES = ("auto", "none", "ddp", "fsdp")
BALANCING = ("auto", "none", "aux", "loss-free")
DTYPES = ("auto", "float32", "bfloat16")
MAX_COUNT = 2**40  # steps, sequences, tokens: see __post_init__


class TrainError(ValueError):
    """A run that cannot start or continue: the message names the option, file or step."""


@dataclass(frozen=True)
class TrainOptions:
    """steps: optimizer steps.  batch: sequences per optimizer step, over all processes and
    micro-steps (the global batch).  seq_len: tokens per sequence.  grad_accum: micro-steps
    per optimizer step (each process runs batch / (grad_accum * processes) sequences at a time).

    lr peaks after `warmup` steps (linear from 0), then follows a cosine down to min_lr at the
    last step. AdamW with (beta1, beta2), weight decay on matrices only (norm gains, biases and
    the router's selection bias have none), gradients clipped to a global norm of `clip`
    (0: off).

    dtype: "auto" is bfloat16 autocast where the device has fast bfloat16 (CUDA), float32
    elsewhere; weights and optimizer state stay float32 either way.

    balancing (MoE): "auto" follows the preset's paper: the auxiliary-loss-free bias for a
    router with a selection-only bias (DeepSeek-V3, Kimi K2, GLM-4.5), else the auxiliary
    loss. aux_coef weighs the auxiliary loss; bias_rate is the loss-free bias's step (DeepSeek-V3's
    gamma, 0.001 in its paper, section 2.1.2)."""

    steps: int = 1000
    batch: int = 32
    seq_len: int = 256
    grad_accum: int = 1
    lr: float = 1e-3
    min_lr: float | None = None  # default lr / 10
    warmup: int | None = None  # default min(100, steps // 10)
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    clip: float = 1.0
    dtype: str = "auto"
    seed: int = 0
    eval_every: int = 100
    eval_tokens: int = 32768
    save_every: int = 500  # 0: only at the end
    keep: int = 2
    strategy: str = "auto"
    balancing: str = "auto"
    aux_coef: float = 0.01  # Switch Transformer's alpha (Fedus et al. 2021, section 2.2)
    bias_rate: float = 0.001  # DeepSeek-V3 technical report, section 2.1.2
    compile: bool = False

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise TrainError(f"--{name.replace('_', '-')}: {what}, got {getattr(self, name)!r}")

        for name in ("steps", "batch", "seq_len", "grad_accum", "eval_every", "eval_tokens", "keep"):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool) and v >= 1, name, "must be a whole number >= 1")
            # a count past 2**40 is no run anyone means (a hostile --steps 2**64 would loop for ever
            # instead of being refused); 2**40 steps or tokens is still far past any published run
            need(v <= MAX_COUNT, name, f"must be at most 2**40 ({MAX_COUNT:,})")
        # numpy's and torch's generators take seeds in [0, 2**63) both ("Overflow when unpacking long long")
        need(isinstance(self.seed, int) and not isinstance(self.seed, bool) and 0 <= self.seed < 2**63, "seed",
             "must be a whole number in [0, 2**63)")
        need(isinstance(self.save_every, int) and 0 <= self.save_every <= MAX_COUNT, "save_every", "must be >= 0 (0: at the end only)")
        need(self.warmup is None or (isinstance(self.warmup, int) and 0 <= self.warmup <= MAX_COUNT), "warmup", "must be >= 0")
        # a warmup as long as the run never reaches the peak learning rate it was given
        need(self.warmup is None or self.warmup == 0 or self.warmup < self.steps, "warmup", f"must be shorter than --steps ({self.steps})")
        for name in ("lr", "weight_decay", "clip", "aux_coef", "bias_rate"):
            v = getattr(self, name)
            need(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0, name, "must be a finite number >= 0")
        need(self.lr > 0, "lr", "must be > 0")
        need(self.min_lr is None or (math.isfinite(self.min_lr) and 0 <= self.min_lr <= self.lr), "min_lr", f"must be between 0 and lr ({self.lr})")
        for name in ("beta1", "beta2"):
            need(0 <= getattr(self, name) < 1, name, "must be in [0, 1)")
        need(self.dtype in DTYPES, "dtype", f"expected one of {', '.join(DTYPES)}")
        need(self.strategy in STRATEGIES, "strategy", f"expected one of {', '.join(STRATEGIES)}")
        need(self.balancing in BALANCING, "balancing", f"expected one of {', '.join(BALANCING)}")
        need(self.batch % self.grad_accum == 0, "batch", f"must be divisible by --grad-accum ({self.grad_accum})")

    @property
    def warmup_steps(self) -> int:
        return self.warmup if self.warmup is not None else min(100, self.steps // 10)

    @property
    def final_lr(self) -> float:
        return self.min_lr if self.min_lr is not None else self.lr / 10

    def lr_at(self, step: int) -> float:
        """The learning rate of optimizer step `step` (1-based): linear warmup, then cosine."""
        w = self.warmup_steps
        if step <= w:
            return self.lr * step / w
        progress = (step - w) / max(1, self.steps - w)
        return self.final_lr + 0.5 * (self.lr - self.final_lr) * (1 + math.cos(math.pi * min(1.0, progress)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainOptions":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise TrainError(f"unknown training options {unknown}; known: {sorted(known)}")
        return cls(**d)

    # what a resumed run must share with the run it continues, or its losses mean something else
    RESUME_FIXED = ("batch", "seq_len", "grad_accum", "seed")
