"""The one checkpoint-mapping engine: our tensor names <-> a checkpoint's, for every format.

A format describes how its tensors become ours as a list of `Rule`s and offers its file (or
directory) as a `Checkpoint`. Loading (`load_state`) matches the whole checkpoint against the
tensors the model expects *before any tensor data is read*, and reports every missing,
unexpected or wrongly shaped tensor (and whatever the format itself refuses, such as a
quantization it cannot read) at once, in one CheckpointError naming the file and the tensors;
nothing is read or loaded then.

Shapes are checked by running each rule's load transform on meta tensors of the shapes the
checkpoint's header declares: a layout change that cannot apply (a fused QKV of the wrong
size) is then a wrong shape like any other, never a reshape error from torch. Saving
(`save_plan`, `saved_tensors`) runs the same rules the other way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass

import torch

from ..model_config import ModelConfig
from ..errors import CheckpointError

__all__ = [
    "Tensors", "same", "Rule", "rename", "Checkpoint", "Step", "instances", "their_names", "plan", "load_state",
    "save_plan", "saved_tensors", "listing",
]

Tensors = list[torch.Tensor]


def same(ts: Tensors, cfg: ModelConfig) -> Tensors:
    return ts


@dataclass(frozen=True)
class Rule:
    """Our tensors `ours` are made from the checkpoint's tensors `theirs` by `load`, and
    back by `save`. Templates may hold {i} (layer); `theirs` may hold {e} (expert), in which
    case the per-expert tensors arrive stacked along a new first dimension."""

    ours: tuple[str, ...]
    theirs: tuple[str, ...]
    load: Callable[[Tensors, ModelConfig], Tensors] = same
    save: Callable[[Tensors, ModelConfig], Tensors] = same
    # The same tensors of ours in another checkpoint layout, read when this rule's tensors are
    # absent and all of the alternative's are present (e.g. MoE experts, which HF v5 holds
    # fused as gate_up_proj and saves per expert unless save_original_format=False). Saving
    # writes this rule's layout.
    alternative: "Rule | None" = None


def rename(ours: str, theirs: str, load=same, save=same) -> Rule:
    return Rule((ours,), (theirs,), load, save)


class Checkpoint:
    """The tensors of one checkpoint, as the engine needs them. Each format subclasses it."""

    where: str = ""  # the file or directory, at the head of every error message

    def names(self) -> Iterable[str]:
        raise NotImplementedError

    def __contains__(self, name: str) -> bool:
        raise NotImplementedError

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape the header declares, in torch's order; reads no data."""
        raise NotImplementedError

    def read(self, name: str) -> torch.Tensor:
        """The tensor's values in full precision (dequantized where the file stores them quantized)."""
        raise NotImplementedError

    def companions(self, name: str) -> list[str]:
        """Other tensors of the checkpoint that reading `name` consumes (an FP8 weight's scales):
        they are neither unexpected nor mapped by any rule."""
        return []

    def problems(self, names: list[str]) -> list[str]:
        """What the format refuses in the tensors about to be read (an unknown quantization)."""
        return []


def _template_regex(t: str) -> re.Pattern:
    return re.compile(re.escape(t).replace(r"\{i\}", r"(?P<i>\d+)") + "$")


def instances(rule: Rule, keys: Collection[str]) -> list[tuple[int | None, list[str]]]:
    """Where `rule` applies to a set of our tensor names: each layer (None for a rule without
    {i}) at which every one of rule.ours is present, with the names filled in. Shared by
    loading (keys: what the model expects) and saving (keys: what the model holds)."""
    if "{i}" not in rule.ours[0]:
        return [(None, list(rule.ours))] if all(k in keys for k in rule.ours) else []
    pattern = _template_regex(rule.ours[0])
    layers = sorted({int(m["i"]) for k in keys if (m := pattern.match(k))})
    found = []
    for i in layers:
        names = [t.format(i=i) for t in rule.ours]
        if all(k in keys for k in names):
            found.append((i, names))
    return found


