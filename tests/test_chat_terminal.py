"""archlab chat as a command: its options, a whole session through main() on a tiny GGUF, and
the real process in a pseudo-terminal (readline editing and history, Ctrl-C, Ctrl-D)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import archlab
from test_prompt_bos import gemma_gguf  # noqa: F401  (a fixture: a tiny Gemma 3 GGUF with a chat template)


def test_cli_chat_samples_by_default_and_runs_a_session(gemma_gguf, tmp_path, monkeypatch, capsys):
    from archlab.cli import build_parser, main

    args = build_parser().parse_args(["chat", "m"])
    assert (args.temperature, args.top_k, args.top_p) == (0.8, 40, 0.9)
    saved = tmp_path / "c.json"
    lines = iter(["hello", f"/save {saved}", "/help", "tell me more", "and more", "and even more", "/bye"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    assert main(["chat", str(gemma_gguf), "--temperature", "0", "--max-new-tokens", "4", "--context", "48",
                 "--system", "be brief"]) == 0
    out, err = capsys.readouterr()
    assert "/save FILE" in err and "[context full: dropped the oldest 2 messages]" in err
    # the first reply is the stateless path's, through the whole command (GGUF, tokenizer, template)
    model, tok = archlab.load(gemma_gguf).eval(), archlab.load_tokenizer(gemma_gguf)
    ids = tok.encode_prompt(tok.apply_chat_template([{"role": "system", "content": "be brief"},
                                                     {"role": "user", "content": "hello"}]), templated=True)
    want = tok.decode(archlab.generate(model, ids, 4, stop=tok.stop_ids), skip_special_tokens=True)
    assert json.loads(saved.read_text())["messages"][2] == {"role": "assistant", "content": want}


@pytest.mark.slow
def test_in_a_terminal_lines_are_edited_recalled_and_kept(gemma_gguf, tmp_path):
    """The real command in a pseudo-terminal: arrow keys edit the line and recall the last one
    (readline), Ctrl-C clears a half-typed line, Ctrl-D quits with 0, the history file is written."""
    import fcntl
    import os
    import pty
    import select
    import signal
    import termios
    import subprocess
    import time

    master, slave = pty.openpty()
    src = str(Path(archlab.__file__).parent.parent)
    env = {**os.environ, "ARCHLAB_CACHE": str(tmp_path), "PYTHONPATH": src, "TERM": "xterm"}

    def terminal() -> None:
        # the pty as the child's controlling terminal (so Ctrl-C is a SIGINT to it, as in a shell),
        # and SIGINT's default action, which a test runner started in the background may have ignored
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    proc = subprocess.Popen([sys.executable, "-m", "archlab", "chat", str(gemma_gguf), "--max-new-tokens", "2"],
                            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True, preexec_fn=terminal)
    os.close(slave)
    seen = b""
    keys_sent = b""

    def until(text: bytes, timeout: float = 120) -> None:
        nonlocal seen
        end = time.monotonic() + timeout
        while text not in seen:
            assert time.monotonic() < end and proc.poll() is None, (text, keys_sent, seen.decode(errors="replace"))
            if select.select([master], [], [], 0.5)[0]:
                seen += os.read(master, 4096)

    until(b">>> ")
    for keys in (b"/hep\x1b[Dl\r", b"\x1b[A\r"):  # Left edits the line; Up recalls it
        seen, keys_sent = b"", keys
        os.write(master, keys)
        until(b">>> ")
        assert b"/save FILE" in seen, seen  # /help ran
    seen, keys_sent = b"", b"half-typed"
    os.write(master, keys_sent)
    until(b"half-typed")  # on screen, then Ctrl-C
    os.write(master, b"\x03")
    until(b">>> ")
    assert b"^C" in seen  # shown, as a shell shows it
    os.write(master, b"\x04")  # Ctrl-D
    assert proc.wait(timeout=60) == 0
    os.close(master)
    # Python's readline keeps one of two equal lines in a row; the cleared line is not kept
    assert (tmp_path / "chat_history").read_text().splitlines()[-1:] == ["/help"]
