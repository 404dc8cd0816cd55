"""The interactive loop of `archlab chat`: line editing, /commands, Ctrl-C, and what is shown
around each reply. The conversation itself is a ChatSession (chat_session.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from .chat_session import ChatSession, Turn

HELP = """commands:
  /help          this list
  /clear         forget the conversation (the system message stays)
  /system TEXT   set the system message and start over (/system alone shows it)
  /save FILE     write the conversation to FILE as JSON
  /bye           quit (so does Ctrl-D)
  //TEXT         send a message that starts with "/"
Ctrl-C stops a reply (it stays in the conversation) or clears the line being typed."""

HISTORY_LINES = 1000  # lines of the history file kept (readline's set_history_length)


def history_path() -> Path:
    root = os.environ.get("ARCHLAB_CACHE") or Path.home() / ".cache" / "archlab"
    return Path(root) / "chat_history"


def setup_readline(path: Path | None = None) -> Callable[[], None]:
    """Line editing and a history file when stdin is a terminal; returns the function that
    saves the history (a no-op where readline is missing: Windows without pyreadline)."""
    if not sys.stdin.isatty():
        return lambda: None
    try:
        import readline
    except ImportError:
        return lambda: None
    path = path or history_path()
    try:
        readline.read_history_file(path)
    except OSError:  # no history yet (or unreadable): start an empty one
        pass
    readline.set_history_length(HISTORY_LINES)

    def save() -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)
        except OSError as e:
            print(f"[chat history not saved: {e}]", file=sys.stderr)

    return save


def _speed(turn: Turn) -> str:
    n = len(turn.tokens) + (turn.finish == "stop")  # the stop token was generated too
    decode = turn.total_s - turn.first_token_s
    rate = f"{(n - 1) / decode:.1f} tok/s" if n > 1 and decode > 0 else "- tok/s"
    return f"[{n} tokens, {turn.prefilled} prompt tokens prefilled, first token {turn.first_token_s * 1000:.0f} ms, {rate}]"


def _command(session: ChatSession, line: str, err) -> bool:
    """Run a /command; False when the chat should end."""
    name, _, arg = line.partition(" ")
    arg = arg.strip()
    if name in ("/bye", "/exit", "/quit"):
        return False
    if name in ("/help", "/?"):
        print(HELP, file=err)
    elif name == "/clear":
        session.clear()
        print("[conversation cleared]", file=err)
    elif name == "/system":
        if arg:
            session.set_system(arg)
            print("[system message set; conversation cleared]", file=err)
        else:
            print(f"[system message: {session.system!r}]" if session.system else "[no system message]", file=err)
    elif name == "/save":
        if not arg:
            print("/save: name a file, e.g. /save chat.json", file=err)
        else:
            try:
                print(f"[saved {len(session.messages)} messages to {session.save(arg)}]", file=err)
            except OSError as e:  # FileExistsError for a directory or a device included
                print(f"/save: {e}", file=err)
    else:
        print(f"unknown command {name}: /help lists them (//text sends a message that starts with /)", file=err)
    return True


def _reply(session: ChatSession, text: str, out, err) -> None:
    turn = Turn()
    stream = None
    try:
        try:
            stream = session.reply(text, turn)
        except ValueError as e:  # ChatError (no room at all), or the template refused the conversation
            print(f"[{e}]", file=err)
            return
        if turn.dropped:
            print(f"[context full: dropped the oldest {turn.dropped} message{'s' * (turn.dropped > 1)}]", file=err)
        for piece in stream:
            out.write(piece)
            out.flush()
    except KeyboardInterrupt:
        if stream is not None:
            session.withdraw(stream)
        out.flush()
        print(file=out)
        print("[stopped]", file=err)
        return
    if turn.finish in ("length", "context"):
        print(f" […cut at {len(turn.tokens)} tokens]", end="", file=err)
        err.flush()
    print(file=out)
    print(_speed(turn), file=err)


def run(session: ChatSession, read_line: Callable[[str], str] | None = None, out=None, err=None,
        save_history: Callable[[], None] = lambda: None, terminal: bool = False) -> int:
    """The chat loop: read a line, run it; 0 when the user quits (Ctrl-D or /bye). terminal: the
    lines come from a terminal through readline, which does not echo a Ctrl-C (a shell shows ^C)."""
    read_line = read_line or input  # looked up now, as are the streams: tests and callers may replace them
    out = out or sys.stdout
    err = err or sys.stderr
    print("archlab chat: /help for commands, Ctrl-C stops a reply, Ctrl-D or /bye quits.", file=err)
    try:
        while True:
            try:
                line = read_line(">>> ")
            except EOFError:
                print(file=err)
                return 0
            except KeyboardInterrupt:  # at the prompt: drop the line, as a shell does
                print("^C" if terminal else "", file=err)
                continue
            if not line.strip():
                continue
            if line.startswith("/") and not line.startswith("//"):
                if not _command(session, line.strip(), err):
                    return 0
                continue
            _reply(session, line[1:] if line.startswith("//") else line, out, err)
    finally:
        save_history()
