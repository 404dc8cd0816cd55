"""One memory check shared by build, load and train: a model whose weights cannot fit is refused
before anything is allocated (`archlab.build("deepseek-v3")` would otherwise start filling 2.5 TiB).

The override is the environment variable ARCHLAB_NO_MEMORY_CHECK=1 (it reaches the CLI and
training too) or, from Python, check_memory=False on build() and load(). The meta device
allocates nothing and is never checked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .model_config import ConfigError, ModelConfig

if TYPE_CHECKING:
    import torch

ENV = "ARCHLAB_NO_MEMORY_CHECK"
OVERRIDE = f"pass check_memory=False or set {ENV}=1"


class MemoryLimitError(ConfigError):
    """A model too large for the memory of the device it would be allocated on; the message gives
    the estimate, the memory found and the ways out."""


def disabled() -> bool:
    return os.environ.get(ENV, "").strip().lower() not in ("", "0", "false", "no")


def _meminfo_available() -> int | None:
    # MemAvailable (Linux >= 3.14) counts reclaimable page cache too, unlike MemFree
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _status_bytes(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _process_limits() -> list[int]:
    """What this process may still take under limits MemAvailable does not see: its address-space
    limit (ulimit -v, a sandbox's RLIMIT_AS) and its cgroup's memory.max (a container's limit:
    /proc/meminfo there shows the host's memory)."""
    found = []
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        used = _status_bytes("VmSize")
        if soft != resource.RLIM_INFINITY and used is not None:
            found.append(max(0, soft - used))
    except (ImportError, OSError, ValueError):
        pass
    found += _cgroup_headroom()
    return found


_CGROUP_FILE, _CGROUP_ROOT = "/proc/self/cgroup", Path("/sys/fs/cgroup")


def _cgroup_headroom() -> list[int]:
    """limit - usage of this process's memory cgroup: v2 (memory.max) or v1 (memory.limit_in_bytes),
    at the path /proc/self/cgroup names or at the mount's root (a container sees its own there)."""
    try:
        with open(_CGROUP_FILE) as f:
            lines = [line.strip().split(":", 2) for line in f if line.count(":") >= 2]
    except OSError:
        return []
    root = _CGROUP_ROOT
    places = []
    for _, controllers, rel in lines:
        if controllers == "":
            places += [(root / rel.lstrip("/"), "memory.max", "memory.current"), (root, "memory.max", "memory.current")]
        elif "memory" in controllers.split(","):
            places += [(root / "memory" / rel.lstrip("/"), "memory.limit_in_bytes", "memory.usage_in_bytes"),
                       (root / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes")]
    for folder, limit_file, usage_file in places:
        try:
            limit = (folder / limit_file).read_text().strip()
            if limit == "max" or int(limit) >= 1 << 60:  # v1 writes "no limit" as a page-rounded 2**63
                continue
            return [max(0, int(limit) - int((folder / usage_file).read_text().strip()))]
        except (OSError, ValueError):
            continue
    return []


def available(device: "torch.device") -> int | None:
    """Bytes free on `device` now (None when unknown: then nothing is refused)."""
    import torch

    try:
        if device.type == "cuda":
            return torch.cuda.mem_get_info(device)[0]
        if device.type != "cpu":
            return None  # mps, xpu...: no portable query
        found = _meminfo_available()
        if found is None:
            found = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        return min([found, *_process_limits()])
    except (AttributeError, ValueError, OSError, RuntimeError, AssertionError):
        return None


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 10**9 else f"{n / 1e6:.2f}M"


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n / 2**10:,.1f} KiB"


def usable_device(device: "str | torch.device | None") -> "torch.device":
    """`device` as torch names it, refused here, by name, when this machine cannot use it (torch's
    own errors are an AssertionError from deep inside or a list of every device type it knows)."""
    import torch

    try:
        dev = torch.device(device if device is not None else "cpu")
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device={device!r}: not a torch device (expected cpu, cuda, cuda:N, mps or meta): {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: CUDA is not available here (torch {torch.__version__}, "
                         f"built with CUDA: {torch.version.cuda or 'no'}); use device='cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


def check(
    cfg: ModelConfig,
    device: "str | torch.device | None",
    bytes_per_param: int,
    *,
    what: str,
    ways_out: str,
    error: type[ValueError] = MemoryLimitError,
    share: int = 1,
    source: str = "",
) -> None:
    """Refuse `cfg` when its parameters x bytes_per_param (over `share` processes) exceed what
    `device` has free. `what` says what those bytes hold; `ways_out` how to do without."""
    dev = usable_device(device)
    if dev.type == "meta" or disabled():
        return
    from .analysis import analyze

    params = analyze(cfg).total_params
    need = params * bytes_per_param // share
    have = available(dev)
    if have is None or need <= have:
        return
    raise error(
        f"{source + ': ' if source else ''}{cfg.name or 'the model'} has {_count(params)} parameters: {what} need about {_size(need)}"
        f"{' per process' if share > 1 else ''} ({bytes_per_param} bytes per parameter"
        f"{f', sharded over {share} processes' if share > 1 else ''}), and {dev} has {_size(have)} available. "
        f"{ways_out}; or, to try anyway, {OVERRIDE}."
    )


def check_weights(cfg: ModelConfig, dtype: "torch.dtype", device: "str | torch.device | None", *, verb: str,
                  source: str = "") -> None:
    """The check for build and load: the weights alone, at `dtype`."""
    name = cfg.name or "the model"
    check(
        cfg, device, dtype.itemsize, source=source,
        what=f"its {str(dtype).removeprefix('torch.')} weights",
        ways_out=(f"{verb.capitalize()} it in a smaller dtype (dtype=\"bfloat16\" halves float32), build it on device=\"meta\" "
                  f"(allocates nothing: enough to count or inspect it)"
                  + (f", or use its small version archlab.tiny({name!r})" if verb == "build" else "")),
    )


def check_load_memory(cfg: ModelConfig, dtype: "torch.dtype", device: "str | torch.device | None", source="") -> None:
    """A load reads every tensor into RAM first, then moves the model to `device`: both must hold it.
    `source`: the file or directory loaded, named in the error."""
    import torch

    check_weights(cfg, dtype, "cpu", verb="load", source=str(source))
    if device is not None and torch.device(device).type not in ("cpu", "meta"):
        check_weights(cfg, dtype, device, verb="load", source=str(source))
