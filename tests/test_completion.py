"""`archlab completion bash|zsh|fish`: scripts written from the parser, that the shells accept
and that complete commands, options, choices and preset names."""

from __future__ import annotations

import shutil
import subprocess

import pytest

import archlab
from archlab.cli import build_parser, main
from archlab import run_options
from archlab.completion import _commands

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


def _script(capsys, shell: str) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def _complete(script: str, words: str, cword: int, tmp_path) -> list[str]:
    """COMPREPLY after a TAB with the line `words`, run in an empty folder (no files to offer)."""
    path = tmp_path / "archlab.bash"
    path.write_text(script)
    cmd = f"source {path} && COMP_WORDS=({words}) && COMP_CWORD={cword} && _archlab && echo ${{COMPREPLY[@]}}"
    run = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert run.returncode == 0, run.stderr
    return run.stdout.split()


@needs_bash
def test_bash_script_is_valid_and_completes(capsys, tmp_path):
    script = _script(capsys, "bash")
    path = tmp_path / "c.bash"
    path.write_text(script)
    check = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    llamas = [n for n in archlab.presets() if n.startswith("lla")]
    assert _complete(script, "archlab compare lla", 2, tmp_path) == llamas
    assert _complete(script, "archlab inspect deepseek-v", 2, tmp_path) == ["deepseek-v2", "deepseek-v2-lite", "deepseek-v3"]
    assert _complete(script, "archlab comp", 1, tmp_path) == ["compare", "completion"]
    assert _complete(script, "archlab compare --no", 2, tmp_path) == ["--no-notes"]
    assert _complete(script, "archlab generate m --quant ''", 4, tmp_path) == list(run_options.QUANTS)


@needs_bash
def test_the_one_line_form_with_the_words_as_a_prefix(capsys, tmp_path):
    """`COMP_WORDS=(...) COMP_CWORD=2 _archlab` on one line gives bash the words as one string."""
    path = tmp_path / "c.bash"
    path.write_text(_script(capsys, "bash"))
    cmd = f"source {path} && COMP_WORDS=(archlab compare lla) COMP_CWORD=2 _archlab && echo ${{COMPREPLY[@]}}"
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=tmp_path, timeout=30).stdout
    assert out.split() == [n for n in archlab.presets() if n.startswith("lla")]


def test_every_command_and_option_is_in_each_script(capsys):
    commands = _commands(build_parser())
    for shell in ("bash", "zsh", "fish"):
        script = _script(capsys, shell)
        for name, (_, p) in commands.items():
            assert name in script, (shell, name)
            for a in p._actions:
                for s in a.option_strings:
                    assert (s if shell != "fish" else s.lstrip("-")) in script, (shell, name, s)
        assert "deepseek-v3" in script


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_script_is_valid(capsys, tmp_path):
    path = tmp_path / "_archlab"
    path.write_text(_script(capsys, "zsh"))
    assert subprocess.run(["zsh", "-n", str(path)], timeout=30).returncode == 0


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_script_is_valid(capsys, tmp_path):
    path = tmp_path / "archlab.fish"
    path.write_text(_script(capsys, "fish"))
    assert subprocess.run(["fish", "--no-execute", str(path)], timeout=30).returncode == 0
