"""Time to first token of a fresh `archlab generate`, as a user sees it: the wall time from
starting `python -m archlab generate MODEL "Hello" --max-new-tokens 1` to the first byte on its
standard output (the generated text is flushed per token, the echoed prompt with it), warm
caches (the model fetched, the C kernel built, the files in the page cache: one untimed run of
each variant first).

    python benchmarks/ttft.py [--model smollm2-135m-instruct] [--runs 7]
        [--variant LABEL=SRC[:EXTRA ARGS]] ...

EXTRA ARGS: options for `archlab generate`, after any NAME=VALUE environment settings
(e.g. "after, no load cache=src:ARCHLAB_LOAD_CACHE=0").

Default variants: "before" runs the main branch's code (/work/main/src), with and without
--quant keep; "after" this tree's: with --quant none (the float32 conversion it skips by
default), with quant keep but no load cache, and as it runs by default. Variants
run interleaved (A B C A B C ...), so that a machine shared with other work disturbs each alike;
the table gives medians, min and the ratio to the first variant. OMP_NUM_THREADS is passed on
as set (default 1 here: the machine is shared)."""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "src"
DEFAULT_VARIANTS = [  # each step of the change on its own
    "before=/work/main/src",
    "before, --quant keep=/work/main/src:--quant keep",
    f"after, --quant none (float32 conversion)={HERE}:--quant none",
    f"after, quant keep without the load cache={HERE}:ARCHLAB_LOAD_CACHE=0",
    f"after (quant keep, load cache)={HERE}",
]


def once(src: str, model: str, extra: list[str]) -> tuple[float, float]:
    """(seconds to the first byte of output, seconds to exit) of one fresh process."""
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    while extra and "=" in extra[0] and not extra[0].startswith("-"):
        name, _, value = extra[0].partition("=")
        env[name], extra = value, extra[1:]
    cmd = [sys.executable, "-m", "archlab", "generate", model, "Hello", "--max-new-tokens", "1", *extra]
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    first = p.stdout.read(1)
    t_first = time.perf_counter() - start
    p.stdout.read()
    err = p.stderr.read().decode(errors="replace")
    if p.wait() != 0 or not first:
        raise SystemExit(f"{' '.join(map(shlex.quote, cmd))} (PYTHONPATH={src}) failed:\n{err}")
    return t_first, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--variant", action="append", default=None, help="LABEL=SRC[:EXTRA ARGS], repeatable")
    args = ap.parse_args()
    variants = []
    for v in args.variant or DEFAULT_VARIANTS:
        label, _, rest = v.partition("=")
        src, _, extra = rest.partition(":")
        variants.append((label, src, shlex.split(extra)))
    for label, src, extra in variants:  # warm-up: page cache, the C kernel's build, .pyc files
        once(src, args.model, extra)
    times: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in variants}
    for _ in range(args.runs):
        for label, src, extra in variants:
            times[label].append(once(src, args.model, extra))
    base = statistics.median(t for t, _ in times[variants[0][0]])
    print(f"time to first token, `python -m archlab generate {args.model} \"Hello\" --max-new-tokens 1`, "
          f"{args.runs} interleaved runs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '1')}\n")
    print("| variant | first token, median (s) | min (s) | to exit, median (s) | vs first |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, _, _ in variants:
        firsts = [t for t, _ in times[label]]
        med = statistics.median(firsts)
        print(f"| {label} | {med:.2f} | {min(firsts):.2f} | {statistics.median(e for _, e in times[label]):.2f} "
              f"| {base / med:.2f}x faster |")


if __name__ == "__main__":
    main()
