"""Interleaved timing: every contender once per round (A B C, then B C A, ...), after warm-up;
a round during which other processes used the machine is dropped whole, so the kept rounds
still pair up for ratios."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import torch


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


@dataclass
class Timed:
    times: dict[str, list[float]] = field(default_factory=dict)  # kept rounds only
    rounds: int = 0
    dropped: int = 0
    disturbed_kept: bool = False  # every round was disturbed: all kept and said so

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])

    def ratio(self, name: str, ref: str) -> float:
        """Median over kept rounds of ref's time / name's time (above 1: `name` is faster)."""
        return statistics.median(b / a for a, b in zip(self.times[name], self.times[ref]))

    def summary(self) -> dict:
        return {"rounds": self.rounds, "kept": self.rounds if self.disturbed_kept else self.rounds - self.dropped,
                "dropped": 0 if self.disturbed_kept else self.dropped, "all_disturbed": self.disturbed_kept,
                "median_s": {k: self.median(k) for k in self.times}, "times_s": self.times}


def interleave(fns: dict[str, Callable[[], object]], gate, device: str = "cpu", warmup: int = 1, repeats: int = 7) -> Timed:
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    synchronize(device)
    gate.wait(", ".join(names))
    gave_up = gate.timed_out
    rounds: list[dict[str, float]] = []
    disturbed: list[bool] = []
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]  # who goes first rotates
        gate.mark()
        got = {}
        for n in order:
            synchronize(device)
            t0 = time.perf_counter()
            fns[n]()
            synchronize(device)
            got[n] = time.perf_counter() - t0
        share = gate.others()
        gate.samples.append(share)
        rounds.append(got)
        disturbed.append(gate.enabled and share >= gate.threshold)
        if disturbed[-1] and r + 1 < repeats and gate.timed_out == gave_up:
            gate.wait(", ".join(names))
    keep = [g for g, d in zip(rounds, disturbed) if not d]
    out = Timed(rounds=repeats, dropped=repeats - len(keep))
    if not keep:  # never quiet: keep everything rather than report nothing, flagged
        keep, out.disturbed_kept = rounds, True
    out.times = {n: [g[n] for g in keep] for n in names}
    return out
