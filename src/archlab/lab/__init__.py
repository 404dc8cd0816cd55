"""The claims lab: each claim the comparison makes, as an experiment with a computed verdict.

    archlab lab list                         the claims, their statements and sources
    archlab lab CLAIM [--budget smoke|default|large] [--seed S] [--out DIR]
    archlab lab all

One module per claim, each defining CLAIM (a core.Claim); the registry below lists them in
the order of the comparison. core.py runs a claim and writes result.json, plot.png and
verdict.md. Claim modules import torch only inside their experiment, so listing is light.
"""

from __future__ import annotations

from importlib import import_module

from .core import BUDGETS, Claim, LabError, run_claim

# module name (in this package) of each claim, in the order `lab list` and `lab all` use
_MODULES = ("kv_cache", "norm_speed", "norm_placement", "positions", "ffn", "gqa", "moe", "balancing", "attention_kernel", "scale", "precision", "architectures")


def claims() -> dict[str, Claim]:
    out: dict[str, Claim] = {}
    for m in _MODULES:
        claim = import_module(f".{m}", __name__).CLAIM
        out[claim.name] = claim
    return out


def get(name: str) -> Claim:
    known = claims()
    if name not in known:
        import difflib

        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise LabError(f"unknown claim {name!r}{hint} (`archlab lab list` lists {len(known)}: {', '.join(known)})")
    return known[name]


__all__ = ["BUDGETS", "Claim", "LabError", "claims", "get", "run_claim"]
