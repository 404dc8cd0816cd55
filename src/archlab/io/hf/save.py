"""Saving in HF format: the model_type that expresses a config exactly (choose_family, over the
families that core.register / core.enable_saving gave a writer), its config.json, which must
read back as the model, and the checkpoint written through the families' rules backwards."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import torch

from ...model_config import AttentionConfig, ConfigError, ModelConfig
from ..atomic import atomic_directory, fsync_path
from ..mapping import listing, save_plan, saved_tensors
from ..safetensors_dir import CheckpointError, write_safetensors
from .core import SAVE_ORDER, HFFamily

_DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}
DEFAULT_MAX_SHARD_BYTES = 2 * 10**9


def choose_family(cfg: ModelConfig) -> HFFamily:
    """The HF model_type that expresses `cfg` exactly, decided from its parts (the free-text
    `family` field is not trusted): the first in SAVE_ORDER whose `problems` are empty and
    whose config.json reads back as `cfg`. Raises ConfigError listing, for each HF family with
    the same kind of attention, what it cannot express (the read-back's differences, field by
    field, where its `problems` named none)."""
    candidates = [f for f in SAVE_ORDER if f.mixer == cfg.resolved_attention.kind]
    if not candidates:
        raise ConfigError(
            f"cannot save {cfg.name!r} in HF format: attention kind {cfg.resolved_attention.kind!r} has no HF equivalent "
            f"(supported: {sorted({f.mixer for f in SAVE_ORDER})})"
        )
    found = [(f, f.problems(cfg) or _readback_problems(cfg, f)) for f in candidates]
    for family, problems in found:
        if not problems:
            return family
    found.sort(key=lambda fp: len(fp[1]))
    closest = len(found[0][1])
    # every candidate with what blocks it; the far ones with their first few blockers only
    lines = "\n  ".join(
        f"{f.model_types[0]}: " + "; ".join(p[: closest + 1]) + (f"; and {len(p) - closest - 1} more" if len(p) > closest + 1 else "")
        for f, p in found
    )
    raise ConfigError(
        f"cannot save {cfg.name!r} in HF format: no HF model_type expresses this config exactly, and writing "
        f"one that HF would load as a different model is refused. What each lacks:\n  {lines}"
    )


def _comparable(cfg: ModelConfig) -> ModelConfig:
    """`cfg` with what does not change the computed function made uniform: labels, the
    resolved form of what was given as a rule (config.json lists every layer; a preset may
    state a Pattern or leave head_dim to the width), and a missing selection bias (written
    as zeros). Knobs nothing reads are rejected when a config is made, so none remain here."""
    cfg = cfg.resolved().replace(name="", source="", family="")
    a = cfg.attention
    if isinstance(a, AttentionConfig) and a.scale is not None and a.scale == a.head_dim**-0.5:
        cfg = cfg.replace(attention=replace(a, scale=None))  # the scale attention uses when given none
    if cfg.moe is not None and cfg.moe.router.score == "sigmoid":
        cfg = cfg.replace(moe=replace(cfg.moe, router=replace(cfg.moe.router, score_bias=True)))
    return cfg


def _differences(want: Any, got: Any, path: str) -> list[str]:
    """Where two configs differ, field by field down to the innermost dataclass that differs."""
    if want == got:
        return []
    if type(want) is type(got) and hasattr(want, "__dataclass_fields__"):
        return [d for f in fields(want) for d in _differences(getattr(want, f.name), getattr(got, f.name), f"{path}.{f.name}")]
    return [f"{path.lstrip('.')}={want!r} would read back as {got!r}"]


def _readback_diffs(cfg: ModelConfig, family: HFFamily, hf: dict) -> list[str]:
    try:
        got = family.read_config(hf)
    except (ConfigError, CheckpointError) as e:
        return [f"its config.json would not read back ({e})"]
    return _differences(_comparable(cfg), _comparable(got), "")


def _json(cfg: ModelConfig, family: HFFamily, dtype: torch.dtype) -> dict[str, Any]:
    return {
        "architectures": [family.architecture],
        "model_type": family.model_types[0],
        "dtype": _DTYPE_NAMES[dtype],
        "torch_dtype": _DTYPE_NAMES[dtype],  # the name before transformers v5
        **family.write_config(cfg),
        "tie_word_embeddings": cfg.tie_embeddings,
        # a ModelConfig knows no special tokens; unset beats HF's defaults, which may lie outside the vocabulary
        "bos_token_id": None,
        "eos_token_id": None,
        "pad_token_id": None,
    }


def _readback_problems(cfg: ModelConfig, family: HFFamily) -> list[str]:
    """What a family's own `problems` missed: its config.json read back by its reader (proven
    equal to HF by the family tests) differs from `cfg`, field by field. A family is chosen
    only when its config.json reads back as the model, so a check its `problems` lacks
    refuses it rather than writing a different model."""
    try:
        hf = _json(cfg, family, torch.float32)
    except (ConfigError, CheckpointError, ValueError, TypeError, AttributeError, KeyError) as e:
        return [f"its config.json cannot be written ({type(e).__name__}: {e})"]
    return _readback_diffs(cfg, family, hf)


def _check_reads_back(cfg: ModelConfig, family: HFFamily, hf: dict) -> None:
    """The config.json we are about to write must read back as the model we have: the last
    guard against writing a checkpoint HF (and we) would load as something else."""
    diffs = _readback_diffs(cfg, family, hf)
    if diffs:
        raise ConfigError(
            f"cannot save {cfg.name!r} as {family.model_types[0]}: its config.json would describe a different model:\n  "
            + "\n  ".join(diffs)
        )


def hf_config_json(cfg: ModelConfig, dtype: torch.dtype = torch.float32) -> tuple[HFFamily, dict[str, Any]]:
    """The HF family for `cfg` and the config.json that describes it."""
    family = choose_family(cfg)
    if dtype not in _DTYPE_NAMES:
        raise ConfigError(f"cannot save {cfg.name!r} in HF format: dtype {dtype} (expected one of {sorted(_DTYPE_NAMES.values())})")
    hf = _json(cfg, family, dtype)
    _check_reads_back(cfg, family, hf)
    return family, hf


def _hf_tensors(state: dict[str, torch.Tensor], family: HFFamily, cfg: ModelConfig, hf: dict):
    """Our state dict -> (checkpoint name, tensor) in our module order, through the rules'
    `save` transforms. Every tensor of ours must be claimed by a rule, or nothing is written."""
    state = family.prepare_state(state, cfg)
    steps, unclaimed = save_plan(family.rules(cfg, hf), state)
    if unclaimed:
        raise ConfigError(
            f"cannot save {cfg.name!r} as {family.model_types[0]}: these tensors have no place in its checkpoint: {listing(unclaimed)}"
        )
    return saved_tensors(steps, state, cfg)


def save_hf(
    model,
    directory: str | Path,
    *,
    overwrite: bool = False,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
) -> Path:
    """Write `model` as an HF transformers checkpoint (config.json + safetensors) of the
    model_type that expresses its config exactly; HF's from_pretrained loads it as the same
    function. Everything is written into a temporary directory beside `directory` and renamed
    into place, so `directory` is either complete or as it was before."""
    cfg = getattr(model, "config", None)
    if not isinstance(cfg, ModelConfig):
        raise TypeError(f"expected an archlab Transformer (with a ModelConfig), got {type(model).__name__}")
    # a bool is an int to Python, but True is no size (it wrote one shard per tensor)
    if isinstance(max_shard_bytes, bool) or not isinstance(max_shard_bytes, int) or max_shard_bytes <= 0:
        raise ValueError(f"max_shard_bytes: expected a positive number of bytes, got {max_shard_bytes!r}")
    state = model.state_dict()
    dtype = next((t.dtype for t in state.values() if t.is_floating_point()), torch.float32)
    family, hf = hf_config_json(cfg, dtype)
    tensors = _hf_tensors(state, family, cfg, hf)  # checks every tensor has a place; writes nothing yet
    with atomic_directory(directory, overwrite=overwrite) as tmp:
        files = write_safetensors(tmp, tensors, max_shard_bytes)
        config_path = tmp / "config.json"
        config_path.write_text(json.dumps(hf, indent=2) + "\n")
        for f in (*files, config_path):
            fsync_path(f)
    return Path(directory).absolute()
