"""`archlab models` (issue 14, deliverable 4): the runnable models, fetched or not, and the
architecture presets explained as shapes without weights; `archlab fetch --help` names them."""

from __future__ import annotations

import json

import archlab
from archlab.cli import main
from archlab.hub import REGISTRY


def test_models_lists_each_fetchable_model_not_yet_fetched(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ARCHLAB_CACHE", str(tmp_path))
    assert main(["models"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for name in REGISTRY:
        assert f"{name} " in out and f"not fetched: `archlab fetch {name}`" in out
    assert "architecture presets" in out.lower() and "shapes without weights" in out and "--random" in out
    assert f"({len(archlab.presets())}:" in out


def test_models_shows_a_fetched_model_and_its_path(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ARCHLAB_CACHE", str(tmp_path))
    name, entry = next(iter(REGISTRY.items()))
    path = tmp_path / "models" / name / entry.filename
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    assert main(["models", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert listed[name]["fetched"] and listed[name]["path"] == str(path)
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert str(path) in out and "not fetched" not in out


def test_fetch_help_lists_the_known_models(capsys):
    assert main(["fetch", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert all(name in out for name in REGISTRY) and "org/name" in out


def test_models_lists_the_models_in_the_current_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "small.gguf").write_bytes(b"x" * 10)
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    (tmp_path / "hf" / "model.safetensors").write_bytes(b"")
    (tmp_path / "notes").mkdir()  # a folder without weights is not listed
    monkeypatch.chdir(tmp_path)
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "In this folder:" in out and f"{tmp_path / 'small.gguf'}  (GGUF" in out and f"{tmp_path / 'hf'}  (HF folder" in out
    assert str(tmp_path / "notes") not in out
    assert main(["models", "--json"]) == 0
    assert [m["kind"] for m in json.loads(capsys.readouterr().out)["local"]] == ["HF folder", "GGUF"]  # by name