def their_names(template: str, i: int | None, n_experts: int) -> list[str]:
    """A checkpoint template at layer i; one name per expert where it holds {e}."""
    if "{e}" in template:
        return [template.format(i=i, e=e) for e in range(n_experts)]
    return [template.format(i=i)]


def listing(items: list[str], limit: int = 12) -> str:
    shown = "; ".join(items[:limit])
    return shown + (f"; ... and {len(items) - limit} more" if len(items) > limit else "")


# ---- loading --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One application of a rule: our tensors `ours` from the checkpoint's tensors `theirs`,
    one tuple of names per template of `rule.theirs` (a name per expert where it holds {e}).
    `rule` is the layout the checkpoint holds: the rule itself or one of its alternatives."""

    rule: Rule
    layer: int | None
    ours: tuple[str, ...]
    theirs: tuple[tuple[str, ...], ...]

    def label(self) -> str:
        """The checkpoint's names, with * for the expert of per-expert tensors."""
        return ", ".join(t.replace("{e}", "*").format(i=self.layer) for t in self.rule.theirs)

    def gather(self, get: Callable[[str], torch.Tensor]) -> Tensors:
        """The rule's input: one tensor per template, per-expert tensors stacked."""
        out = []
        for template, names in zip(self.rule.theirs, self.theirs):
            parts = [get(n) for n in names]
            out.append(torch.stack(parts) if "{e}" in template else parts[0])
        return out


def _present_layout(rule: Rule, i: int | None, n_experts: int, ckpt: Checkpoint) -> Rule:
    """The first of `rule` and its alternatives whose checkpoint tensors are all present;
    `rule` itself when none is complete, so that its absent names are the ones reported."""
    r: Rule | None = rule
    while r is not None:
        if all(n in ckpt for t in r.theirs for n in their_names(t, i, n_experts)):
            return r
        r = r.alternative
    return rule


def plan(
    rules: list[Rule], expected: Collection[str], ckpt: Checkpoint, n_experts: int
) -> tuple[list[Step], list[str], set[str]]:
    """The steps that make every expected tensor of ours whose checkpoint tensors are all
    present; the absent ones, as '<theirs> (for <ours>)'; the checkpoint names it consumes."""
    steps, missing, consumed = [], [], set()
    for rule in rules:
        for i, ours in instances(rule, expected):
            layout = _present_layout(rule, i, n_experts, ckpt)
            theirs = tuple(tuple(their_names(t, i, n_experts)) for t in layout.theirs)
            names = [n for group in theirs for n in group]
            absent = [n for n in names if n not in ckpt]
            consumed.update(n for n in names if n in ckpt)
            if absent:
                missing += [f"{n} (for {', '.join(ours)})" for n in absent]
            else:
                steps.append(Step(layout, i, tuple(ours), theirs))
    for n in list(consumed):
        consumed.update(ckpt.companions(n))
    return steps, missing, consumed


def _shape_problems(step: Step, ckpt: Checkpoint, expected: dict[str, torch.Size], cfg: ModelConfig) -> list[str]:
    """The step's load transform run on meta tensors of the declared shapes: what it would make
    against what the model expects, without reading a byte of data."""
    stored = [ckpt.shape(n) for group in step.theirs for n in group[:1]]
    try:
        made = step.rule.load(step.gather(lambda n: torch.empty(ckpt.shape(n), device="meta")), cfg)
    except CheckpointError:
        raise  # a format refusing a layout it recognises says why itself
    except (RuntimeError, ValueError, IndexError, TypeError) as e:
        return [f"{step.label()} {', '.join(map(str, stored))} (for {', '.join(step.ours)}): cannot be converted ({e})"]
    out = []
    for k, t in zip(step.ours, made):
        if tuple(t.shape) != tuple(expected[k]):
            changed = len(stored) != 1 or tuple(t.shape) != tuple(stored[0])
            stored_as = f" (stored as {', '.join(map(str, stored))})" if changed else ""
            out.append(f"{step.label()} (for {k}): expected {tuple(expected[k])}, got {tuple(t.shape)}{stored_as}")
    return out


