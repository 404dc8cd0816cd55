"""Issue 12, item 1: a model whose weights cannot fit in free memory is refused before anything is
allocated (archlab.memory, shared by build, load and train); the meta device never is."""

import re

import pytest
import torch

import archlab
from archlab import memory
from archlab.memory import MemoryLimitError
from archlab.model_config import ConfigError

SMALL = 2**16  # 64 KiB free: less than any tiny preset's float32 weights (~150K parameters)


@pytest.fixture
def little_memory(monkeypatch):
    monkeypatch.delenv(memory.ENV, raising=False)
    monkeypatch.setattr(memory, "available", lambda device: SMALL)


def test_build_refuses_weights_beyond_free_memory(little_memory, monkeypatch):
    allocated = []
    monkeypatch.setattr(archlab.Transformer, "init_weights", lambda self: allocated.append(self))
    cfg = archlab.tiny("llama-3-8b")
    params = archlab.analyze(cfg).total_params if hasattr(archlab, "analyze") else None
    with pytest.raises(MemoryLimitError) as e:
        archlab.build(cfg)
    msg = str(e.value)
    assert cfg.name in msg and "float32 weights" in msg and "cpu has 64.0 KiB available" in msg
    assert 'device="meta"' in msg and "bfloat16" in msg and "archlab.tiny(" in msg
    assert "check_memory=False" in msg and "ARCHLAB_NO_MEMORY_CHECK=1" in msg
    if params is not None:
        assert f"{params / 1e6:.2f}M parameters" in msg
    assert isinstance(e.value, ConfigError)  # the CLI reports it as a user error, not a traceback
    assert not allocated


def test_the_estimate_follows_the_dtype(little_memory):
    cfg = archlab.tiny("llama-3-8b")
    with pytest.raises(MemoryLimitError) as f32:
        archlab.build(cfg)
    with pytest.raises(MemoryLimitError, match="bfloat16 weights") as bf16:
        archlab.build(cfg, dtype="bfloat16")
    gib = [float(str(x.value).split("need about ")[1].split(" KiB")[0]) for x in (f32, bf16)]
    assert gib[1] == pytest.approx(gib[0] / 2, abs=0.1)


def test_meta_is_never_refused(monkeypatch):
    monkeypatch.delenv(memory.ENV, raising=False)
    monkeypatch.setattr(memory, "available", lambda device: 0)
    model = archlab.build(archlab.config("llama-3-8b").replace(n_layers=2), device="meta")  # 1.3B parameters
    assert next(model.parameters()).device.type == "meta"


def test_deepseek_v3_is_refused_here_up_front(monkeypatch):
    # the real free-memory query: 2.5 TiB of float32 weights fit no test machine
    monkeypatch.delenv(memory.ENV, raising=False)
    with pytest.raises(MemoryLimitError, match=r"deepseek-v3 has 6\d\d\.\d\dB parameters: its float32 weights need about 2,\d\d\d\.\d GiB"):
        archlab.build("deepseek-v3")


def test_the_check_can_be_turned_off(little_memory, monkeypatch):
    cfg = archlab.tiny("gpt2")
    assert archlab.build(cfg, check_memory=False) is not None
    monkeypatch.setenv(memory.ENV, "1")
    assert archlab.build(cfg) is not None


def test_load_refuses_before_reading_a_tensor(tmp_path, monkeypatch):
    directory = archlab.save(archlab.build(archlab.tiny("qwen3-8b")), tmp_path / "m")
    monkeypatch.delenv(memory.ENV, raising=False)
    monkeypatch.setattr(memory, "available", lambda device: SMALL)
    from archlab.io import safetensors_dir

    read = []
    if hasattr(safetensors_dir, "safe_open"):
        real = safetensors_dir.safe_open
        monkeypatch.setattr(safetensors_dir, "safe_open", lambda *a, **k: read.append(a) or real(*a, **k))
    with pytest.raises(MemoryLimitError, match=re.escape(str(directory)) + r": m has .*float32 weights.*cpu has 64\.0 KiB.*ARCHLAB_NO_MEMORY_CHECK=1"):
        archlab.load(directory)
    assert not read
    assert archlab.load(directory, check_memory=False) is not None


