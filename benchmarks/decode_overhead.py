"""Decode tokens/s of archlab's generate, eager and compiled, beside HF generate, batch 1 and 8.

    python benchmarks/decode_overhead.py [MODEL] [--tokens 32] [--repeats 7] [--batch 1 8]
        [--no-compile] [--baseline OLD_GENERATION_PY] [--profile]

Same dense float32 weights for both libraries (a GGUF is dequantized by archlab and handed to
HF through archlab.save). Every variant generates greedily and must give HF's tokens. Variants
run interleaved (A B C A B C ...) after a warm-up, and the table gives medians and ratios, so
that a machine shared with other work disturbs every variant alike. Decode tokens/s per row is
(tokens - 1) / (time of `tokens` new tokens - time of 1 new token): the prefill cancels.

--baseline: a generation.py from an earlier commit (e.g. `git show REV:src/archlab/generation.py
> /tmp/old_generation.py`), run against today's model as the "before" of a change to the loop.
--profile: after the first batch size, torch.profiler's top ops of decode steps (the old
forward, eager, compiled).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch

import archlab
from archlab.bench.decode import dense_hf_copy
from archlab.hub import resolve_model

PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village by the sea, there lived",
    "def fibonacci(n):",
    "The three primary colours are",
    "In 1969, the first humans",
    "Water boils at",
    "A haiku about autumn:",
    "The quick brown fox jumps over the lazy dog. Then",
]


def _load_baseline(path: str):
    source = Path(path).read_text().replace("from .model import", "from archlab.model import")
    spec = importlib.util.spec_from_loader("old_generation", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, path, "exec"), module.__dict__)
    return module


def _hf_runner(model, prompts: list[list[int]]):
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])

    def run(n: int):
        out = model.generate(ids, attention_mask=mask, max_new_tokens=n, do_sample=False, eos_token_id=None, pad_token_id=0)
        return out[:, width:].tolist()

    return run


def _profile_step(model, prompt: list[int], kind: str) -> None:
    from torch.profiler import ProfilerActivity, profile

    from archlab.generation import _decode_fn

    cache = model.new_cache(1, 256)
    with torch.no_grad():
        logits = model(torch.tensor([prompt]), cache=cache)[:, -1]
        compile_ = kind == "compiled"
        if compile_:
            cache.start_static()
        # "forward": the step as generate ran it before (model.__call__, with its input checks)
        step = (lambda ids, c: model(ids, cache=c)) if kind == "forward" else _decode_fn(model, compile_)
        token = logits.argmax(-1)
        for _ in range(3):  # warm-up (and compile)
            token = step(token[:, None], cache)[:, -1].argmax(-1)
            cache.length += 1
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(5):
                token = step(token[:, None], cache)[:, -1].argmax(-1)
                cache.length += 1
    print(f"--- decode steps ({kind}), 5 steps profiled ---")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", default="smollm2-135m-instruct")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--baseline", default=None)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    path = resolve_model(args.model)
    tok = archlab.load_tokenizer(path)
    hf_path = dense_hf_copy(path)
    import transformers

    ours = archlab.load(path, dtype=torch.float32).eval()
    ref = transformers.AutoModelForCausalLM.from_pretrained(hf_path, dtype=torch.float32, attn_implementation="sdpa").eval()
    old = _load_baseline(args.baseline) if args.baseline else None
    n = args.tokens
    print(f"model {path.name} float32, {n} new tokens, {args.threads} threads, torch {torch.__version__}, "
          f"transformers {transformers.__version__}, medians of {args.repeats} interleaved runs", file=sys.stderr)
    rows = []
    for B in args.batch:
        prompts = [tok.encode(PROMPTS[i % len(PROMPTS)]) for i in range(B)]
        variants = {"HF generate": _hf_runner(ref, prompts)}
        if old is not None:
            variants["archlab before"] = lambda k, p=prompts: old.generate(ours, p, k)
        variants["archlab eager"] = lambda k, p=prompts: archlab.generate(ours, p, k)
        if not args.no_compile:
            variants["archlab compiled"] = lambda k, p=prompts: archlab.generate(ours, p, k, compile=True)
        with torch.no_grad():
            want = None
            for name, run in variants.items():  # warm-up, compile, and the same tokens everywhere
                t = time.perf_counter()
                got = run(n)
                run(1)
                print(f"batch {B}: warm-up {name} {time.perf_counter() - t:.1f}s", file=sys.stderr)
                want = want or got
                if got != want:
                    print(f"batch {B}: {name} gives different tokens than HF", file=sys.stderr)
            times = {name: [] for name in variants}
            for _ in range(args.repeats):
                for name, run in variants.items():
                    t0 = time.perf_counter()
                    run(1)
                    t1 = time.perf_counter()
                    run(n)
                    t2 = time.perf_counter()
                    times[name].append((n - 1) / max((t2 - t1) - (t1 - t0), 1e-9))
        hf = statistics.median(times["HF generate"])
        for name, rates in times.items():
            rate = statistics.median(rates)
            rows.append((B, name, rate, rate * B, rate / hf))
            print(f"batch {B}: {name} {rate:.2f} tok/s per row ({', '.join(f'{r:.2f}' for r in rates)})", file=sys.stderr, flush=True)
        if args.profile and B == args.batch[0]:
            for kind in ("forward", "eager") + (() if args.no_compile else ("compiled",)):
                _profile_step(ours, tok.encode(PROMPTS[0]), kind)
    print(f"| batch | variant | decode tok/s per row | tok/s total | vs HF |")
    print("|---|---|---|---|---|")
    for B, name, rate, total, ratio in rows:
        print(f"| {B} | {name} | {rate:.1f} | {total:.1f} | {ratio:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