def load_state(
    rules: list[Rule],
    cfg: ModelConfig,
    expected: dict[str, torch.Size],
    ckpt: Checkpoint,
    dtype: torch.dtype,
    *,
    described_by: str,
    ignore: Iterable[str] = (),
) -> dict[str, torch.Tensor]:
    """Checkpoint tensors -> our state dict (name -> tensor in `dtype`), checked as a whole
    against `expected` (name -> shape) first. `ignore`: regular expressions of checkpoint
    tensors that carry nothing the model needs; `described_by` names what says which model
    the checkpoint holds ('config.json', 'the metadata')."""
    n_experts = cfg.moe.n_experts if cfg.moe is not None else 0
    steps, missing, consumed = plan(rules, expected, ckpt, n_experts)
    problems = []
    if missing:
        problems.append(f"missing tensors: {listing(missing)}")
    not_covered = sorted(set(expected) - {k for s in steps for k in s.ours})
    if not_covered and not missing:
        problems.append(f"no checkpoint tensor maps to: {listing(not_covered)}")
    patterns = [re.compile(p) for p in ignore]
    unexpected = sorted(n for n in ckpt.names() if n not in consumed and not any(p.match(n) for p in patterns))
    if unexpected:
        problems.append(f"unexpected tensors (not part of the model {described_by} describes): {listing(unexpected)}")
    shapes = [p for s in steps for p in _shape_problems(s, ckpt, expected, cfg)]
    if shapes:
        problems.append(f"wrongly shaped tensors: {listing(shapes)}")
    problems += ckpt.problems([n for s in steps for group in s.theirs for n in group])
    if problems:
        raise CheckpointError(
            f"{ckpt.where}: checkpoint does not match the model {described_by} describes:\n  " + "\n  ".join(problems)
        )
    state: dict[str, torch.Tensor] = {}
    for step in steps:
        for k, v in zip(step.ours, step.rule.load(step.gather(ckpt.read), cfg)):
            if not v.is_floating_point():  # every format's problems() should have said so first
                raise CheckpointError(f"{ckpt.where}: {k} would be loaded from {step.label()} as {v.dtype}; the model's "
                                      "weights are floating point")
            state[k] = v.to(dtype)
    return state


# ---- saving ---------------------------------------------------------------------------------

def save_plan(rules: list[Rule], state: dict[str, torch.Tensor]) -> tuple[list[tuple[Rule, int | None, list[str]]], list[str]]:
    """(rule, layer, our names) for every rule that applies to `state`, in the state's order,
    and the tensors of ours no rule claims (which the caller refuses: nothing is written)."""
    found = [(rule, i, ours) for rule in rules for i, ours in instances(rule, state)]
    claimed = {k for _, _, ours in found for k in ours}
    order = {k: n for n, k in enumerate(state)}
    found.sort(key=lambda p: order[p[2][0]])
    return found, [k for k in state if k not in claimed]


def saved_tensors(
    steps: list[tuple[Rule, int | None, list[str]]], state: dict[str, torch.Tensor], cfg: ModelConfig
) -> Iterator[tuple[str, torch.Tensor]]:
    """(checkpoint name, tensor) through the rules' `save` transforms, one step at a time."""
    for rule, i, ours in steps:
        out = rule.save([state[k] for k in ours], cfg)
        if len(out) != len(rule.theirs):
            raise RuntimeError(f"save rule for {ours} made {len(out)} tensors for {len(rule.theirs)} names")
        for template, t in zip(rule.theirs, out):
            parts = t.unbind(0) if "{e}" in template else (t,)
            yield from zip(their_names(template, i, len(parts)), parts)
