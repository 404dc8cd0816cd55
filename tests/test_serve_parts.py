"""`archlab serve`'s pieces that need no server: stop strings while streaming, the request
checks, and the command line before any model is loaded."""

from __future__ import annotations

import builtins
import socket

import pytest

from archlab.cli import main
from archlab.serve_engine import StopText
from archlab.serve_requests import RequestError, sampling


def _stream(stops: list[str], text: str, step: int = 1) -> tuple[list[str], bool]:
    """Feeds `text` a few characters at a time, as tokens arrive; returns the deltas sent."""
    s = StopText(stops)
    sent = []
    for end in range(step, len(text) + step, step):
        sent.append(s.feed(text[:end]))
        if s.hit:
            return sent, True
    sent.append(s.feed(text, final=True))
    return sent, s.hit


def test_a_partial_stop_string_is_held_back_until_it_cannot_complete():
    sent, hit = _stream(["abc"], "xxabd")
    # "a", then "ab" could begin "abc": nothing sent for them until "d" rules it out
    assert sent == ["x", "x", "", "", "abd", ""] and not hit


def test_the_text_ends_before_the_first_stop_string():
    for step in (1, 2, 5, 100):
        sent, hit = _stream(["cd", "bcx"], "abcdbcx", step)
        assert "".join(sent) == "ab" and hit, step
    # the earliest match wins, whichever stop string it is
    assert "".join(_stream(["zz", "b"], "abzz")[0]) == "a"


def test_a_partial_stop_string_at_the_end_is_sent():
    # the generation ended (length): the held tail was never a stop string
    sent, hit = _stream(["abc"], "xab")
    assert "".join(sent) == "xab" and not hit


@pytest.mark.parametrize("body, field", [
    ({"temperature": "hot"}, "temperature"), ({"temperature": float("nan")}, "temperature"),
    ({"top_p": 1.5}, "top_p"), ({"max_tokens": True}, "max_tokens"), ({"max_tokens": 2.0}, "max_tokens"),
    ({"stop": [1]}, "stop"), ({"stop": ""}, "stop"), ({"stream": "yes"}, "stream"), ({"n": 0}, "n"),
    ({"stream_options": {"include_usage": 1}}, "stream_options"), ({"tools": [{"type": "function"}]}, "tools"),
])
def test_each_bad_sampling_field_is_named(body, field):
    with pytest.raises(RequestError) as e:
        sampling(body, None)
    assert e.value.param == field and field in str(e.value) and e.value.status == 400


def test_openais_defaults_and_off_values_are_accepted():
    s = sampling({"n": 1, "logprobs": False, "presence_penalty": 0, "top_k": -1, "stop": "x"}, 16)
    assert (s.temperature, s.top_p, s.top_k, s.max_tokens, s.stop) == (1.0, None, None, 16, ["x"])


@pytest.mark.parametrize("argv, flag", [
    (["--port", "0"], "--port"), (["--port", "http"], "--port"), (["--max-new-tokens-limit", "0"], "--max-new-tokens-limit"),
    (["--dtype", "float8"], "--dtype"),
])
def test_bad_options_are_refused_before_loading(argv, flag, capsys):
    # the model does not exist: an error about it would mean it had been looked for first
    assert main(["serve", "no-such-model", *argv]) == 2
    assert flag in capsys.readouterr().err


def test_without_the_extra_the_error_says_what_to_install(monkeypatch, capsys):
    real_import = builtins.__import__

    def no_fastapi(name, *args, **kwargs):
        if name.split(".")[0] in ("fastapi", "uvicorn"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_fastapi)
    assert main(["serve", "no-such-model"]) == 2
    assert "pip install 'archlab[serve]'" in capsys.readouterr().err


def test_a_port_in_use_is_refused_before_loading(capsys):
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "no-such-model", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"--port {port}" in err and "another program listens there" in err and "unknown model" not in err
