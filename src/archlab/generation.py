"""Text generation with a KV cache: prefill the prompt once, then one token per step.

Prompts of different lengths are left-padded into one batch; padding slots are masked out
of attention and each row's positions start at its first real token, so a row's tokens do
not depend on what else is in the batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

import torch

from .model import Transformer

Prompt = Sequence[int]


def _as_batch(input_ids) -> tuple[list[list[int]], str]:
    """Normalise the accepted prompt forms; the second value remembers which form came in."""
    if isinstance(input_ids, torch.Tensor):
        if input_ids.dim() == 1:
            return [input_ids.tolist()], "tensor1d"
        if input_ids.dim() == 2:
            return input_ids.tolist(), "tensor"
        raise ValueError(f"input_ids: expected [seq] or [batch, seq] token ids, got shape {tuple(input_ids.shape)}")
    if isinstance(input_ids, Sequence) and input_ids and all(isinstance(t, int) for t in input_ids):
        return [list(input_ids)], "list"
    if isinstance(input_ids, Sequence) and input_ids and all(isinstance(p, Sequence) for p in input_ids):
        return [list(p) for p in input_ids], "lists"
    raise ValueError("input_ids: expected a token id list, a list of them, or a LongTensor [batch, seq]")


def _stop_set(stop) -> set[int]:
    if stop is None:
        return set()
    if isinstance(stop, int):
        return {stop}
    return {int(s) for s in stop}


def sample(
    logits: torch.Tensor,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Next token per row from logits (B, V). temperature 0 is greedy (argmax)."""
    # below float32's smallest normal number the temperature itself rounds to 0 in the division;
    # sampling's limit as it falls is the argmax anyway
    if temperature < torch.finfo(torch.float32).tiny:
        return logits.argmax(dim=-1)
    # the largest logit to 0 first: dividing by a tiny temperature then gives 0 and -inf, never
    # inf - inf (a temperature of 1e-45 would otherwise make every probability NaN)
    logits = logits.float()
    logits = (logits - logits.amax(dim=-1, keepdim=True)) / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # drop a token once the more likely ones already hold top_p of the mass (keep at least one)
        drop = probs.cumsum(dim=-1) - probs >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _validate(model: Transformer, prompts: list[list[int]], max_new_tokens: int, temperature, top_k, top_p) -> None:
    def number(x) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens: expected an integer >= 0, got {max_new_tokens!r}")
    if not number(temperature) or temperature < 0:
        raise ValueError(f"temperature: expected a finite number >= 0 (0: greedy), got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise ValueError(f"top_k: expected an integer >= 1, got {top_k!r}")
    if top_p is not None and (not number(top_p) or not 0 < top_p <= 1):
        raise ValueError(f"top_p: expected a number in (0, 1], got {top_p!r}")
    ctx = model.config.max_seq_len
    V = model.config.vocab_size
    for i, p in enumerate(prompts):
        if not p:
            raise ValueError(f"prompt {i} is empty")
        if len(p) > ctx:
            raise ValueError(f"prompt {i} has {len(p)} tokens, longer than the model's context of {ctx}")
        bad = [t for t in p if not 0 <= t < V]
        if bad:
            raise ValueError(f"prompt {i}: token ids must be in [0, {V}), got {bad[:5]}")


@torch.no_grad()
def _steps(
    model: Transformer,
    prompts: list[list[int]],
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    seed: int | None,
    stop: set[int],
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yields (tokens (B,), alive (B,) bool) per step; a row stops after emitting a stop token.
    Generation also ends when the model's context is full."""
    device = model.tok_emb.weight.device
    B = len(prompts)
    longest = max(len(p) for p in prompts)
    # a token predicted from a full context is still valid; feeding it back would not be
    n_steps = min(max_new_tokens, model.config.max_seq_len - longest + 1)
    if n_steps <= 0:
        return
    pad_counts = [longest - len(p) for p in prompts]
    ids = torch.tensor([[0] * n + p for n, p in zip(pad_counts, prompts)], device=device)
    pad = torch.tensor(pad_counts, device=device) if any(pad_counts) else None
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device).manual_seed(seed)
    # the last sampled token needs no cache slot: it is never fed back
    cache = model.new_cache(B, longest + n_steps - 1, pad=pad)
    alive = torch.ones(B, dtype=torch.bool, device=device)
    stop_ids = torch.tensor(sorted(stop), device=device, dtype=torch.long) if stop else None
    logits = model(ids, cache=cache)[:, -1]
    for step in range(n_steps):
        token = sample(logits, temperature, top_k, top_p, generator)
        yield token, alive.clone()
        if stop_ids is not None:
            alive &= ~torch.isin(token, stop_ids)
        if step == n_steps - 1 or not alive.any():
            return
        logits = model(token[:, None], cache=cache)[:, -1]


def generate(
    model: Transformer,
    input_ids,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop: int | Iterable[int] | None = None,
):
    """The new token ids (the prompt excluded) for each prompt.

    input_ids: a list of ids (one prompt; returns a list), a list of such lists of any lengths
    (returns a list of lists), or a LongTensor [batch, seq] (returns a LongTensor [batch, n],
    rows that stopped early filled with their stop token). A stop token is included in the
    output and ends its row. temperature 0 is greedy; seed makes sampling repeatable."""
    prompts, form = _as_batch(input_ids)
    _validate(model, prompts, max_new_tokens, temperature, top_k, top_p)
    stops = _stop_set(stop)
    out: list[list[int]] = [[] for _ in prompts]
    for token, alive in _steps(model, prompts, max_new_tokens, temperature, top_k, top_p, seed, stops):
        for b, (t, a) in enumerate(zip(token.tolist(), alive.tolist())):
            if a:
                out[b].append(t)
    if form in ("list", "tensor1d"):
        return out[0] if form == "list" else torch.tensor(out[0], dtype=torch.long)
    if form == "lists":
        return out
    width = max(len(o) for o in out)
    return torch.tensor([o + [o[-1]] * (width - len(o)) if o else [] for o in out], dtype=torch.long)


def stream(
    model: Transformer,
    input_ids,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop: int | Iterable[int] | None = None,
) -> Iterator:
    """Like generate, but yields tokens as they come: an int per step for one prompt, or per
    step a list with one entry per prompt (None once that prompt has stopped)."""
    prompts, form = _as_batch(input_ids)
    _validate(model, prompts, max_new_tokens, temperature, top_k, top_p)
    single = form in ("list", "tensor1d")
    for token, alive in _steps(model, prompts, max_new_tokens, temperature, top_k, top_p, seed, _stop_set(stop)):
        if single:
            yield int(token[0])
        else:
            yield [t if a else None for t, a in zip(token.tolist(), alive.tolist())]
