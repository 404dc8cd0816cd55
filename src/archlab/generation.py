"""Text generation with a KV cache: prefill the prompt once, then one token per step.

Prompts of different lengths are left-padded into one batch; padding slots are masked out
of attention and each row's positions start at its first real token, so a row's tokens do
not depend on what else is in the batch.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence

import torch

from .model import Transformer

Prompt = Sequence[int]


def _as_batch(input_ids) -> tuple[list[list[int]], str]:
    """Normalise the accepted prompt forms; the second value remembers which form came in."""
    if isinstance(input_ids, torch.Tensor):
        if input_ids.dtype == torch.bool or input_ids.dtype.is_floating_point or input_ids.dtype.is_complex:
            # a bool or float tensor is not token ids (embedding would fail deep inside the model)
            raise ValueError(f"input_ids: expected an integer tensor of token ids, got dtype {input_ids.dtype}")
        if input_ids.dim() == 1:
            return [input_ids.tolist()], "tensor1d"
        if input_ids.dim() == 2:
            return input_ids.tolist(), "tensor"
        raise ValueError(f"input_ids: expected [seq] or [batch, seq] token ids, got shape {tuple(input_ids.shape)}")
    # a str is a Sequence of one-character strs: text goes through a tokenizer first
    if isinstance(input_ids, Sequence) and not isinstance(input_ids, (str, bytes)) and not input_ids:
        raise ValueError("input_ids: the prompt is empty (no token ids)")
    if isinstance(input_ids, Sequence) and not isinstance(input_ids, (str, bytes)):
        if all(_is_id(t) for t in input_ids):
            return [[int(t) for t in input_ids]], "list"
        if all(isinstance(p, Sequence) and not isinstance(p, (str, bytes)) for p in input_ids):
            rows = [list(p) for p in input_ids]
            for i, row in enumerate(rows):
                wrong = [t for t in row if not _is_id(t)]
                if wrong:
                    raise ValueError(f"input_ids: prompt {i}: token ids must be integers, got {wrong[0]!r}")
            return [[int(t) for t in row] for row in rows], "lists"
    raise ValueError("input_ids: expected a token id list, a list of them, or a LongTensor [batch, seq], "
                     f"got {_short(input_ids)}")


def _is_id(t) -> bool:
    # bool is an int subclass, but True as a token id is a slip, not id 1
    return isinstance(t, numbers.Integral) and not isinstance(t, bool)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _stop_set(stop, vocab_size: int) -> set[int]:
    """The stop ids; ids the model cannot emit (a tokenizer's beyond the embedding) cannot stop it."""
    if stop is None:
        return set()
    if _is_id(stop):
        ids = [int(stop)]
    elif isinstance(stop, (str, bytes, Mapping)) or not isinstance(stop, Iterable):
        raise ValueError(f"stop: expected a token id or a collection of token ids, got {_short(stop)}")
    else:
        ids = list(stop.tolist() if isinstance(stop, torch.Tensor) else stop)
        wrong = [s for s in ids if not _is_id(s)]
        if wrong:
            raise ValueError(f"stop: token ids must be integers, got {_short(wrong[0])} in {_short(stop)}")
    return {int(s) for s in ids if 0 <= s < vocab_size}


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
        # the most likely token always stays: a top_p below float32's range (5e-324) compares as 0,
        # which would drop every token and leave softmax only NaN
        drop[..., 0] = False
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _finite_number(x) -> float | None:
    """x as a float when it is a finite real number (not a bool), else None."""
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return None
    try:
        x = float(x)  # an int past float's range overflows here, not in a torch op later
    except OverflowError:
        return None
    return x if math.isfinite(x) else None


def _validate(model: Transformer, prompts: list[list[int]], max_new_tokens: int, temperature, top_k, top_p,
              seed=None) -> tuple[float, float | None]:
    """Checks every argument; returns temperature and top_p as floats."""
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens: expected an integer >= 0, got {_short(max_new_tokens)}")
    t = _finite_number(temperature)
    if t is None or t < 0:
        raise ValueError(f"temperature: expected a finite number >= 0 (0: greedy), got {_short(temperature)}")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise ValueError(f"top_k: expected an integer >= 1, got {_short(top_k)}")
    p = None if top_p is None else _finite_number(top_p)
    if top_p is not None and (p is None or not 0 < p <= 1):
        raise ValueError(f"top_p: expected a number in (0, 1], got {_short(top_p)}")
    # torch.Generator.manual_seed's range; it raises RuntimeError on anything else
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not -(2**63) <= seed < 2**64):
        raise ValueError(f"seed: expected an integer in [-2**63, 2**64), got {_short(seed)}")
    ctx = model.config.max_seq_len
    V = model.config.vocab_size
    for i, prompt in enumerate(prompts):
        if not prompt:
            raise ValueError(f"prompt {i} is empty")
        if len(prompt) > ctx:
            raise ValueError(f"prompt {i} has {len(prompt)} tokens, longer than the model's context of {ctx}")
        bad = [tok for tok in prompt if not 0 <= tok < V]
        if bad:
            raise ValueError(f"prompt {i}: token ids must be in [0, {V}), got {bad[:5]}")
    return t, p


