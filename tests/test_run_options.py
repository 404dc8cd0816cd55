"""The options of `archlab generate` and `archlab chat` (issue 14, deliverables 2 and 4): every bad
value is refused by argparse (exit 2, the option and the value named) before anything is loaded;
an architecture preset is refused with how to get weights, or run tiny and random with --random;
`-` reads stdin; sampling options that do nothing at temperature 0 are said to do nothing."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import archlab
from archlab import run_options
from archlab.cli import main
from test_cli_hostile import byte_model  # noqa: F401 -- a fixture: a tiny llama with the byte tokenizer
from test_prompt_bos import _prompts_seen
from test_quant_native import q4_gguf  # noqa: F401 -- a tiny llama GGUF, Q4_1 linears and a Q8_0 embedding

SRC = str(Path(archlab.__file__).parents[1])


@pytest.fixture
def no_loading(monkeypatch):
    """Every way a run could load a model, made to record the call instead."""
    calls = []
    monkeypatch.setattr(run_options, "load_for_run", lambda *a, **k: calls.append(a) or pytest.fail("loaded"))
    monkeypatch.setattr(archlab, "load", lambda *a, **k: calls.append(a) or pytest.fail("loaded"), raising=False)
    return calls


BAD = [
    (["--temperature", "-1"], "--temperature", "'-1'"), (["--temperature", "nan"], "--temperature", "'nan'"),
    (["--temperature", "inf"], "--temperature", "'inf'"), (["--temperature", "hot"], "--temperature", "'hot'"),
    (["--top-p", "0"], "--top-p", "'0'"), (["--top-p", "1.5"], "--top-p", "'1.5'"), (["--top-p", "nan"], "--top-p", "'nan'"),
    (["--top-k", "0"], "--top-k", "'0'"), (["--top-k", "2.5"], "--top-k", "'2.5'"),
    (["--max-new-tokens", "-1"], "--max-new-tokens", "'-1'"), (["--seed", "x"], "--seed", "'x'"),
    (["--seed", str(2**64)], "--seed", str(2**64)), (["--threads", "0"], "--threads", "'0'"),
    (["--device", "tpu"], "--device", "'tpu'"), (["--dtype", "int3"], "--dtype", "'int3'"),
    (["--quant", "q2"], "--quant", "'q2'"),
]


@pytest.mark.parametrize("command", ["generate", "chat"])
@pytest.mark.parametrize("flags,option,value", BAD)
def test_a_bad_option_is_refused_before_loading(no_loading, capsys, command, flags, option, value):
    positional = ["smollm2-135m-instruct"] + (["Hello"] if command == "generate" else [])
    assert main([command, *positional, *flags]) == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and value in err, err
    assert no_loading == []


def test_refusals_import_no_torch():
    """Checked while the command line is read: not even torch is imported for a refusal."""
    code = ("import sys; from archlab.cli import main; rc = main(['generate', 'smollm2-135m-instruct', 'hi', "
            "'--temperature', '-1']); assert rc == 2 and 'torch' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": SRC}, capture_output=True)


def test_defaults_are_shown_in_help(capsys):
    assert main(["generate", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for shown in ("(default 64)", "greedy (default 0)", "(default float32)", "(default: keep for a GGUF on the CPU",
                  "- reads it from standard input", f"may use: {run_options.default_threads()} here"):
        assert shown in out, shown


@pytest.mark.parametrize("name", ["gpt2", "llama-3-8b"])
def test_an_architecture_preset_says_how_to_get_weights(no_loading, capsys, name):
    assert main(["generate", name, "Hello"]) == 2
    err = capsys.readouterr().err
    assert f"{name!r} is an architecture preset" in err and "archlab fetch" in err
    assert "smollm2-135m-instruct" in err and ".gguf" in err and "--random" in err
    assert no_loading == []


def test_random_needs_a_preset(no_loading, capsys):
    assert main(["generate", "smollm2-135m-instruct", "Hello", "--random"]) == 2
    assert "--random" in capsys.readouterr().err and no_loading == []


@pytest.mark.parametrize("argv", [["chat", "gpt2", "--random"], ["run", "gpt2", "--random"],
                                  ["generate", "gpt2", "Hi", "--random", "--chat"]])
def test_random_with_a_chat_template_is_refused_before_building(no_loading, capsys, monkeypatch, argv):
    monkeypatch.setattr(run_options, "random_model", lambda *a, **k: pytest.fail("built"))
    assert main(argv) == 2
    assert "no chat template" in capsys.readouterr().err and no_loading == []


def test_random_runs_a_tiny_random_preset(capsys):
    assert main(["generate", "gpt2", "Hello", "--random", "--max-new-tokens", "3"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("Hello") and "gibberish" in err and "3 tokens" in err


def test_random_model_is_the_tiny_preset_over_bytes():
    model, tok = run_options.random_model("llama-3-8b", "cpu", None)
    assert model.config == archlab.tiny("llama-3-8b", vocab_size=256) and len(tok) == 256
    assert tok.decode(tok.encode("any text, é ✓")) == "any text, é ✓"


@pytest.mark.parametrize("device,why", [("cuda", "no CUDA device"), ("mps", "Metal (MPS) is not available")])
def test_an_unavailable_device_is_named_before_loading(monkeypatch, capsys, device, why):
    available = torch.cuda.is_available() if device == "cuda" else torch.backends.mps.is_available()
    if available:
        pytest.skip(f"needs a machine without {device}: the refusal is the point")
    monkeypatch.setattr(archlab, "load", lambda *a, **k: pytest.fail("loaded"), raising=False)
    assert main(["generate", "smollm2-135m-instruct", "Hello", "--device", device]) == 2
    assert f"--device {device}: " in (err := capsys.readouterr().err) and why in err


def test_stdin_prompt(byte_model, monkeypatch, capsys):  # noqa: F811
    monkeypatch.setattr(sys, "stdin", io.StringIO("from stdin"))
    assert main(["generate", str(byte_model), "-", "--max-new-tokens", "2"]) == 0
    assert capsys.readouterr().out.startswith("from stdin")


def test_empty_stdin_is_refused_before_loading(no_loading, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["generate", "smollm2-135m-instruct", "-"]) == 2
    assert "prompt is empty (nothing on standard input)" in capsys.readouterr().err and no_loading == []


def test_max_new_tokens_zero_prints_the_prompt_and_no_nan(byte_model, capsys):  # noqa: F811
    assert main(["generate", str(byte_model), "abc", "--max-new-tokens", "0"]) == 0
    out, err = capsys.readouterr()
    assert out == "abc\n"
    assert "0 tokens" in err and "nan" not in err and err.startswith("load ")


def test_stats_line():
    assert run_options.stats_line(0.42, 0, 0.0, 0.0) == "load 0.4 s, 0 tokens"
    assert run_options.stats_line(0.42, 1, 0.12, 0.12) == "load 0.4 s, prefill+first token 120 ms, 1 token"
    assert run_options.stats_line(0.4, 64, 0.12, 1.52) == "load 0.4 s, prefill+first token 120 ms, 64 tokens, 45.0 tok/s"


@pytest.mark.parametrize("flags,named", [(["--top-k", "5", "--seed", "1"], "--top-k, --seed"), (["--top-p", "0.9"], "--top-p")])
def test_sampling_options_at_temperature_zero_are_said_to_do_nothing(byte_model, capsys, flags, named):  # noqa: F811
    assert main(["generate", str(byte_model), "ab", "--max-new-tokens", "1", *flags]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == [f"archlab: warning: {named} ignored at --temperature 0 (greedy decoding); "
                        "give a temperature > 0 to sample"]


def test_no_warning_when_sampling(byte_model, capsys):  # noqa: F811
    assert main(["generate", str(byte_model), "ab", "--max-new-tokens", "1", "--temperature", "0.7", "--top-k", "5"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_threads_option_sets_torch_threads(byte_model, capsys):  # noqa: F811
    before = torch.get_num_threads()
    try:
        assert main(["generate", str(byte_model), "ab", "--max-new-tokens", "1", "--threads", "2"]) == 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_default_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert run_options.default_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert run_options.default_threads() == len(os.sched_getaffinity(0))


def test_quant_default_keeps_gguf_blocks_on_the_cpu(monkeypatch):
    from archlab.api import choose_quant
    from archlab.quant import native

    monkeypatch.setattr(native, "available", lambda: True)
    assert choose_quant(Path("m.gguf"), None, "cpu") == "keep"
    assert choose_quant(Path("m.gguf"), "none", "cpu") is None
    assert choose_quant(Path("m.gguf"), None, "cuda") is None
    assert choose_quant(Path("hf-folder"), None, "cpu") is None
    assert choose_quant(Path("hf-folder"), "int8", "cpu") == "int8"
    monkeypatch.setattr(native, "available", lambda: False)
    assert choose_quant(Path("m.gguf"), None, "cpu") is None


def test_system_wraps_the_prompt_in_the_chat_template(byte_model, tmp_path, monkeypatch, capsys):  # noqa: F811
    """--system implies --chat: the model sees the template rendered with both messages."""
    folder = Path(shutil.copytree(byte_model, tmp_path / "m"))
    (folder / "chat_template.jinja").write_text("{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
                                                "{% if add_generation_prompt %}<assistant>{% endif %}")
    tok = archlab.load_tokenizer(folder)
    seen = _prompts_seen(monkeypatch)
    assert main(["generate", str(folder), "the quick fox", "--system", "Be brief.", "--max-new-tokens", "2"]) == 0
    assert capsys.readouterr().out == "\n"  # a chat prompt is not echoed
    rendered = tok.apply_chat_template([{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": "the quick fox"}])
    assert rendered == "<system>Be brief.\n<user>the quick fox\n<assistant>"
    assert seen == [tok.encode_prompt(rendered, templated=True)]


@pytest.mark.slow
def test_building_imports_no_dynamo():
    """Building on the meta device ran torch.nn.init.normal_ there, whose Python reference
    imports torch._dynamo (about 1 s of every `archlab generate` start); build skips it."""
    code = ("import sys, archlab; archlab.build(archlab.tiny('llama-3-8b')); "
            "assert 'torch._dynamo' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": SRC})


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_loading_line_shows_each_stage_on_a_terminal():
    err = _Terminal()
    bar = run_options._Progress("m", 2, err)
    bar.stage("weights")
    bar.stage("tokenizer")
    bar.close()
    shown = err.getvalue()
    assert "loading m: weights" in shown and "loading m: tokenizer" in shown


def test_no_loading_line_off_a_terminal():
    err = io.StringIO()
    bar = run_options._Progress("m", 2, err)
    bar.stage("weights")
    bar.close()
    assert err.getvalue() == ""


@pytest.mark.slow
def test_generate_on_a_gguf_imports_nothing_heavy(q4_gguf, tmp_path):  # noqa: F811
    """The path to the first token imports neither transformers nor matplotlib nor torch._dynamo
    (`python -X importtime` showed each costing seconds of a start)."""
    code = ("import sys, archlab, archlab.tokenizer as t; from archlab.cli import main; "
            "archlab.load_tokenizer = lambda path: t.byte_tokenizer(); "  # the file has no vocabulary
            f"assert main(['generate', {str(q4_gguf)!r}, 'ab', '--max-new-tokens', '1']) == 0; "
            "heavy = [m for m in ('transformers', 'matplotlib', 'torch._dynamo') if m in sys.modules]; "
            "assert not heavy, heavy")
    env = {**os.environ, "PYTHONPATH": SRC, "ARCHLAB_CACHE": str(tmp_path), "ARCHLAB_LOAD_CACHE": "1"}
    for _ in range(2):  # converting, then from the load cache
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "loaded").is_dir()
