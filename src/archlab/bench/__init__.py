"""`archlab bench`: archlab beside HF transformers and llama.cpp, measured in one process.

Each suite returns rows; a row holds one case's rate per contender (median over kept rounds),
its ratios to HF, and its fraction of a measured ceiling (memory bandwidth or GEMM FLOP/s).
Rounds run the contenders interleaved after warm-up (timing.py); a quiet-machine gate
(quiet.py) waits for others' CPU use to fall under a threshold and drops disturbed rounds.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from .quiet import Gate

SUITES = ("decode", "train", "moe", "mla")  # decode covers batch 1, batch 8 and prefill


@dataclass
class Run:
    quick: bool = False
    device: str = "cpu"
    dtypes: tuple[str, ...] = ("float32", "bfloat16")
    model: str = "smollm2-135m-instruct"
    repeats: int = 7
    gate: Gate = field(default_factory=Gate)
    quiet_log: bool = False
    ceilings: dict | None = None
    machine: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def log(self, msg: str) -> None:
        if not self.quiet_log:
            print(msg, file=sys.stderr, flush=True)

    def note(self, msg: str) -> None:
        if msg not in self.notes:
            self.notes.append(msg)
            self.log(f"bench: {msg}")


def _suite(name: str):
    from importlib import import_module

    return import_module(f".{name}", __name__).suite


def run(suites=SUITES, *, quick: bool = False, device: str | None = None, dtypes=None, model: str | None = None,
        repeats: int | None = None, threads: int | None = None, wait: bool = True, threshold: float = 0.05,
        timeout: float = 120.0, quiet: bool = False) -> dict:
    """Run the suites; returns the whole result (machine, ceilings, rows, notes) as a JSON-able dict."""
    import torch

    from .ceilings import measure
    from .machine import describe

    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        raise ValueError(f"suite {unknown[0]!r}: expected one of {', '.join(SUITES)}")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: CUDA is not available here")
    if threads:
        torch.set_num_threads(threads)
    r = Run(quick=quick, device=device, dtypes=tuple(dtypes or (("float32",) if quick else ("float32", "bfloat16"))),
            model=model or "smollm2-135m-instruct", repeats=repeats or (3 if quick else 7), quiet_log=quiet)
    r.gate = Gate(threshold=threshold, timeout=10.0 if quick else timeout, enabled=wait, log=r.log)
    r.machine = describe(device)
    start = time.time()
    r.log(f"bench: {r.machine['cpu']}, {torch.get_num_threads()} threads, device {device}")
    r.ceilings = measure(r.gate, device, quick)
    rows = []
    for name in suites:
        r.log(f"bench: suite {name}")
        rows += _suite(name)(r)
    disturbed = [x for x in r.gate.samples if x >= threshold]
    return dict(
        machine=r.machine, ceilings=r.ceilings, rows=rows, notes=r.notes,
        settings=dict(suites=list(suites), quick=quick, device=device, dtypes=list(r.dtypes), model=r.model,
                      repeats=r.repeats, quiet_gate=wait, threshold=threshold),
        quiet=dict(rounds=len(r.gate.samples), disturbed_rounds=len(disturbed), waited_s=r.gate.waited,
                   gave_up_waiting=r.gate.timed_out,
                   median_others_share=sorted(r.gate.samples)[len(r.gate.samples) // 2] if r.gate.samples else None),
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)), seconds=time.time() - start,
    )
