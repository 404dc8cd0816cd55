"""archlab chat: a ChatSession keeps the KV cache across turns and prefills only what changed,
its replies equal a stateless generate() of the same conversation (the reference), it makes
room when the context fills, and the loop around it handles Ctrl-C and /commands.

Models are tiny and random, in float64 so that greedy choices are not decided by rounding; the
tokenizer is bytes with a small chat template, and the models' vocabulary is ASCII (128 ids), so
a reply re-encodes to exactly the tokens generated."""

from __future__ import annotations

import dataclasses
import io
import json
import sys

import pytest
import torch

import archlab
from archlab import chat_repl
from archlab.chat_session import ChatError, ChatSession, Turn
from archlab.tokenizer import byte_tokenizer

TEMPLATE = ("{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
            "{% if add_generation_prompt %}<assistant>{% endif %}")


def _tok():
    tok = byte_tokenizer()
    tok.chat_template = TEMPLATE
    return tok


def _model(preset: str = "llama-3-8b", context: int = 256, seed: int = 0):
    torch.manual_seed(seed)
    wide = preset.endswith("+wide")  # a sliding window longer than the conversation: the ring never wraps
    config = archlab.tiny(preset.removesuffix("+wide"), vocab_size=128, max_seq_len=context)
    if wide:
        config = config.replace(attention=dataclasses.replace(config.attention, window=200))
    return archlab.build(config, dtype=torch.float64).eval()


class Calls:
    """Wraps model.forward: the number of tokens of each call; `fail_at`: raise
    KeyboardInterrupt (Ctrl-C) on that call."""

    def __init__(self, model, fail_at: int | None = None):
        self.sizes: list[int] = []
        self.fail_at = fail_at
        inner = model.forward

        def forward(ids, *args, **kwargs):
            self.sizes.append(ids.shape[1])
            if self.fail_at is not None and len(self.sizes) == self.fail_at:
                raise KeyboardInterrupt
            return inner(ids, *args, **kwargs)

        model.forward = forward


def _say(session: ChatSession, text: str) -> Turn:
    turn = Turn()
    for _ in session.reply(text, turn):
        pass
    return turn


def _reference(model, session: ChatSession, messages: list[dict], max_new: int) -> list[int]:
    """Greedy tokens of a fresh, stateless generate() on the rendered conversation."""
    return archlab.generate(model, session.prompt_ids(messages), max_new)


def test_the_cache_is_kept_and_only_the_new_turn_is_prefilled():
    model, tok = _model(), _tok()
    calls = Calls(model)
    s = ChatSession(model, tok, system="be brief", max_new_tokens=5, temperature=0)
    first_prompt = s.prompt_ids(s.messages + [{"role": "user", "content": "hello there"}])
    t1 = _say(s, "hello there")
    assert t1.prefilled == len(first_prompt) and calls.sizes[0] == len(first_prompt)
    assert calls.sizes[1:] == [1] * (len(t1.tokens) - 1)  # then one token per step, the last never fed
    second_prompt = s.prompt_ids(s.messages + [{"role": "user", "content": "and then?"}])
    # the reply re-encodes to its own tokens: the cache holds the first prompt and the reply but its last token
    assert second_prompt[:len(first_prompt) + len(t1.tokens)] == first_prompt + t1.tokens
    calls.sizes.clear()
    t2 = _say(s, "and then?")
    new = len(second_prompt) - (len(first_prompt) + len(t1.tokens) - 1)
    assert t2.prefilled == new == calls.sizes[0] and new < len(second_prompt) // 2


@pytest.mark.parametrize("preset", ["llama-3-8b", "deepseek-v3", "gemma-3-27b", "gemma-3-27b+wide", "qwen3-next-80b-a3b"])
def test_every_reply_equals_a_fresh_prefill_of_the_conversation(preset):
    """KV (rewinds), MLA (rewinds), a sliding ring of 12 (wraps: prefilled again), one of 200
    (never wraps: rewinds) and DeltaNet (a recurrent state: prefilled again) against the
    stateless path, turn after turn."""
    model, tok = _model(preset), _tok()
    s = ChatSession(model, tok, max_new_tokens=6, temperature=0)
    for text in ["hi", "tell me more", "why?", "ok, thanks", "edited"]:
        if text == "edited":
            # the last reply changed (as a template that rewrites old turns would): the prompt now
            # leaves the cache before its end, which a recurrent state or a wrapped ring cannot undo
            s.messages[-1]["content"] = "something else"
        want = _reference(model, s, s.messages + [{"role": "user", "content": text}], 6)
        turn = _say(s, text)
        assert turn.tokens == want, (preset, text)
        prompt = len(s.prompt_ids(s.messages[:-1]))
        if preset in ("llama-3-8b", "gemma-3-27b+wide") and text != "hi":
            assert turn.prefilled < prompt  # rewound, or simply continued
    assert (turn.prefilled == prompt) == (preset in ("qwen3-next-80b-a3b", "gemma-3-27b"))


