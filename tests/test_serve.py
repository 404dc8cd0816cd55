"""`archlab serve` (issue 14, deliverable 3): an OpenAI-compatible server, driven by the official
`openai` client against a server started on localhost (tests/serve_server.py). The reference for
every reply is the library path: archlab.generate's tokens for the same prompt ids."""

from __future__ import annotations

import socket
import threading

import pytest
from serve_server import (  # noqa: F401  (client, folder, served: the fixtures)
    MSGS, NAME, chat_ids, client, folder, httpx, make_client, openai, reference, running, served, uvicorn,
)

import archlab
from archlab.serve import create_app


def test_the_command_serves_on_localhost_by_default_and_says_where(folder, monkeypatch, capsys):
    from archlab.cli import main

    with socket.socket() as s:  # a port that is free (the command checks it before loading)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    assert main(["serve", str(folder), "--port", str(port), "--served-model-name", "mine"]) == 0
    (app, kw), = calls
    assert (kw["host"], kw["port"]) == ("127.0.0.1", port) and app.state.server.name == "mine"
    assert f"http://127.0.0.1:{port}/v1" in capsys.readouterr().out
    app.state.server.engine.close()


def test_models_list_names_the_served_model(client):
    assert [m.id for m in client.models.list().data] == [NAME]


def test_chat_completion_equals_library_greedy(served, client):
    model, tok = served[0], served[1]
    ids = chat_ids(tok)
    text, new = reference(model, tok, ids, 20)
    r = client.chat.completions.create(model=NAME, messages=MSGS, max_tokens=20, temperature=0)
    assert r.object == "chat.completion" and r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == text
    assert r.choices[0].finish_reason == ("stop" if new[-1] in tok.stop_ids else "length")
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (len(ids), len(new), len(ids) + len(new))


def test_streamed_chat_equals_library_greedy_with_openai_chunks(served, client):
    model, tok = served[0], served[1]
    ids = chat_ids(tok)
    text, new = reference(model, tok, ids, 20)
    chunks = list(client.chat.completions.create(model=NAME, messages=MSGS, max_tokens=20, temperature=0, stream=True,
                                                 stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-2].choices[0].finish_reason in ("stop", "length") and chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (len(ids), len(new))


def test_completion_equals_library_greedy(served, client):
    model, tok = served[0], served[1]
    prompt = "the quick brown"
    text, new = reference(model, tok, tok.encode_prompt(prompt), 12)
    r = client.completions.create(model=NAME, prompt=prompt, max_tokens=12, temperature=0)
    assert r.choices[0].text == text and r.usage.completion_tokens == len(new)
    streamed = list(client.completions.create(model=NAME, prompt=prompt, max_tokens=12, temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in streamed) == text


def test_max_tokens_ends_with_finish_reason_length(served, client):
    r = client.completions.create(model=NAME, prompt="the lazy dog", max_tokens=1, temperature=0)
    assert r.usage.completion_tokens == 1
    assert r.choices[0].finish_reason == ("stop" if r.choices[0].text == "" else "length")


def test_stop_string_cuts_the_text_streamed_or_not(served, client):
    model, tok = served[0], served[1]
    ids = chat_ids(tok)
    text, _ = reference(model, tok, ids, 40)
    assert len(text) >= 6, f"the tiny model's reply is too short to cut: {text!r}"
    stop = text[3:6]  # three characters, so a partial stop string is possible while streaming
    want = text[:text.find(stop)]
    r = client.chat.completions.create(model=NAME, messages=MSGS, max_tokens=40, temperature=0, stop=[stop, "\x00never"])
    assert r.choices[0].message.content == want and r.choices[0].finish_reason == "stop"
    chunks = client.chat.completions.create(model=NAME, messages=MSGS, max_tokens=40, temperature=0, stop=stop, stream=True)
    # a held-back partial stop string that had been sent would make this longer than `want`
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == want


def test_sampling_parameters_reach_the_library(served, client):
    """temperature, top_p, top_k (an extension, in extra_body) and seed give the library's own
    seeded sample; another seed gives another."""
    model, tok = served[0], served[1]
    new = archlab.generate(model, chat_ids(tok), 10, temperature=1.5, top_p=0.9, top_k=50, seed=7, stop=tok.stop_ids)
    want = tok.decode(new[:-1] if new[-1] in tok.stop_ids else new, skip_special_tokens=True)
    kw = dict(model=NAME, messages=MSGS, max_tokens=10, temperature=1.5, top_p=0.9, extra_body={"top_k": 50})
    assert client.chat.completions.create(seed=7, **kw).choices[0].message.content == want
    assert client.chat.completions.create(seed=8, **kw).choices[0].message.content != want


@pytest.mark.parametrize("kwargs, field", [
    ({"temperature": -0.5}, "temperature"),
    ({"temperature": 2.5}, "temperature"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 64}, "max_tokens"),  # the server's limit, but with the 36-token prompt past the context of 96
    ({"max_tokens": 1000}, "max_tokens"),  # past the server's limit of 64
    ({"max_completion_tokens": -1}, "max_completion_tokens"),
    ({"n": 2}, "n"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"top_p": 0}, "top_p"),
    ({"logprobs": True}, "logprobs"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "user", "content": "fox " * 200}]}, "messages"),  # prompt past the context
    ({"extra_body": {"top_k": "many"}}, "top_k"),
    ({"extra_body": {"seed": 1.5}}, "seed"),
])
def test_bad_chat_request_is_a_400_naming_the_field(client, kwargs, field):
    args = {"model": NAME, "messages": MSGS, "max_tokens": 40, **kwargs}
    if "max_completion_tokens" in kwargs:
        del args["max_tokens"]
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(**args)
    assert e.value.status_code == 400
    assert e.value.body["param"] == field and field in e.value.body["message"]


