"""archlab.generate / archlab.stream with hostile arguments, on tiny models built in the child.

Every accepted call that is valid is also checked for correctness against the model's own full
forward (no KV cache, no batching, no padding): each emitted token must be an argmax of the full
forward's last logits over prompt + the tokens before it (greedy), rows stop at a stop token or
when max_new_tokens or the context runs out. A mismatch raises AssertionError, so it counts as a
crash. A value is `bad` only where its type or range cannot be what the argument means (a string
or float token count, a NaN temperature, a token id outside the vocabulary, a string of stop ids)."""

from __future__ import annotations

import math
import random
from pathlib import Path

from fuzzlib.harness import Case

NAME = "generation"
PRESETS = ("llama-3-8b", "gpt2", "deepseek-v3", "gemma-3-27b", "qwen3-next-80b-a3b")
VOCAB, CTX = 96, 32  # a short context, so that running into it takes milliseconds
PROMPT = [5, 17, 3, 42, 8]


def make_seeds(folder: Path) -> None:
    (folder / "presets.txt").write_text("\n".join(PRESETS))  # the models are built in each child


def _model(preset: str):
    import archlab
    import torch

    torch.manual_seed(0)
    return archlab.build(archlab.tiny(preset, vocab_size=VOCAB, max_seq_len=CTX)).eval()


def _check_greedy(model, prompts: list[list[int]], outs: list[list[int]], max_new: int, stop: set[int]) -> None:
    """Each row against the full forward of that row alone (the oracle is the model's forward, not
    the generation code's cache): an argmax at every step (up to float rounding), the right length."""
    import torch

    for p, out in zip(prompts, outs):
        want = min(max_new, CTX - len(p) + 1) if max_new > 0 else 0
        for i, t in enumerate(out):
            with torch.no_grad():
                logits = model(torch.tensor([p + out[:i]]))[0, -1].double()
            top = logits.max().item()
            if logits[t].item() < top - 1e-4 * max(1.0, abs(top)):
                raise AssertionError(f"step {i}: generated {t} (logit {logits[t].item():.6f}) but the full forward's "
                                     f"argmax is {int(logits.argmax())} ({top:.6f}); prompt {p}, out {out}")
            if t in stop:
                if i != len(out) - 1:
                    raise AssertionError(f"went on after stop token {t}: {out}")
                break
        else:
            if len(out) != want:
                raise AssertionError(f"{len(out)} tokens, expected {want} (max_new_tokens {max_new}, prompt {len(p)}, "
                                     f"context {CTX}): {out}")


def _run(preset: str, api: str, ids, max_new, kw: dict, check: tuple | None):
    import archlab
    import torch

    model = _model(preset)
    if callable(ids):
        ids = ids()
    if api == "stream":
        out = list(archlab.stream(model, ids, max_new, **kw))
        if out and isinstance(out[0], list):  # per step, one entry per prompt (None once stopped)
            out = [[s[b] for s in out if s[b] is not None] for b in range(len(out[0]))]
    else:
        out = archlab.generate(model, ids, max_new, **kw)
    if check is not None:
        prompts, stop = check
        rows = out.tolist() if isinstance(out, torch.Tensor) else out
        if rows and not isinstance(rows[0], list):
            rows = [rows]
        if isinstance(out, torch.Tensor) and out.dim() == 2:  # rows that stopped early are filled with their stop
            rows = [r[: r.index(t) + 1] if (t := next((x for x in r if x in stop), None)) is not None else r for r in rows]
        _check_greedy(model, prompts, rows, max_new, stop)
    return out


# ---- hostile values --------------------------------------------------------------------------------

NAN, INF = math.nan, math.inf
COUNTS = [0, -1, -5, 2.0, 3.5, NAN, INF, 2**40, 2**64, True, False, "4", "", None, [4]]
FLOATS = [NAN, INF, -INF, -1.0, -1e-30, 0, 0.0, 1e-45, 5e-324, 1.5, 1e300, 2**64, True, "0.7", "", None, [0.5]]
SEEDS = [-1, -(2**63), 2**63, 2**64, 2**70, 1.5, NAN, "7", "", True, [1], None, 0, 12345]


def _bad_count(v) -> bool:  # max_new_tokens, top_k: a whole number (not a bool)
    return not (isinstance(v, int) and not isinstance(v, bool))


def _bad_float(v) -> bool:
    return isinstance(v, (bool, str, list)) or (isinstance(v, float) and not math.isfinite(v))


