"""Checkpoints of a training run, written so that a kill at any instant loses nothing.

    DIR/checkpoints/step-00000100/   one complete checkpoint:
        model.safetensors            the weights, in archlab's own names      (one process, DDP)
        optimizer.pt                 AdamW's state, keyed by parameter name   (torch.load(weights_only=True))
        dcp/                         model and optimizer, sharded, by torch.distributed.checkpoint (FSDP)
        rng.pt, rng-rank<r>.pt       each process's random-number state
        state.json                   step, tokens seen, data position, hashes of the data and tokenizer
        model_config.json            the model's config (ModelConfig.to_dict)
        tokenizer.json ...           the tokenizer
    DIR/checkpoints/latest           the name of the newest complete checkpoint

A checkpoint is written into a temporary folder beside its final name and renamed into place
once every file is on disk; only then does `latest` move (itself replaced atomically), and
only then are old checkpoints beyond --keep removed. A kill, a full disk or any error leaves
the previous checkpoint and the pointer to it as they were.

Nothing here is read with unrestricted pickle: weights are safetensors, the optimizer state is
read with torch.load(weights_only=True), the rest is JSON.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from ..io.atomic import atomic_file, fsync_path
from ..model_config import ModelConfig
from .distributed import Processes
from .options import TrainError

CHECKPOINTS = "checkpoints"
LATEST = "latest"
MODEL_CONFIG = "model_config.json"
STATE = "state.json"


def step_name(step: int) -> str:
    return f"step-{step:08d}"


def write_json(path: Path, data: Any) -> None:
    with atomic_file(path, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing ({what})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not readable as JSON ({what}): {e}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object ({what})")
    return data


# ---- finding checkpoints -----------------------------------------------------------------------

def latest(run: Path) -> Path | None:
    """The newest complete checkpoint of a run folder, or None when it has none."""
    pointer = run / CHECKPOINTS / LATEST
    if not pointer.is_file():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    if not name.startswith("step-") or "/" in name or "\\" in name:
        raise CheckpointError(f"{pointer}: names {name!r}, not a checkpoint folder")
    path = run / CHECKPOINTS / name
    if not (path / STATE).is_file():
        raise CheckpointError(f"{pointer}: points at {name}, which is missing or incomplete")
    return path


def is_run(path: Path) -> bool:
    return (path / CHECKPOINTS / LATEST).is_file()


def is_checkpoint(path: Path) -> bool:
    return (path / STATE).is_file() and (path / MODEL_CONFIG).is_file()


def checkpoint_of(path: Path) -> Path:
    """A run folder's latest checkpoint, or the checkpoint folder itself."""
    if is_run(path):
        found = latest(path)
        assert found is not None
        return found
    if is_checkpoint(path):
        return path
    raise CheckpointError(f"{path}: neither a training run (no {CHECKPOINTS}/{LATEST}) nor a checkpoint folder (no {STATE})")


# ---- writing -----------------------------------------------------------------------------------

