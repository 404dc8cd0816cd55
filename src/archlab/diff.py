"""What changed from one architecture to the next, part by part, with its effect computed.

`changes(a, b)` compares two configs part by part (norm, position, attention, FFN, layout,
cache, sizes) and returns one `Change` per part whose config fields differ, each with the
fields, both sides in words, and its effect computed by analyze() (KV bytes per token ratio,
active parameters, FLOPs per token). Config and analysis only: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model_config import ModelConfig

__all__ = ["Change", "changes", "PARTS"]

# The parts a change is filed under, in display order.
PARTS = ("norm", "position", "attention", "ffn", "layout", "cache", "sizes")


@dataclass(frozen=True)
class Change:
    """One part that differs from A to B.

    part: one of PARTS. fields: the ModelConfig field paths that differ ("norm.kind",
    "attention.n_kv_heads"). before / after: the part in words for A and B. effect: the
    computed effect in words ("KV per token x0.25"), "" when none applies. verdict: the lab's
    measured verdict for this kind of change when a results folder was given, else None."""

    part: str
    fields: tuple[str, ...]
    before: str
    after: str
    effect: str = ""
    verdict: str | None = None


def changes(a: ModelConfig | str, b: ModelConfig | str, results: str | None = None) -> list[Change]:
    """The parts that differ from `a` to `b` (ModelConfigs or preset names), in PARTS order;
    empty when they are the same config. `results`: a lab results folder whose verdicts are
    attached to the changes they judge."""
    raise NotImplementedError
