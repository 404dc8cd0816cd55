"""`archlab serve` when things go wrong mid-generation: a client that leaves stops its generation
(streamed or not), and a failure inside the model is an OpenAI error body, never a traceback."""

from __future__ import annotations

import json
import socket
import time

import pytest
from serve_server import MSGS, NAME, Gated, folder, httpx, served  # noqa: F401  (folder, served: the fixtures)


class _Broken:
    """A model every attribute of which fails: an error inside the worker's generation."""

    def __getattr__(self, name):
        raise AttributeError(name)


def _wait_until(condition, seconds: float = 30) -> None:
    """Poll `condition` until it holds or `seconds` pass (the asserts after it say which)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("stream", [False, True])
def test_a_failure_inside_the_generation_is_an_openai_error_without_traceback(served, stream):
    engine = served[3].state.server.engine
    saved, engine.model = engine.model, _Broken()
    try:
        body = {"model": NAME, "messages": MSGS, "max_tokens": 4, "stream": stream}
        r = httpx.post(served[2] + "/chat/completions", json=body, trust_env=False, timeout=30)
    finally:
        engine.model = saved
    error = r.json()["error"] if not stream else json.loads(r.text.split("data: ")[2])["error"]
    assert (r.status_code, error["type"], error["code"]) == ((200 if stream else 500), "server_error", "internal_error")
    assert "Traceback" not in r.text and "AttributeError" in error["message"]
    if stream:  # the stream still ends as OpenAI's do
        assert r.text.endswith("data: [DONE]\n\n")


def test_a_client_that_disconnects_mid_stream_stops_its_generation(served):
    engine = served[3].state.server.engine
    gated = Gated(engine.tokenizer)
    engine.tokenizer = gated
    try:
        body = {"model": NAME, "messages": MSGS, "max_tokens": 40, "temperature": 0, "stream": True}
        with httpx.Client(trust_env=False, timeout=30) as h, h.stream("POST", served[2] + "/chat/completions", json=body) as r:
            lines = r.iter_lines()  # held: a dropped line iterator closes httpx's connection
            first = next(lines)
            assert json.loads(first[len("data: "):])["choices"][0]["delta"]["role"] == "assistant"
            _wait_until(lambda: gated.calls > 0)  # the worker is inside the generation
            # the event loop is not held by the generation: other requests are answered meanwhile
            assert httpx.get(served[2] + "/models", trust_env=False, timeout=10).json()["data"][0]["id"] == NAME
        # the response is closed: the server must notice and mark the job while the worker is held
        _wait_until(lambda: engine.current is not None and engine.current.cancelled.is_set())
        assert engine.current is not None and engine.current.cancelled.is_set()
    finally:
        gated.release.set()
        _wait_until(lambda: engine.current is None)
        engine.tokenizer = gated.tok
    # stopped at the token after the held one, not at the 40 asked for; None: the client left
    assert engine.history[-1] == (None, 1)


def test_a_client_that_hangs_up_on_a_whole_reply_stops_its_generation(served):
    engine = served[3].state.server.engine
    gated = Gated(engine.tokenizer)
    engine.tokenizer = gated
    try:
        body = json.dumps({"model": NAME, "messages": MSGS, "max_tokens": 40, "temperature": 0}).encode()
        host, port = served[2].split("//")[1].split("/")[0].split(":")
        # a raw socket, so that the client hangs up exactly when the worker is inside the generation
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            _wait_until(lambda: gated.calls > 0)
        _wait_until(lambda: engine.current is not None and engine.current.cancelled.is_set())
        assert gated.calls == 1 and engine.current.cancelled.is_set()
    finally:
        gated.release.set()
        _wait_until(lambda: engine.current is None)
        engine.tokenizer = gated.tok
    assert engine.history[-1] == (None, 1)
