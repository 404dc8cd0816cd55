"""A quantized model on disk: `archlab quantize MODEL --to int8|int4 -o OUT` writes, archlab.load reads.

    OUT/model_config.json    the ModelConfig (ModelConfig.to_dict)
    OUT/quantization.json    {"scheme": ..., "dtype": ..., "packed": {weight name: {bits, offset, fmt}}}
    OUT/model.safetensors    the float tensors under our names, and per packed weight
                             `<name>.q`, `<name>.scale` and (when it has one) `<name>.min`
Written into a temporary folder and renamed into place, so OUT appears whole or not at all."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..model_config import ModelConfig
from ..quant.convert import install_packed
from ..quant.modules import _Packed
from ..quant.packed import PackedWeight

__all__ = ["save_quantized", "load_quantized"]


def save_quantized(model, out: str | Path, scheme: str, overwrite: bool = False) -> Path:
    from safetensors.torch import save_file

    out = Path(out)
    occupied = any(out.iterdir()) if out.is_dir() else out.exists()
    if occupied and not overwrite:
        raise ValueError(f"{out} exists and is not empty; pass overwrite=True (--overwrite) to replace it")
    tensors, packed, dtype = {}, {}, torch.float32
    packed_modules = {name: m for name, m in model.named_modules() if isinstance(m, _Packed)}
    for name, m in packed_modules.items():
        packed[f"{name}.weight"] = {"bits": m.bits, "offset": m.offset, "fmt": m.fmt}
        tensors[f"{name}.weight.q"], tensors[f"{name}.weight.scale"] = m.q, m.scale
        if m.min is not None:
            tensors[f"{name}.weight.min"] = m.min
        dtype = m.dtype
    for k, v in model.state_dict().items():
        owner = k.rsplit(".", 1)[0]
        if owner not in packed_modules or k.endswith(".bias"):
            tensors[k] = v
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "model_config.json").write_text(json.dumps(model.config.to_dict(), indent=1))
        (tmp / "quantization.json").write_text(json.dumps({"scheme": scheme, "dtype": str(dtype).removeprefix("torch."),
                                                           "packed": packed}, indent=1))
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / "model.safetensors"))
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_quantized(path: str | Path, dtype: torch.dtype | None = None, device=None):
    from safetensors.torch import load_file

    from ..model import build

    path = Path(path)
    try:
        cfg = ModelConfig.from_dict(json.loads((path / "model_config.json").read_text()))
        meta = json.loads((path / "quantization.json").read_text())
        tensors = load_file(str(path / "model.safetensors"))
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path}: not a readable archlab quantize output ({e})") from None
    dtype = dtype or getattr(torch, meta.get("dtype", "float32"))
    model = build(cfg, dtype=dtype, device="meta")
    packed = {}
    for wname, lay in meta["packed"].items():
        try:
            packed[wname] = PackedWeight(tensors.pop(f"{wname}.q"), tensors.pop(f"{wname}.scale"),
                                         tensors.pop(f"{wname}.min", None), int(lay["bits"]), lay.get("fmt", ""),
                                         int(lay.get("offset", 0)))
        except KeyError as e:
            raise CheckpointError(f"{path}: packed weight {wname} lacks its tensor {e}") from None
    floats = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    missing, unexpected = model.load_state_dict(floats, strict=False, assign=True)
    if set(missing) != set(packed) or unexpected:
        raise CheckpointError(f"{path}: tensors do not fit its model config (missing {sorted(set(missing) - set(packed))}, "
                              f"unexpected {unexpected})")
    install_packed(model, packed, dtype)
    return model.to(device) if device is not None else model
