"""`archlab serve` with arbitrary or hostile request bodies: every one is answered with 200 or a 4xx in
OpenAI's error shape, never a 500 (an ad-hoc 400-example run of this found nothing; it guards
against regressions)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

import torch  # noqa: E402

import archlab  # noqa: E402
from archlab.serve import create_app  # noqa: E402
from archlab.tokenizer import train_bpe  # noqa: E402
from serve_server import MSGS, NAME, TEMPLATE, TEXTS  # noqa: E402

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=5,
)
FIELDS = st.sampled_from(["model", "messages", "prompt", "max_tokens", "max_completion_tokens", "temperature", "top_p",
                          "top_k", "seed", "stop", "n", "stream", "stream_options", "logprobs", "echo", "tools"])


@pytest.fixture(scope="module")
def http():
    from fastapi.testclient import TestClient

    torch.manual_seed(0)
    model = archlab.build(archlab.tiny("llama-3-8b", vocab_size=300, max_seq_len=96)).eval()
    tok = train_bpe(TEXTS, 300)
    tok.chat_template = TEMPLATE
    with TestClient(create_app(model, tok, NAME, limit=64)) as client:
        yield client


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(["/v1/chat/completions", "/v1/completions"]), fields=st.dictionaries(FIELDS, VALUES, max_size=4),
       valid_base=st.booleans())
def test_any_body_is_answered_without_a_server_error(http, route, fields, valid_base):
    body = {"model": NAME, "messages": MSGS, "prompt": "the fox", "max_tokens": 3} if valid_base else {}
    body.update(fields)
    r = http.post(route, content=json.dumps(body, allow_nan=True))
    assert r.status_code in (200, 400, 404), r.text
    if r.status_code != 200:
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    elif body.get("stream") is True:
        assert r.text.endswith("data: [DONE]\n\n") and '"error"' not in r.text


def test_ids_the_models_embedding_lacks_are_a_400_not_a_500():
    """A tokenizer larger than the model (300 ids beside an embedding of 280): merged tokens of
    the prompt have ids past the model's rows."""
    from fastapi.testclient import TestClient

    model = archlab.build(archlab.tiny("llama-3-8b", vocab_size=280, max_seq_len=96)).eval()
    tok = train_bpe(TEXTS, 300)
    tok.chat_template = TEMPLATE
    assert max(tok.encode("the quick brown fox")) >= 280
    with TestClient(create_app(model, tok, NAME, limit=8)) as http:
        for route, body in (("/v1/chat/completions", {"messages": [{"role": "user", "content": "the quick brown fox"}]}),
                            ("/v1/completions", {"prompt": "the quick brown fox"})):
            r = http.post(route, json={"model": NAME, **body})
            assert r.status_code == 400 and "[0, 280)" in r.json()["error"]["message"], r.text