def _rng_state() -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def save(
    run: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    procs: Processes,
    state: dict[str, Any],
    config: ModelConfig,
    tokenizer,
    keep: int,
) -> Path:
    """Write checkpoint `step` of the run, move `latest` to it, keep the newest `keep`.
    Collective under several processes: every process calls it."""
    from torch.distributed.checkpoint.state_dict import get_state_dict

    folder = run / CHECKPOINTS
    target = folder / step_name(step)
    partial = folder / f".{step_name(step)}.partial"
    sharded = procs.strategy == "fsdp"
    model_sd, optim_sd = get_state_dict(model, optimizer)  # keyed by parameter name, wrappers stripped
    error: BaseException | None = None
    if procs.main:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if partial.exists():  # left by a run killed while saving: never trusted, replaced
                shutil.rmtree(partial)
            partial.mkdir()
        except OSError as e:
            error = e
    if not procs.all_ok(error is None):
        raise _save_error(target, run, error)
    try:
        if sharded:
            import torch.distributed.checkpoint as dcp

            dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(partial / "dcp"))
            torch.save(_rng_state(), partial / f"rng-rank{procs.rank}.pt")
        elif procs.main:
            from safetensors.torch import save_file

            save_file({k: v.detach().contiguous().cpu() for k, v in model_sd.items()}, str(partial / "model.safetensors"))
            torch.save(optim_sd, partial / "optimizer.pt")
            torch.save(_rng_state(), partial / "rng.pt")
        if procs.main:
            write_json(partial / STATE, {**state, "step": step, "sharded": sharded, "processes": procs.world})
            write_json(partial / MODEL_CONFIG, config.to_dict())
            tokenizer.save(partial)
    except (OSError, RuntimeError) as e:  # a full disk surfaces as either, depending on the writer
        error = e
    if not procs.all_ok(error is None):
        if procs.main:
            shutil.rmtree(partial, ignore_errors=True)
        raise _save_error(target, run, error)
    if procs.main:
        for f in partial.rglob("*"):
            if f.is_file():
                fsync_path(f)
        fsync_path(partial)
        if target.exists():  # the same step saved again (a resumed run): the new one replaces it
            shutil.rmtree(target)
        os.replace(partial, target)
        fsync_path(folder)
        with atomic_file(folder / LATEST, "w") as f:  # the pointer moves only now
            f.write(target.name + "\n")
        _prune(folder, keep, target.name)
    procs.barrier()
    return target


def _save_error(target: Path, run: Path, error: BaseException | None) -> TrainError:
    before = latest(run) if (run / CHECKPOINTS / LATEST).is_file() else None
    kept = f"the previous checkpoint {before.name} is intact" if before else "no earlier checkpoint existed"
    why = f"{type(error).__name__}: {error}" if error is not None else "another process failed to write its part"
    return TrainError(f"cannot write checkpoint {target} ({why}); {kept}")


def _prune(folder: Path, keep: int, newest: str) -> None:
    steps = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("step-"))
    for old in steps[:-keep] if keep < len(steps) else []:
        if old.name != newest:
            shutil.rmtree(old, ignore_errors=True)


# ---- reading -----------------------------------------------------------------------------------

def restore(
    checkpoint: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    procs: Processes,
) -> dict[str, Any]:
    """Load a checkpoint into `model` (and `optimizer`), whatever strategy wrote it and however
    many processes it had; returns its state.json."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_state_dict,
        set_model_state_dict,
        set_state_dict,
    )

    state = read_json(checkpoint / STATE, "the checkpoint's step and counters")
    if (checkpoint / "dcp").is_dir():
        import torch.distributed.checkpoint as dcp

        import warnings

        # written by several processes, read by any number: DCP reshards (alone: no_dist,
        # which DCP warns about although it is what we ask for)
        alone = not procs.distributed
        warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
        if optimizer is not None:
            model_sd, optim_sd = get_state_dict(model, optimizer)
            dcp.load({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(checkpoint / "dcp"), no_dist=alone)
            set_state_dict(model, optimizer, model_state_dict=model_sd, optim_state_dict=optim_sd)
        else:
            model_sd = get_model_state_dict(model)
            dcp.load({"model": model_sd}, checkpoint_id=str(checkpoint / "dcp"), no_dist=alone)
            set_model_state_dict(model, model_sd)
    else:
        model_sd = load_weights(checkpoint / "model.safetensors")
        full = StateDictOptions(full_state_dict=True)
        if optimizer is not None:
            optim_sd = _torch_load(checkpoint / "optimizer.pt")
            set_state_dict(model, optimizer, model_state_dict=model_sd, optim_state_dict=optim_sd, options=full)
        else:
            set_model_state_dict(model, model_sd, options=full)
    rng = checkpoint / f"rng-rank{procs.rank}.pt" if state.get("sharded") else checkpoint / "rng.pt"
    if rng.is_file() and (procs.rank == 0 or state.get("sharded")):
        r = _torch_load(rng)
        torch.set_rng_state(r["cpu"])
        if "cuda" in r and torch.cuda.is_available():
            torch.cuda.set_rng_state(r["cuda"])
    return state


def read_config(checkpoint: Path) -> ModelConfig:
    try:
        return ModelConfig.from_dict(read_json(checkpoint / MODEL_CONFIG, "the model's config"))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{checkpoint / MODEL_CONFIG}: not a valid model config ({e})") from None


def _misfits(saved: dict[str, tuple[int, ...]], wanted: dict[str, tuple[int, ...]]) -> list[str]:
    """Why saved tensors (name -> shape) cannot fill a model's (name -> shape), worst first."""
    out = [f"{k}: saved {tuple(saved[k])}, the model has {tuple(wanted[k])}"
           for k in sorted(set(saved) & set(wanted)) if tuple(saved[k]) != tuple(wanted[k])]
    out += [f"{k}: the model has it, the checkpoint does not" for k in sorted(set(wanted) - set(saved))]
    out += [f"{k}: in the checkpoint, not in the model" for k in sorted(set(saved) - set(wanted))]
    return out