# a row's stop is noticed on the host only every this many steps: reading `alive` back each step
# would wait for the device every token; the extra steps of a finished batch are discarded
STOP_CHECK_EVERY = 8

_COMPILED: dict = {}


def _decode_fn(model: Transformer, compile: bool | str):
    """The decode step: the ordinary forward (cache slices grow each token), or with compile the
    static step (Transformer.decode_step), compiled once per process (per model through
    dynamo's guards: each model and batch shape traces once). compile=True:
    torch.compile with inductor, and CUDA graphs ("reduce-overhead") on CUDA; a string names
    another torch.compile backend ("eager" only traces, for tests)."""
    if not compile:
        # the ids are the model's own samples: no need for forward's checks of them
        return lambda ids, cache: model.logits(model._hidden(ids, cache, None))
    device = next(model.parameters()).device
    backend = compile if isinstance(compile, str) else "inductor"
    mode = "reduce-overhead" if backend == "inductor" and device.type == "cuda" else None
    # the unbound method, compiled once per process: kept on the model, it would not pickle
    # or deepcopy with it, and a bound method would keep every model ever compiled alive
    if (backend, mode) not in _COMPILED:
        _COMPILED[(backend, mode)] = torch.compile(Transformer.decode_step, backend=backend, mode=mode)
    step = _COMPILED[(backend, mode)]
    return lambda ids, cache: step(model, ids, cache)