def test_bad_completion_prompt_is_a_400(client):
    with pytest.raises(openai.BadRequestError, match="prompt"):
        client.completions.create(model=NAME, prompt=[10**6], max_tokens=2)
    with pytest.raises(openai.BadRequestError, match="prompt"):
        client.completions.create(model=NAME, prompt=["a", "b"], max_tokens=2)


def test_unknown_model_is_openais_404(client):
    # OpenAI answers an unknown model with 404 model_not_found (the client's NotFoundError)
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-4o", messages=MSGS)
    assert e.value.body["code"] == "model_not_found" and "gpt-4o" in e.value.body["message"]


@pytest.mark.parametrize("template, words", [
    ("{{ raise_exception('roles must alternate') }}", "roles must alternate"),  # the template's own refusal
    (None, "no chat template"),
])
def test_a_template_that_refuses_or_is_missing_is_a_400(served, client, template, words):
    tok = served[3].state.server.tokenizer
    saved, tok.chat_template = tok.chat_template, template
    try:
        with pytest.raises(openai.BadRequestError) as e:
            client.chat.completions.create(model=NAME, messages=MSGS, max_tokens=2)
    finally:
        tok.chat_template = saved
    assert e.value.body["param"] == "messages" and words in e.value.body["message"]


def test_unknown_routes_answer_in_openais_error_shape(served):
    r = httpx.get(served[2] + "/engines", trust_env=False)
    assert r.status_code == 404 and r.json()["error"]["message"] == "Not Found"
    r = httpx.get(served[2] + "/chat/completions", trust_env=False)
    assert r.status_code == 405 and set(r.json()["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize("body, field", [
    (b"{not json", None), (b"[1, 2]", None), (b'{"model": "tiny-chat"}', "messages"), (b'{"messages": []}', "model"),
    # JSON escapes can spell a lone surrogate, which is not text: the tokenizer refuses it
    (b'{"model": "tiny-chat", "messages": [{"role": "user", "content": "a\\udc80"}]}', "messages"),
    (b'{"model": "tiny-chat", "prompt": "\\ud800"}', "prompt"),
])
def test_malformed_bodies_are_400_in_openais_shape(served, body, field):
    route = "/completions" if b'"prompt"' in body else "/chat/completions"
    r = httpx.post(served[2] + route, content=body, headers={"content-type": "application/json"},
                   trust_env=False)
    assert r.status_code == 400
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["param"] == field


def test_two_concurrent_requests_both_complete(served, client):
    model, tok = served[0], served[1]
    other = [{"role": "user", "content": "héllo wörld"}]
    want = {0: reference(model, tok, chat_ids(tok), 30)[0], 1: reference(model, tok, chat_ids(tok, other), 30)[0]}
    got = {}

    def ask(i: int) -> None:
        msgs = MSGS if i == 0 else other
        if i == 0:
            got[i] = client.chat.completions.create(model=NAME, messages=msgs, max_tokens=30, temperature=0).choices[0].message.content
        else:
            chunks = client.chat.completions.create(model=NAME, messages=msgs, max_tokens=30, temperature=0, stream=True)
            got[i] = "".join(c.choices[0].delta.content or "" for c in chunks)

    threads = [threading.Thread(target=ask, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert got == want


@pytest.mark.slow
def test_smollm2_chat_through_the_server_equals_the_library():
    """The real model, its real chat template (ChatML, <|im_end|> ends a turn) and its packed Q4_1
    weights, as `archlab serve smollm2-135m-instruct --quant keep` serves them."""
    from test_fetch import fetch_smollm2

    path = fetch_smollm2()
    model, tok = archlab.load(path, quant="keep").eval(), archlab.load_tokenizer(path)
    msgs = [{"role": "user", "content": "What is the capital of France? One word."}]
    ids = chat_ids(tok, msgs)
    text, new = reference(model, tok, ids, 24)
    with running(create_app(model, tok, "smollm2")) as url:
        r = make_client(url).chat.completions.create(model="smollm2", messages=msgs, max_tokens=24, temperature=0)
        chunks = make_client(url).chat.completions.create(model="smollm2", messages=msgs, max_tokens=24, temperature=0, stream=True)
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert r.choices[0].message.content == text == streamed and "Paris" in text
    assert r.choices[0].finish_reason == "stop" and r.usage.completion_tokens == len(new) and new[-1] in tok.stop_ids


