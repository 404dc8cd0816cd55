"""A conversation with a model that keeps its KV cache between turns.

Each turn renders the whole conversation with the model's chat template and tokenizes it, as
a stateless call would (so the model sees exactly what `archlab.generate` on that prompt would
see), then reuses the cached tokens it shares with the previous turn: the cache is rewound to
the common prefix and only the rest is prefilled. Comparing token ids, rather than trusting
that the new prompt extends the old one, keeps this correct when the template re-renders
earlier turns differently (a reply re-tokenized, a template that drops old reasoning).

When the conversation no longer fits the context, the oldest turns are dropped (the system
message stays) and the caller is told how many."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .chat_defaults import TEMPERATURE, TOP_K, TOP_P
from .cache import Cache, DeltaNetCache, KVCache, MLACache, SlidingKVCache
from .generation import _validate, sample, whole_text

# The cache starts this large (or the context, if smaller) and doubles when a turn needs more:
# a 135M model's cache for 8192 tokens is ~380 MB in float32, for a chat that may use 200.
_FIRST_CAPACITY = 512


class ChatError(ValueError):
    """A turn that cannot run (a message longer than the whole context); the session goes on."""


@dataclass
class Turn:
    """What one reply produced: its tokens (the stop token excluded), the text, why it ended
    ("stop": a stop token; "length": max_new_tokens; "context": no room left; "interrupted"),
    how many prompt tokens were prefilled (the rest came from the cache), how many old messages
    were dropped to make room, and timings in seconds."""

    tokens: list[int] = field(default_factory=list)
    text: str = ""
    finish: str = "stop"
    prefilled: int = 0
    dropped: int = 0
    first_token_s: float = 0.0
    total_s: float = 0.0


def _can_rewind(cache: Cache, n: int) -> bool:
    """Whether the cache can be cut back to its first n tokens. Full-attention and MLA caches
    keep every slot: cutting is forgetting the length. A sliding ring has overwritten the slots
    a shorter prefix would need once it wrapped; a recurrent state (DeltaNet) holds no past
    positions at all, so only an unchanged length works."""
    if n == cache.length:
        return True
    if n > cache.length:
        return False
    for layer in cache.layers:
        if isinstance(layer, (KVCache, MLACache)):
            continue
        if isinstance(layer, SlidingKVCache) and cache.length <= layer.window:
            continue
        return False  # DeltaNetCache, a wrapped ring, or a kind this file does not know
    return True


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class ChatSession:
    """model, tokenizer (with a chat template); system: the system message; context: a cap on
    the tokens a conversation may hold (the model's max_seq_len at most); sampling as in
    archlab.generate, with chat defaults; seed makes a whole session repeatable."""

    def __init__(self, model, tokenizer, system: str | None = None, max_new_tokens: int = 256,
                 temperature: float = TEMPERATURE, top_k: int | None = TOP_K, top_p: float | None = TOP_P,
                 seed: int | None = None, context: int | None = None):
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(f"{getattr(tokenizer, 'source', 'the tokenizer')}: no chat template; use `archlab generate` instead")
        limit = model.config.max_seq_len
        if context is not None and (not isinstance(context, int) or isinstance(context, bool) or not 2 <= context <= limit):
            raise ValueError(f"context: expected an integer from 2 to the model's context of {limit} tokens, got {context!r}")
        self.context = context or limit
        self.temperature, self.top_p = _validate(model, [[0]], max_new_tokens, temperature, top_k, top_p, seed)
        if not 1 <= max_new_tokens < self.context:  # a reply needs its prompt: at least one token of room
            raise ValueError(f"max_new_tokens: expected 1 to {self.context - 1} (the context is {self.context} tokens), "
                             f"got {max_new_tokens}")
        self.model, self.tok = model, tokenizer
        self.max_new_tokens, self.top_k = max_new_tokens, top_k
        self.device = next(model.parameters()).device
        self.generator = torch.Generator(device=self.device).manual_seed(seed) if seed is not None else None
        self.stop = frozenset(getattr(tokenizer, "stop_ids", ()) or ())
        self.system = system
        self.messages: list[dict] = []
        self._cache: Cache | None = None
        self._fed: list[int] = []  # the ids whose keys and values the cache holds, in order
        self.clear()

    # ---- the conversation ------------------------------------------------------------------

    def clear(self) -> None:
        """Forget the conversation (the system message stays) and the cache."""
        self.messages = [{"role": "system", "content": self.system}] if self.system else []
        self._cache, self._fed = None, []

    def set_system(self, text: str | None) -> None:
        self.system = text or None
        self.clear()

    def save(self, path: str | Path) -> Path:
        """The conversation as JSON ({"messages": [...]}), written atomically."""
        from .io.atomic import atomic_file

        with atomic_file(path, "w") as f:
            json.dump({"messages": self.messages}, f, ensure_ascii=False, indent=2)
            f.write("\n")
        return Path(path)

    def prompt_ids(self, messages: list[dict] | None = None) -> list[int]:
        """The ids a stateless call would prompt the model with for this conversation."""
        text = self.tok.apply_chat_template(self.messages if messages is None else messages, add_generation_prompt=True)
        return self.tok.encode_prompt(text, templated=True)

    def _fit(self) -> tuple[list[int], int]:
        """The prompt ids, after dropping the oldest turns until the prompt and a full reply fit
        the context; and how many messages were dropped. A turn is dropped whole (from one user
        message to the next), since templates may insist that roles alternate."""
        dropped = 0
        while True:
            ids = self.prompt_ids()
            if len(ids) + self.max_new_tokens <= self.context:
                return ids, dropped
            first = 1 if self.messages and self.messages[0]["role"] == "system" else 0
            users = [i for i, m in enumerate(self.messages) if i >= first and m["role"] == "user"]
            if len(users) < 2:  # only the newest message is left to drop
                if len(ids) < self.context:  # fits, with a shorter reply
                    return ids, dropped
                raise ChatError(f"the message needs {len(ids)} tokens with the conversation's system message and "
                                f"template; the context holds {self.context}")
            cut = users[1]
            dropped += cut - first
            del self.messages[first:cut]

    # ---- one turn ----------------------------------------------------------------------------

    def _ensure_cache(self, need: int) -> None:
        """A cache that can hold `need` tokens; a larger one starts empty (its contents are
        prefilled again: rare, as the capacity doubles)."""
        if self._cache is not None and self._cache.capacity >= need:
            return
        old = self._cache.capacity if self._cache is not None else 0
        capacity = min(self.context, max(need, 2 * old, _FIRST_CAPACITY))
        self._cache, self._fed = self.model.new_cache(1, capacity), []

    def _forward(self, ids: list[int]) -> torch.Tensor:
        """Feed ids after what the cache holds; the next token's logits (1, V)."""
        cache = self._cache
        self._fed.extend(ids)
        try:
            h = self.model(torch.tensor([ids], device=self.device), cache=cache, return_hidden=True)
        except BaseException:
            # interrupted (Ctrl-C) or failed inside the forward: the cache's length was not advanced.
            # Slots past it are simply overwritten later, unless a layer updates state in place.
            del self._fed[cache.length:]
            if any(isinstance(c, (DeltaNetCache, SlidingKVCache)) for c in cache.layers):
                self._cache, self._fed = None, []
            raise
        return self.model.logits(h[:, -1])

    def _prefill(self, ids: list[int]) -> tuple[torch.Tensor, int]:
        """Logits after the prompt `ids`, feeding only what the cache does not already hold;
        returns them with the number of tokens fed."""
        self._ensure_cache(min(len(ids) + self.max_new_tokens - 1, self.context))  # a reply may have less room (_fit)
        keep = min(_common_prefix(self._fed, ids), len(ids) - 1)  # at least one token gives logits
        if not _can_rewind(self._cache, keep):
            keep = 0
            self._cache, self._fed = self.model.new_cache(1, self._cache.capacity), []
        self._cache.length = keep
        del self._fed[keep:]
        return self._forward(ids[keep:]), len(ids) - keep

    def reply(self, text: str, turn: Turn | None = None) -> Iterator[str]:
        """Add the user message `text` and return the stream of the reply's text. Room is made
        now (turn.dropped says how many old messages went; ChatError if the message cannot fit
        at all), the reply is generated as the stream is read. The reply joins the conversation
        when the stream ends, also when it is interrupted (KeyboardInterrupt raised inside it:
        the partial reply is kept, then the interrupt goes on to the caller). `turn` (a Turn) is
        filled in with the tokens, the reason it ended and the counts."""
        turn = turn if turn is not None else Turn()
        self.messages.append({"role": "user", "content": text})
        try:
            ids, turn.dropped = self._fit()
        except BaseException:  # ChatError, a template that refuses the conversation, Ctrl-C: the message goes
            self.messages.pop()
            raise
        return self._stream(ids, turn)

    def withdraw(self, stream: Iterator[str]) -> None:
        """Take back the message of a reply whose stream was never read (Ctrl-C between reply()
        and the first token): left in, it would be a user message without an answer."""
        import inspect

        if inspect.getgeneratorstate(stream) == inspect.GEN_CREATED:
            stream.close()
            if self.messages and self.messages[-1]["role"] == "user":
                self.messages.pop()

    @torch.no_grad()
    def _stream(self, ids: list[int], turn: Turn) -> Iterator[str]:
        import time

        start = time.perf_counter()
        shown = ""
        try:
            logits, turn.prefilled = self._prefill(ids)
            # a prompt that nearly fills the context leaves a shorter reply (see _fit)
            room = min(self.max_new_tokens, self.context - len(ids))
            turn.finish = "length" if room == self.max_new_tokens else "context"
            for i in range(room):
                t = int(sample(logits, self.temperature, self.top_k, self.top_p, self.generator)[0])
                if i == 0:
                    turn.first_token_s = time.perf_counter() - start
                if t in self.stop:
                    turn.finish = "stop"
                    break
                turn.tokens.append(t)
                text_so_far = whole_text(self.tok, turn.tokens)
                if text_so_far is not None and len(text_so_far) > len(shown):
                    yield text_so_far[len(shown):]
                    shown = text_so_far
                if i < room - 1:  # the last token is never fed back: nothing would read it
                    logits = self._forward([t])
        except KeyboardInterrupt:
            turn.finish = "interrupted"
            raise
        finally:
            turn.total_s = time.perf_counter() - start
            turn.text = self.tok.decode(turn.tokens, skip_special_tokens=True)
            if turn.finish != "interrupted" or turn.tokens:
                self.messages.append({"role": "assistant", "content": turn.text})
            else:  # stopped before any reply: the question stays unanswered, not answered by ""
                self.messages.pop()
        if len(turn.text) > len(shown):
            yield turn.text[len(shown):]