def load_initial_weights(checkpoint: Path, model: nn.Module) -> None:
    """The weights alone (no optimizer state, no random state) of a checkpoint, into an
    unwrapped model whose tensors must match them name for name and shape for shape: the
    start of a fine-tune. Every process reads the whole of them, before any sharding."""
    wanted = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if (checkpoint / "dcp").is_dir():
        import warnings

        import torch.distributed.checkpoint as dcp

        meta = dcp.FileSystemReader(str(checkpoint / "dcp")).read_metadata()
        prefix = "model."
        saved = {k[len(prefix):]: tuple(v.size) for k, v in meta.state_dict_metadata.items()
                 if k.startswith(prefix) and hasattr(v, "size")}
        bad = _misfits(saved, wanted)
        if bad:
            raise TrainError(_misfit_message(checkpoint, bad))
        sd = model.state_dict()
        warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
        dcp.load({"model": sd}, checkpoint_id=str(checkpoint / "dcp"), no_dist=True)
        model.load_state_dict(sd)
    else:
        sd = load_weights(checkpoint / "model.safetensors")
        bad = _misfits({k: tuple(v.shape) for k, v in sd.items()}, wanted)
        if bad:
            raise TrainError(_misfit_message(checkpoint, bad))
        model.load_state_dict(sd)


def _misfit_message(checkpoint: Path, bad: list[str]) -> str:
    more = f"; and {len(bad) - 6} more" if len(bad) > 6 else ""
    return (f"--init-from {checkpoint}: its weights do not fit the model asked for ({'; '.join(bad[:6])}{more}). "
            "A fine-tune may change what leaves the weights' shapes alone (RoPE scaling or theta, the context length of "
            "a RoPE model), not widths, layers, vocabulary or a learned position table")


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing (the checkpoint's weights)") from None
    except Exception as e:  # noqa: BLE001 -- safetensors raises its own error types
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except Exception as e:  # noqa: BLE001 -- torch.load raises many types on a bad file
        raise CheckpointError(f"{path}: not a readable checkpoint file ({e})") from None


def load_model(path: Path, dtype: torch.dtype, device, check_memory: bool = True) -> nn.Module:
    """The model of a run folder (its latest checkpoint) or of one checkpoint folder."""
    from ..memory import check_load_memory
    from ..model import build

    checkpoint = checkpoint_of(path)
    config = read_config(checkpoint)
    if check_memory:  # the checkpoint's float32 weights are allocated before the cast to dtype
        check_load_memory(config, torch.float32, device, source=checkpoint)
    model = build(config, device="meta")
    model = model.to_empty(device=device or "cpu")
    procs = Processes(0, 1, 0, torch.device(device or "cpu"), "none", False)
    try:
        restore(checkpoint, model, None, procs)
    except RuntimeError as e:  # names missing or unexpected tensors
        raise CheckpointError(f"{checkpoint}: weights do not fit its model config ({e})") from None
    model.reset_expert_load()
    return model.to(dtype=dtype).eval()
