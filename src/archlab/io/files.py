"""Reading a model folder's files as if the folder were hostile.

Two rules, for every reader (issue 12):
- A file named by another file (a shard in model.safetensors.index.json) must stay inside the
  folder: a relative name with no `..`, resolving inside the folder, a regular file. Opening
  `../x` or `/etc/...` because an index says so, or a FIFO that blocks forever, is refused.
- The small files (config.json, generation_config.json, tokenizer*.json, the index) are read
  with a size cap and only when regular: a config.json linked to /dev/zero would otherwise be
  read until memory runs out, and a FIFO would block the load forever.

Symbolic links are followed only where they resolve inside the folder, or, for an HF hub
snapshot (<repo>/snapshots/<rev>/), inside that repo's blobs/ folder, where huggingface_hub
itself links every file (huggingface_hub's file_download.py, `_create_symlink`)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath

from ..errors import CheckpointError

MIB = 1 << 20
# Caps: several times the largest published file of each kind, so no real model meets them.
# config.json / generation_config.json / tokenizer_config.json are a few KiB (a chat template
# inside tokenizer_config.json makes some ~100 KiB).
CONFIG_CAP = 16 * MIB
# deepseek-ai/DeepSeek-V3's model.safetensors.index.json (~91k tensors) is ~9 MiB.
INDEX_CAP = 64 * MIB
# google/gemma-3-*'s tokenizer.json (262k tokens) is ~33 MiB, the largest we know of.
TOKENIZER_CAP = 256 * MIB


def _roots(directory: Path) -> list[Path]:
    """Where files of `directory` may resolve to: itself, and an HF hub snapshot's blobs/."""
    d = directory.resolve()
    roots = [d]
    if d.parent.name == "snapshots":
        roots.append(d.parent.parent / "blobs")
    return roots


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == r or path.is_relative_to(r) for r in roots)


def file_named_in(directory: str | Path, name: object, listed_in: str | Path) -> Path:
    """The path of the file that `listed_in` names `name`, refused unless it is a plain
    relative name that stays inside `directory` (no `..`, not absolute, no NUL)."""
    directory = Path(directory)
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{listed_in}: names file {name!r}; expected a non-empty file name inside {directory}")
    pure = PurePosixPath(name)
    if (
        "\x00" in name
        or pure.is_absolute()
        or PureWindowsPath(name).drive
        or PureWindowsPath(name).is_absolute()
        or ".." in pure.parts
        or ".." in PureWindowsPath(name).parts
    ):
        raise CheckpointError(
            f"{listed_in}: names file {name!r}, which is outside its folder {directory}; "
            "expected a relative name with no '..' (a file beside it)"
        )
    return directory / name


def check_regular(path: Path, directory: str | Path | None = None) -> None:
    """Refuse `path` unless it is a regular file (after links) and, given `directory`, resolves
    inside it. Missing files raise FileNotFoundError for the caller to report as it likes."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{path}: is not a regular file (a FIFO, device, socket or folder); refusing to read it")
    if directory is not None:
        real = path.resolve()
        if not _inside(real, _roots(Path(directory))):
            raise CheckpointError(
                f"{path}: resolves to {real}, outside its folder {Path(directory).resolve()}; refusing to read it"
            )


def dangling(path: Path) -> str:
    """Why a path that was listed cannot be found: a link to nothing, or gone."""
    try:
        return f"is a symbolic link to {os.readlink(path)}, which does not exist (a broken download, or a cleaned cache)"
    except OSError:
        return "does not exist (removed while the folder was read)"


def read_capped(path: str | Path, cap: int, directory: str | Path | None = None) -> bytes:
    """The bytes of the regular file `path`, refused when over `cap` bytes. O_NONBLOCK: opening
    a FIFO returns at once (then fstat refuses it) instead of waiting for a writer."""
    path = Path(path)
    check_regular(path, directory)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)  # again on the open file: it may have been swapped since check_regular
        if not stat.S_ISREG(st.st_mode):
            raise CheckpointError(f"{path}: is not a regular file (a FIFO, device, socket or folder); refusing to read it")
        if st.st_size > cap:
            raise CheckpointError(f"{path}: {st.st_size} bytes, over the cap of {cap} bytes ({cap // MIB} MiB) for this file")
        data = f.read(cap + 1)
    if len(data) > cap:  # grew while we read
        raise CheckpointError(f"{path}: over the cap of {cap} bytes ({cap // MIB} MiB) for this file")
    return data


def read_text(path: str | Path, cap: int, directory: str | Path | None = None) -> str:
    try:
        return read_capped(path, cap, directory).decode("utf-8")
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{path}: not UTF-8 text ({e})") from None


def read_json(path: str | Path, cap: int, directory: str | Path | None = None) -> dict:
    """A JSON object from a capped, regular file; any other JSON or bad text is a CheckpointError."""
    try:
        data = json.loads(read_text(path, cap, directory))
    except ValueError as e:  # JSONDecodeError, or an integer over Python's 4300-digit limit
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    except RecursionError:
        raise CheckpointError(f"{path}: JSON nested too deeply to read (no model file nests more than a few levels)") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def cache_dir() -> Path:
    """archlab's cache folder: $ARCHLAB_CACHE, else ~/.cache/archlab (models, built kernels)."""
    return Path(os.environ.get("ARCHLAB_CACHE") or Path.home() / ".cache" / "archlab").expanduser()