def test_a_full_context_drops_the_oldest_turns_and_says_so():
    model, tok = _model(context=64), _tok()
    s = ChatSession(model, tok, system="sys", max_new_tokens=8, temperature=0)
    lines = iter(["first question", "second question", "third question", "fourth one", "/bye"])
    err = io.StringIO()
    assert chat_repl.run(s, lambda prompt: next(lines), io.StringIO(), err) == 0
    assert "[context full: dropped the oldest 2 messages]" in err.getvalue()
    assert "Error" not in err.getvalue() and s.messages[0] == {"role": "system", "content": "sys"}
    assert len(s.prompt_ids(s.messages[:-1])) + 8 <= 64
    # after dropping, the reply is still the stateless path's on what is left
    turn = _say(s, "the fifth question")
    assert turn.dropped == 2 and s.messages[0]["role"] == "system"
    assert turn.tokens == _reference(model, s, s.messages[:-1], 8)


def test_a_message_longer_than_the_context_is_refused_and_the_chat_goes_on():
    model, tok = _model(context=64), _tok()
    s = ChatSession(model, tok, max_new_tokens=8, temperature=0)
    with pytest.raises(ChatError, match="holds 64"):
        s.reply("x" * 100)
    assert s.messages == []
    lines = iter(["x" * 100, "short", "/bye"])
    out, err = io.StringIO(), io.StringIO()
    assert chat_repl.run(s, lambda prompt: next(lines), out, err) == 0
    assert "the context holds 64" in err.getvalue() and [m["content"] for m in s.messages][0] == "short"


def test_ctrl_c_stops_the_reply_keeps_it_and_the_next_turn_is_right():
    model, tok = _model(), _tok()
    s = ChatSession(model, tok, max_new_tokens=10, temperature=0)
    full = _reference(model, s, [{"role": "user", "content": "hello"}], 10)
    calls = Calls(model, fail_at=4)  # the prefill, two decode steps, then Ctrl-C inside the forward
    lines = iter(["hello", "go on", "/bye"])
    out, err = io.StringIO(), io.StringIO()
    assert chat_repl.run(s, lambda prompt: next(lines), out, err) == 0
    assert "[stopped]" in err.getvalue()
    partial = s.messages[1]
    assert partial["role"] == "assistant" and partial["content"] == tok.decode(full[:3])
    assert out.getvalue().startswith(tok.decode(full[:3]) + "\n")
    # the cache kept what was fed before the interrupt; the next reply is still the reference's
    assert s.messages[3]["content"] == tok.decode(_reference(model, s, s.messages[:3], 10))
    # and it was kept: the prompt and the two replies' tokens fed before Ctrl-C were not prefilled again
    assert calls.sizes[4] == len(s.prompt_ids(s.messages[:3])) - len(s.prompt_ids(s.messages[:1])) - 2


def test_ctrl_c_at_the_prompt_clears_the_line_and_ctrl_d_quits():
    model, tok = _model(), _tok()
    calls = Calls(model)
    script = [KeyboardInterrupt, "", "   ", EOFError]

    def read(prompt):
        item = script.pop(0)
        if isinstance(item, type):
            raise item
        return item

    err = io.StringIO()
    assert chat_repl.run(ChatSession(model, tok, max_new_tokens=4), read, io.StringIO(), err) == 0
    assert calls.sizes == [] and script == []  # empty lines are ignored, not sent, and do not quit


def test_commands(tmp_path):
    model, tok = _model(), _tok()
    calls = Calls(model)
    s = ChatSession(model, tok, max_new_tokens=3, temperature=0)
    saved = tmp_path / "chat.json"
    lines = iter(["/help", "/nope", "//slash", f"/save {saved}", f"/save {tmp_path}", "/save", "/system be terse", "/system",
                  "hi", "/clear", "/bye"])
    out, err = io.StringIO(), io.StringIO()
    seen = []
    real = s.reply
    s.reply = lambda text, turn=None: (seen.append(text), real(text, turn))[1]
    assert chat_repl.run(s, lambda prompt: next(lines), out, err) == 0
    text = err.getvalue()
    assert "/save FILE" in text and "unknown command /nope" in text and "be terse" in text
    assert f"/save: {tmp_path}" in text and "/save: name a file" in text  # a directory is not replaced
    assert seen == ["/slash", "hi"]  # "/nope" never reached the model; "//" sends a "/"
    assert json.loads(saved.read_text())["messages"][0] == {"role": "user", "content": "/slash"}
    assert s.messages == [{"role": "system", "content": "be terse"}]  # /clear keeps the system message
    assert len([n for n in calls.sizes if n > 1]) == 2