def _capacity(model: Transformer, needed: int, compile) -> int:
    if not compile:
        return needed
    # the compiled step's shapes include the capacity: rounded up, so that generations of
    # similar lengths share one compiled graph instead of each tracing its own
    return min(-(-needed // 256) * 256, max(model.config.max_seq_len, needed))


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
    compile: bool | str = False,
    check_every: int = STOP_CHECK_EVERY,
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yields (tokens (B,), alive (B,) bool, or None when no stop ids were given) per step; a
    row stops after emitting a stop token. Generation also ends when the model's context is
    full. Nothing in the loop reads back from the device unless stop ids are given, and then
    once every `check_every` steps (the steps after every row stopped yield rows all dead)."""
    device = next(model.parameters()).device  # not tok_emb.weight: a packed embedding (archlab.quant) has none
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
    cache = model.new_cache(B, _capacity(model, longest + n_steps - 1, compile), pad=pad)
    alive = torch.ones(B, dtype=torch.bool, device=device) if stop else None
    stop_ids = torch.tensor(sorted(stop), device=device, dtype=torch.long) if stop else None
    # the last position's logits only: the others would cost a (T, vocab) head matmul for nothing
    logits = model.logits(model(ids, cache=cache, return_hidden=True)[:, -1])
    step_fn = _decode_fn(model, compile)
    graphs = False
    if compile:
        cache.start_static()
        graphs = device.type == "cuda" and not isinstance(compile, str)
        if graphs:
            # CUDA graphs replay into fixed addresses: the cache is written in place, not an input
            for t in (*cache.tensors(), cache.slot, *(getattr(c, "slots", None) for c in cache.layers), pad):
                if t is not None:
                    torch._dynamo.mark_static_address(t)
    for step in range(n_steps):
        token = sample(logits, temperature, top_k, top_p, generator)
        if stop_ids is None:
            yield token, None
        else:
            yield token, alive.clone()
            alive &= ~torch.isin(token, stop_ids)
        if step == n_steps - 1 or (alive is not None and step % check_every == check_every - 1 and not alive.any()):
            return
        if graphs:
            torch.compiler.cudagraph_mark_step_begin()
        logits = step_fn(token[:, None], cache)[:, -1]
        if compile:
            cache.length += 1


def generate(
    model: Transformer,
    input_ids,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop: int | Iterable[int] | None = None,
    compile: bool = False,
):
    """The new token ids (the prompt excluded) for each prompt.

    input_ids: a list of ids (one prompt; returns a list), a list of such lists of any lengths
    (returns a list of lists), or a LongTensor [batch, seq] (returns a LongTensor [batch, n],
    rows that stopped early filled with their stop token). A stop token is included in the
    output and ends its row. temperature 0 is greedy; seed makes sampling repeatable.
    compile=True: decode with a static cache through a torch.compile'd step (CUDA graphs on
    CUDA); the first call compiles (slow), later calls of similar shapes reuse it."""
    prompts, form = _as_batch(input_ids)
    temperature, top_p = _validate(model, prompts, max_new_tokens, temperature, top_k, top_p, seed)
    _check_compile(compile)
    stops = _stop_set(stop, model.config.vocab_size)
    tokens, alives = [], []
    for token, alive in _steps(model, prompts, max_new_tokens, temperature, top_k, top_p, seed, stops, compile):
        tokens.append(token)
        alives.append(alive)
    # one read back at the end, not one per token
    rows = torch.stack(tokens, dim=1).tolist() if tokens else [[] for _ in prompts]
    if stops and tokens:
        kept = torch.stack(alives, dim=1).tolist()
        out = [[t for t, a in zip(row, keep) if a] for row, keep in zip(rows, kept)]
    else:
        out = rows
    if form in ("list", "tensor1d"):
        return out[0] if form == "list" else torch.tensor(out[0], dtype=torch.long)
    if form == "lists":
        return out
    width = max(len(o) for o in out)
    return torch.tensor([o + [o[-1]] * (width - len(o)) if o else [] for o in out], dtype=torch.long)


def _check_compile(compile) -> None:
    if not isinstance(compile, bool) and not isinstance(compile, str):
        raise ValueError(f"compile: expected True or False, got {_short(compile)}")


def stream(
    model: Transformer,
    input_ids,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop: int | Iterable[int] | None = None,
    compile: bool = False,
) -> Iterator:
    """Like generate, but yields tokens as they come: an int per step for one prompt, or per
    step a list with one entry per prompt (None once that prompt has stopped). compile: as in
    generate."""
    prompts, form = _as_batch(input_ids)
    temperature, top_p = _validate(model, prompts, max_new_tokens, temperature, top_k, top_p, seed)
    _check_compile(compile)
    stops = _stop_set(stop, model.config.vocab_size)
    single = form in ("list", "tensor1d")
    # a stream reads every token back anyway: it ends as soon as every row has stopped
    for token, alive in _steps(model, prompts, max_new_tokens, temperature, top_k, top_p, seed, stops, compile, 1):
        if single:
            yield int(token[0])
        elif alive is None:
            yield token.tolist()
        else:
            yield [t if a else None for t, a in zip(token.tolist(), alive.tolist())]


def whole_text(tokenizer, tokens: list[int]) -> str | None:
    """The text of a growing reply's `tokens` (special tokens skipped), or None while it ends in
    half a UTF-8 character (U+FFFD): a stream waits for the rest of the character rather than
    show the replacement mark. Decoding everything so far, not token by token, keeps
    multi-byte characters whole."""
    text = tokenizer.decode(tokens, skip_special_tokens=True)
    return None if text.endswith("\ufffd") else text
