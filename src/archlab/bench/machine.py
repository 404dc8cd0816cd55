"""What the benchmark ran on: CPU, memory, accelerator, library versions; and the published
peaks of known GPUs, for MFU and bandwidth use."""

from __future__ import annotations

import os
import platform
from pathlib import Path

# Dense (no sparsity) bf16 tensor-core FLOP/s and HBM bytes/s from NVIDIA's datasheets:
# H100 SXM5: 989 TFLOP/s bf16 dense (the sheet's 1,979 is with 2:4 sparsity), 3.35 TB/s;
# H100 PCIe: 756 TFLOP/s, 2.0 TB/s (https://www.nvidia.com/en-us/data-center/h100/, datasheet);
# H200 SXM: same compute as H100 SXM, 4.8 TB/s HBM3e (https://www.nvidia.com/en-us/data-center/h200/);
# A100 SXM 80GB: 312 TFLOP/s bf16, 2.039 TB/s; A100 40GB 1.555 TB/s
# (https://www.nvidia.com/en-us/data-center/a100/, A100 datasheet);
# L4: 121 TFLOP/s bf16 dense, 300 GB/s (https://www.nvidia.com/en-us/data-center/l4/).
# Matched by substring of torch.cuda.get_device_name, most specific first.
GPU_PEAKS: list[tuple[str, float, float]] = [
    ("H200", 989e12, 4.8e12),
    ("H100 PCIe", 756e12, 2.0e12),
    ("H100", 989e12, 3.35e12),
    ("A100-SXM4-80GB", 312e12, 2.039e12),
    ("A100 80GB PCIe", 312e12, 1.935e12),
    ("A100", 312e12, 1.555e12),
    ("L4", 121e12, 0.3e12),
]

_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16",
          "amx_tile", "amx_bf16", "amx_int8", "avx_vnni", "asimd", "sve")


def gpu_peaks(name: str) -> tuple[float, float] | None:
    """(bf16 dense FLOP/s, memory bytes/s) of a device by its name, None when unknown."""
    for key, flops, bw in GPU_PEAKS:
        if key.lower() in name.lower():
            return flops, bw
    return None


def _cpuinfo() -> dict:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "flags": [f for f in _FLAGS if f in flags]}


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # not installed (llama-cpp-python is an optional extra)
        return None


def describe(device: str = "cpu") -> dict:
    import torch

    from .. import __version__

    cpu = _cpuinfo()
    out = {
        "cpu": cpu["model"], "cpu_flags": cpu["flags"], "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "memory_bytes": _memory_bytes(),
        "python": platform.python_version(), "platform": platform.platform(),
        "torch": torch.__version__, "archlab": __version__,
        "transformers": _version("transformers"), "llama_cpp_python": _version("llama_cpp_python"),
        "device": device,
    }
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(device)
        peaks = gpu_peaks(name)
        out |= {"device_name": name, "device_memory_bytes": torch.cuda.get_device_properties(device).total_memory,
                "cuda": torch.version.cuda, "peak_bf16_flops": peaks[0] if peaks else None,
                "peak_memory_bandwidth": peaks[1] if peaks else None}
    return out