def _prompt_value(rng: random.Random):
    """(input_ids or a callable making it, the prompts a valid one means or None, bad, detail)."""
    import_free = [
        ("empty list", [], True),
        ("empty batch row", [[1, 2], []], True),
        ("id = vocab", [1, VOCAB], True),
        ("id huge", [1, 2**63], True),
        ("id negative", [3, -1], True),
        ("float ids", [1.0, 2.0], True),
        ("nested too deep", [[[1, 2]]], True),
        ("string prompt", "hello", True),
        ("strings in list", ["a", "b"], True),
        ("None in list", [1, None], True),
        ("bool ids", [True, False], True),
        ("prompt = context", list(range(CTX)), False),
        ("prompt > context", list(range(CTX + 1)), True),
        ("ragged batch", [[1, 2, 3], [4], [5, 6, 7, 8, 9]], False),
        ("batch with long row", [[1], list(range(CTX + 3))], True),
    ]
    tensors = [
        ("float tensor", lambda t: t.tensor([[1.0, 2.5]]), True),
        ("bool tensor", lambda t: t.tensor([[True, False]]), True),
        ("3-d tensor", lambda t: t.zeros(1, 1, 3, dtype=t.long), True),
        ("0-d tensor", lambda t: t.tensor(3), True),
        ("empty tensor", lambda t: t.zeros(1, 0, dtype=t.long), True),
        ("int32 tensor", lambda t: t.tensor([[1, 2, 3]], dtype=t.int32), False),
        ("tensor ids >= vocab", lambda t: t.tensor([[1, VOCAB + 5]]), True),
        ("tensor 1-d", lambda t: t.tensor([4, 5, 6]), False),
        ("complex tensor", lambda t: t.tensor([[1 + 2j]]), True),
    ]
    if rng.random() < 0.6:
        name, value, bad = rng.choice(import_free)
        valid = None if bad else ([value] if value and isinstance(value[0], int) else value)
        return value, valid, bad, name
    name, make, bad = rng.choice(tensors)

    def build(make=make):
        import torch

        return make(torch)

    valid = {"int32 tensor": [[1, 2, 3]], "tensor 1-d": [[4, 5, 6]]}.get(name)
    return build, valid, bad, name


def case(seeds: Path, rng: random.Random, index: int) -> Case:
    preset = rng.choice(PRESETS)
    api = rng.choice(("generate", "stream"))
    ids, prompts, max_new, kw = PROMPT, [PROMPT], rng.choice([0, 1, 4, 8]), {}
    bad, what = False, []
    names: tuple[str, ...] = ()
    args = ["max_new_tokens", "temperature", "top_k", "top_p", "seed", "stop", "input_ids"]
    # each argument once: a second draw would replace the first, whose badness was already counted
    for arg in rng.sample(args, rng.choice([1, 1, 2])):
        if arg == "max_new_tokens":
            max_new = rng.choice(COUNTS)
            b = _bad_count(max_new) or max_new < 0
            what.append(f"max_new_tokens={max_new!r}")
        elif arg == "input_ids":
            ids, prompts, b, name = _prompt_value(rng)
            what.append(f"input_ids: {name}")
        elif arg == "top_k":
            v = rng.choice(COUNTS + [1, 10**9])
            kw["top_k"] = v
            b = v is not None and (_bad_count(v) or v < 1)
            what.append(f"top_k={v!r}")
        elif arg == "seed":
            v = rng.choice(SEEDS)
            kw["seed"] = v
            b = isinstance(v, (bool, str, float, list))
            what.append(f"seed={v!r}")
        elif arg == "stop":
            v = rng.choice([VOCAB + 3, -1, 2**70, [[1]], "12", "a", [1.5], 1.5, [None], True, [], 17, [17, 42], ""])
            kw["stop"] = v
            b = isinstance(v, (str, float, bool, dict)) or (isinstance(v, list) and any(not isinstance(x, int) or isinstance(x, bool) for x in v))
            what.append(f"stop={v!r}")
        else:  # temperature, top_p
            v = rng.choice(FLOATS)
            kw[arg] = v
            b = _bad_float(v) or (v is not None and v < 0) or (arg == "temperature" and v is None)
            if arg == "top_p" and isinstance(v, (int, float)) and not isinstance(v, bool) and not 0 < v <= 1:
                b = True
            what.append(f"{arg}={v!r}")
        bad = bad or b
        names += (arg, "prompt") if arg == "input_ids" else (arg,)
    # a valid call under greedy decoding is checked against the full forward
    temperature = kw.get("temperature", 0.0)
    greedy = isinstance(temperature, (int, float)) and not isinstance(temperature, bool) and 0 <= temperature < 1e-38
    stop = kw.get("stop")
    check = None
    if not bad and greedy and prompts is not None:
        check = (prompts, {stop} if isinstance(stop, int) else set(stop) if isinstance(stop, list) else set())
    detail = f"{preset} {api}: " + ", ".join(what)

    def run(folder, preset=preset, api=api, ids=ids, max_new=max_new, kw=dict(kw), check=check):
        return _run(preset, api, ids, max_new, kw, check)

    return Case(NAME, f"{api}-{what[0].split('=')[0].split(':')[0]}", detail, run, bad=bad, names=names)


def references(seeds: Path) -> dict:
    return {}
