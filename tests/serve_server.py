"""The server the `archlab serve` tests drive: a tiny random Llama with a BPE tokenizer that has a
chat template, served by uvicorn on a free localhost port in a thread (fixtures and helpers
shared by tests/test_serve*.py and benchmarks/serve_overhead.py)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")

import torch  # noqa: E402

import archlab  # noqa: E402
from archlab.serve import create_app  # noqa: E402
from archlab.tokenizer import train_bpe  # noqa: E402

NAME = "tiny-chat"
TEXTS = ["the quick brown fox jumps over the lazy dog " * 3, "héllo wörld 12345", "<|endoftext|> end"] * 20
# role markers around each turn, the EOS ending it (the shape of ChatML, in a vocabulary trained here)
TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{{ eos_token }}{% endfor %}"
            "{% if add_generation_prompt %}<assistant>{% endif %}")
MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "the quick fox?"}]


@contextlib.contextmanager
def running(app):
    """A uvicorn server for `app` on a free localhost port, in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def make_client(url: str):
    # trust_env=False: a proxy set in the environment must not carry requests to localhost
    return openai.OpenAI(base_url=url, api_key="unused", max_retries=0, http_client=httpx.Client(trust_env=False, timeout=60))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A tiny random Llama and a BPE tokenizer with a chat template, as `archlab serve` loads them."""
    folder = tmp_path_factory.mktemp("serve") / "model"
    torch.manual_seed(0)
    archlab.save(archlab.build(archlab.tiny("llama-3-8b", vocab_size=300, max_seq_len=96)), folder)
    tok = train_bpe(TEXTS, 300)
    tok.chat_template = TEMPLATE
    tok.save(folder)
    return folder


@pytest.fixture(scope="module")
def served(folder):
    """(model, tokenizer, base_url, app) with the tiny model served on localhost."""
    model, tok = archlab.load(folder).eval(), archlab.load_tokenizer(folder)
    assert tok.chat_template == TEMPLATE
    app = create_app(model, tok, NAME, limit=64)
    with running(app) as url:
        yield model, tok, url, app


@pytest.fixture(scope="module")
def client(served):
    return make_client(served[2])


def reference(model, tok, ids: list[int], n: int) -> tuple[str, list[int]]:
    """The library's greedy reply: its text (without the stop token) and its tokens."""
    new = archlab.generate(model, ids, n, stop=tok.stop_ids)
    body = new[:-1] if new and new[-1] in tok.stop_ids else new
    return tok.decode(body, skip_special_tokens=True), new


def chat_ids(tok, msgs=MSGS) -> list[int]:
    return tok.encode_prompt(tok.apply_chat_template(msgs, add_generation_prompt=True), templated=True)


class Gated:
    """The server's tokenizer, with its first decode (the worker's first token) held until the
    test lets it go: the client's disconnect is then certain to come while the generation runs."""

    def __init__(self, tok):
        self.tok, self.calls, self.release = tok, 0, threading.Event()

    def __getattr__(self, name):
        return getattr(self.tok, name)

    def decode(self, ids, **kwargs):
        self.calls += 1
        if self.calls == 1:
            assert self.release.wait(30)
        return self.tok.decode(ids, **kwargs)
