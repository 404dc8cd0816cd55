"""What `archlab serve` costs per request beside the library it wraps: time to the first text
and decode tokens/s of a streamed chat completion over HTTP, against archlab.stream on the same
model, prompt and token count, in one process.

    python benchmarks/serve_overhead.py [MODEL] [--quant keep] [--tokens 64] [--repeats 5]

The server runs in a thread of this process (uvicorn on a free localhost port) and the client
is httpx reading the server-sent events; the two paths run interleaved (A B A B ...) after a
warm-up, medians and their ratio are printed, so that a machine shared with other work disturbs
both alike. Both paths generate greedily; the benchmark checks they produce the same text.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

import archlab
from archlab.hub import resolve_model
from archlab.serve import create_app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from serve_server import running  # noqa: E402  (the same uvicorn-in-a-thread the tests use)

MESSAGES = [{"role": "user", "content": "Write a short paragraph about the sea."}]


def library(model, tok, ids: list[int], n: int) -> tuple[float, float, str]:
    start, first, new = time.perf_counter(), None, []
    for t in archlab.stream(model, ids, n):  # no stop ids: both paths make exactly n tokens
        first = first or time.perf_counter() - start
        new.append(t)
    total = time.perf_counter() - start
    return first, (n - 1) / (total - first), tok.decode(new, skip_special_tokens=True)


def served(url: str, name: str, n: int) -> tuple[float, float, str]:
    body = {"model": name, "messages": MESSAGES, "max_tokens": n, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    start, first, text, used = time.perf_counter(), None, [], None
    with httpx.Client(trust_env=False, timeout=120) as h, h.stream("POST", url + "/chat/completions", json=body) as r:
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                first = first or time.perf_counter() - start
                text.append(chunk["choices"][0]["delta"]["content"])
            used = chunk.get("usage") or used
    total = time.perf_counter() - start
    return first, (used["completion_tokens"] - 1) / (total - first), "".join(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", default="smollm2-135m-instruct")
    ap.add_argument("--quant", default="keep")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("-v", "--verbose", action="store_true", help="each round's first-text time and tokens/s")
    args = ap.parse_args()
    path = resolve_model(args.model)
    model, tok = archlab.load(path, quant=args.quant).eval(), archlab.load_tokenizer(path)
    ids = tok.encode_prompt(tok.apply_chat_template(MESSAGES, add_generation_prompt=True), templated=True)
    # a stop token would end the served reply early; the server is given none to find
    tok.stop_ids = frozenset()
    app = create_app(model, tok, "m", limit=args.tokens)
    runs: dict[str, list] = {"library": [], "served": []}
    with running(app) as url:
        library(model, tok, ids, 4), served(url, "m", 4)  # warm-up
        for _ in range(args.repeats):
            runs["library"].append(library(model, tok, ids, args.tokens))
            runs["served"].append(served(url, "m", args.tokens))
    assert runs["library"][0][2] == runs["served"][0][2], "the two paths generated different text"
    if args.verbose:
        for k, v in runs.items():
            print(k, " ".join(f"{r[0] * 1000:.0f}ms/{r[1]:.1f}" for r in v))
    med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v)) for k, v in runs.items()}
    print(f"{args.model} ({args.quant or 'float32'}), {len(ids)} prompt tokens, {args.tokens} new, "
          f"median of {args.repeats} interleaved rounds")
    for k, (first, rate) in med.items():
        print(f"  {k:8s} first text {first * 1000:6.0f} ms   decode {rate:6.1f} tokens/s")
    print(f"  served / library: first text x{med['served'][0] / med['library'][0]:.2f}, "
          f"decode x{med['served'][1] / med['library'][1]:.2f}")


if __name__ == "__main__":
    main()