def test_a_reply_cut_by_the_limit_is_marked_and_stats_are_printed():
    model, tok = _model(), _tok()
    s = ChatSession(model, tok, max_new_tokens=4, temperature=0)
    lines = iter(["hi", "/bye"])
    err = io.StringIO()
    chat_repl.run(s, lambda prompt: next(lines), io.StringIO(), err)
    assert " […cut at 4 tokens]" in err.getvalue()
    assert "[4 tokens, " in err.getvalue() and "prompt tokens prefilled, first token" in err.getvalue()


def test_sampling_is_repeatable_with_a_seed_and_options_are_checked():
    model, tok = _model(), _tok()
    a = _say(ChatSession(model, tok, max_new_tokens=8, seed=3), "hi").tokens
    assert a == _say(ChatSession(model, tok, max_new_tokens=8, seed=3), "hi").tokens
    for bad, match in [(dict(temperature=-1), "temperature"), (dict(top_p=2.0), "top_p"),
                       (dict(max_new_tokens=256), "max_new_tokens"), (dict(context=1), "context"),
                       (dict(context=257), "model's context of 256"),
                       (dict(max_new_tokens="8"), "max_new_tokens")]:
        with pytest.raises(ValueError, match=match):
            ChatSession(model, tok, **{"max_new_tokens": 8, **bad})


def test_history_file_is_bounded(tmp_path, monkeypatch):
    readline = pytest.importorskip("readline")
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    path = tmp_path / "cache" / "chat_history"
    save = chat_repl.setup_readline(path)
    for i in range(chat_repl.HISTORY_LINES + 50):
        readline.add_history(f"line {i}")
    save()
    kept = [l for l in path.read_text().splitlines() if l.startswith("line")]
    assert len(kept) == chat_repl.HISTORY_LINES and kept[-1] == f"line {chat_repl.HISTORY_LINES + 49}"
    readline.clear_history()


def test_ctrl_c_before_the_first_token_takes_the_message_back(monkeypatch):
    model, tok = _model(context=64), _tok()
    s = ChatSession(model, tok, max_new_tokens=8, temperature=0)
    s.withdraw(s.reply("hi"))  # a stream never read
    assert s.messages == []

    class Interrupting(io.StringIO):  # Ctrl-C while the context notice is printed, before any token
        def write(self, text):
            if "context full" in text:
                raise KeyboardInterrupt
            return super().write(text)

    s.messages = [{"role": "user", "content": "a" * 20}, {"role": "assistant", "content": "b" * 20}]
    lines = iter(["hi", "/bye"])
    chat_repl.run(s, lambda prompt: next(lines), io.StringIO(), Interrupting())
    assert s.messages == []  # the old turn was dropped to make room, and "hi" taken back
    # and while the conversation is rendered, before reply() returns
    monkeypatch.setattr(s, "_fit", lambda: (_ for _ in ()).throw(KeyboardInterrupt))
    lines = iter(["hi", "/bye"])
    assert chat_repl.run(s, lambda prompt: next(lines), io.StringIO(), io.StringIO()) == 0
    assert s.messages == []


def test_a_template_that_refuses_is_one_line_and_the_chat_goes_on():
    model, tok = _model(), _tok()
    tok.chat_template = "{% if messages|length > 1 %}{{ raise_exception('one message only') }}{% endif %}" + TEMPLATE
    s = ChatSession(model, tok, max_new_tokens=3, temperature=0)
    lines = iter(["one", "two", "/bye"])
    err = io.StringIO()
    assert chat_repl.run(s, lambda prompt: next(lines), io.StringIO(), err) == 0
    assert "one message only" in err.getvalue() and [m["role"] for m in s.messages] == ["user", "assistant"]


def test_the_cache_grows_and_replies_stay_equal(monkeypatch):
    monkeypatch.setattr("archlab.chat_session._FIRST_CAPACITY", 16)
    model, tok = _model(), _tok()
    s = ChatSession(model, tok, max_new_tokens=6, temperature=0)
    capacities = []
    for text in ["hi", "tell me more", "why?"]:
        want = _reference(model, s, s.messages + [{"role": "user", "content": text}], 6)
        assert _say(s, text).tokens == want
        capacities.append(s._cache.capacity)
    assert capacities[0] < capacities[-1] <= 256


def test_a_prompt_near_the_end_of_the_context_gets_a_shorter_reply():
    model, tok = _model(context=64), _tok()
    s = ChatSession(model, tok, max_new_tokens=8, temperature=0)
    text = "q" * 42
    prompt = s.prompt_ids([{"role": "user", "content": text}])
    assert len(prompt) == 60  # 4 tokens of room, not 8
    turn = _say(s, text)
    assert turn.finish == "context" and turn.tokens == archlab.generate(model, prompt, 4)
    assert s._cache.capacity == 64