def test_a_cuda_target_is_checked_against_the_device_too(monkeypatch):
    # a load goes through RAM then to the device: RAM may hold it while the GPU cannot
    monkeypatch.delenv(memory.ENV, raising=False)
    monkeypatch.setattr(memory, "available", lambda device: 2**40 if device.type == "cpu" else SMALL)
    # a stand-in GPU on a machine without one (usable_device asks torch whether it has CUDA)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(MemoryLimitError, match=r"cuda(:0)? has 64\.0 KiB available"):
        memory.check_load_memory(archlab.tiny("gpt2"), torch.float32, "cuda")


@pytest.mark.parametrize("device, message", [("cuda", "CUDA is not available"), ("tpu", "not a torch device")])
def test_an_unusable_device_is_named(device, message):
    """torch's own answers are an AssertionError from deep inside (CUDA on a CPU-only build) or
    a list of every device type it knows."""
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match=rf"device='{device}': {message}"):
        archlab.build(archlab.tiny("gpt2"), device=device)
    from archlab.training import TrainError

    with pytest.raises(TrainError, match=rf"--device: device='{device}': {message}"):
        archlab.train("gpt2", "shakespeare", "/nonexistent-run", tiny=True, device=device, steps=1)


# ---- limits MemAvailable does not see: ulimit -v / RLIMIT_AS, and a container's cgroup ----------

def test_an_address_space_limit_is_memory_not_available(tmp_path):
    """Under `ulimit -v` (or a sandbox's RLIMIT_AS) /proc/meminfo still shows the machine's memory:
    a model that fits in RAM but not under the limit must be refused, not die of MemoryError."""
    import subprocess
    import sys

    code = (
        "import resource, torch, archlab, archlab.api, archlab.memory as m\n"
        "resource.setrlimit(resource.RLIMIT_AS, (m._status_bytes('VmSize') + (512 << 20),) * 2)\n"
        "try:\n"
        "    archlab.build(archlab.tiny('llama-3-8b', d_model=2048, n_layers=8))\n"
        "except archlab.memory.MemoryLimitError as e:\n"
        "    print('refused:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "refused:" in out.stdout and "MiB available" in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_cgroup_limit_is_memory_not_available(tmp_path, monkeypatch, version):
    import archlab.memory as m

    cgroup = tmp_path / "cgroup"
    if version == "v2":
        (tmp_path / "fs" / "box").mkdir(parents=True)
        cgroup.write_text("0::/box\n")
        (tmp_path / "fs" / "box" / "memory.max").write_text(str(3 << 30))
        (tmp_path / "fs" / "box" / "memory.current").write_text(str(1 << 30))
    else:
        (tmp_path / "fs" / "memory" / "box").mkdir(parents=True)
        cgroup.write_text("4:memory:/box\n0::/\n")
        (tmp_path / "fs" / "memory" / "box" / "memory.limit_in_bytes").write_text(str(3 << 30))
        (tmp_path / "fs" / "memory" / "box" / "memory.usage_in_bytes").write_text(str(1 << 30))
    monkeypatch.setattr(m, "_CGROUP_FILE", str(cgroup))
    monkeypatch.setattr(m, "_CGROUP_ROOT", tmp_path / "fs")
    assert m._cgroup_headroom() == [2 << 30]
    import torch

    assert m.available(torch.device("cpu")) <= 2 << 30
    (tmp_path / "fs" / ("box/memory.max" if version == "v2" else "memory/box/memory.limit_in_bytes")).write_text(
        "max" if version == "v2" else str(2**63 - 4096))
    assert m._cgroup_headroom() == []  # no limit set: MemAvailable rules
