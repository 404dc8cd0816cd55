"""Which parameters of a big parametrization the quick run (-m "not slow") keeps."""

from __future__ import annotations

import pytest


def slow_except(values, quick, ids=None) -> list:
    """pytest.param for each value (a tuple: one per argument), marked slow unless its id is in
    `quick`: a few representatives stay in the quick run, the full run (plain `pytest`, as CI
    runs it) takes them all."""
    ids = list(ids) if ids is not None else [str(v) for v in values]
    missing = set(quick) - set(ids)
    assert not missing, f"quick representatives not among the values: {sorted(missing)}"
    return [pytest.param(*(v if isinstance(v, tuple) else (v,)), id=i, marks=[] if i in quick else [pytest.mark.slow])
            for v, i in zip(values, ids)]


# one preset per kind of part: learned positions and MHA, ALiBi, GQA with RoPE, sliding
# windows, chunked and NoPE layers, sinks, MLA with MoE, DeltaNet, Grok's capped sandwich
QUICK_PRESETS = ("gpt2", "bloom-176b", "llama-3-8b", "gemma-3-1b", "llama-4-scout", "gpt-oss-20b", "deepseek-v3",
                 "qwen3-next-80b-a3b", "grok-2.5")
