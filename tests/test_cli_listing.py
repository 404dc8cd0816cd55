"""compare --no-notes, config files titled by their file name, report -o -, and --json for
inspect and presets (parsed, held to the documented keys and to the analysis)."""

from __future__ import annotations

import json

import pytest

import archlab
from archlab.analysis import Analysis, analyze
from archlab.cli import main
from archlab.cli_json import INSPECT_KEYS, PRESETS_KEYS


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_no_notes_hides_the_conventions(capsys):
    first_line = Analysis.CONVENTIONS.splitlines()[0]
    _, out, _ = _run(capsys, "compare", "gpt2", "llama-3-8b", "--width", "120")
    assert first_line in out
    _, out, _ = _run(capsys, "compare", "gpt2", "llama-3-8b", "--width", "120", "--no-notes")
    assert first_line not in out and "total_params" not in out
    assert "past max" in out  # the note that explains a mark in the table stays
    _, out, _ = _run(capsys, "compare", "gpt2", "--markdown", "--no-notes")
    assert "```" not in out and first_line not in out
    _, out, _ = _run(capsys, "report", "gpt2", "-o", "-", "-q")
    assert "<h2>Conventions</h2>" in out
    _, out, _ = _run(capsys, "report", "gpt2", "-o", "-", "-q", "--no-notes")
    assert "<h2>Conventions</h2>" not in out and "<h2>Published figures and sources</h2>" in out


def test_a_config_file_is_titled_by_its_file_name(capsys, tmp_path):
    path = tmp_path / "my-llama.json"
    path.write_text(json.dumps(archlab.config("llama-3-8b").replace(n_layers=16).to_dict()))
    _, out, _ = _run(capsys, "compare", "llama-3-8b", str(path), "--width", "120")
    header = out.splitlines()[2].split()
    assert header == ["llama-3-8b", "my-llama"]
    _, out, _ = _run(capsys, "compare", str(path), "--json")
    assert json.loads(out)["models"][0]["name"] == "my-llama"
    _, out, _ = _run(capsys, "inspect", str(path), "--plan", "--width", "120")
    assert out.startswith("my-llama (llama): 16 layers")
    _, out, _ = _run(capsys, "report", str(path), "-o", "-", "-q")
    assert "<th>my-llama</th>" in out


def test_report_to_stdout(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, err = _run(capsys, "report", "gpt2", "-o", "-")
    assert rc == 0
    assert out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")
    assert "plot 3/3" in err  # progress stays on stderr
    assert list(tmp_path.iterdir()) == []  # no file named "-"


def test_presets_json(capsys):
    rc, out, _ = _run(capsys, "presets", "--json")
    assert rc == 0
    entries = json.loads(out)
    assert [e["name"] for e in entries] == archlab.presets()
    for e in entries:
        assert list(e) == list(PRESETS_KEYS)
        a = analyze(e["name"])
        assert (e["params"], e["active_params"]) == (a.total_params, a.active_params)
        assert (e["n_layers"], e["max_context"]) == (a.config.n_layers, a.config.max_seq_len)
        assert e["source"] == a.config.source
    assert {e["name"] for e in entries if not e["verified"]} >= {"grok-2.5"}


@pytest.mark.parametrize("name", ["deepseek-v3", "gemma-3-27b", "qwen3-next-80b-a3b"])
def test_inspect_json(capsys, name):
    rc, out, _ = _run(capsys, "inspect", name, "--json")
    assert rc == 0
    e = json.loads(out)
    assert list(e) == list(INSPECT_KEYS)
    cfg, a = archlab.config(name), analyze(name)
    assert (e["params"], e["active_params"], e["vocab_size"]) == (a.total_params, a.active_params, cfg.vocab_size)
    assert len(e["layers"]) == cfg.n_layers == sum(r["last"] - r["first"] + 1 for r in e["plan"])
    assert sum(r["params"] * (r["last"] - r["first"] + 1) for r in e["plan"]) == sum(c.params for c in a.layers)
    assert [x["ffn"] for x in e["layers"]] == [s.ffn for s in cfg.layers]


def test_json_keys_are_documented_in_help(capsys):
    for command, keys in (("presets", PRESETS_KEYS), ("inspect", INSPECT_KEYS)):
        with pytest.raises(SystemExit):
            archlab.cli.build_parser().parse_args([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for key in keys:
            assert f"{key}:" in text, (command, key)


def test_resolving_names_with_and_without_titles(tmp_path):
    from archlab.cli import _resolve_models
    from archlab.model_config import ConfigError

    path = tmp_path / "mine.json"
    path.write_text(json.dumps(archlab.config("gpt2").to_dict()))
    assert [c.name for c in _resolve_models(["gpt2", str(path)])] == ["gpt2", "gpt2"]  # callers without titles
    titles: list[str] = []
    _resolve_models(["llama-3-8b", str(path)], titles=titles)
    assert titles == ["llama-3-8b", "mine"]
    with pytest.raises(ConfigError, match="unknown preset 'gtp2'") as e:
        _resolve_models(["gpt2", "gtp2", str(path)], titles=[])
    assert "'gpt2'" not in str(e.value).split("did you mean")[0]  # only the unknown name is reported
