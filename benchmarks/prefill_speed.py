"""Prefill (one forward over a prompt, no cache, logits of the last position) of archlab
beside HF transformers on the same weights, in one process.

    python benchmarks/prefill_speed.py [--model smollm2-135m] [--tokens 256] [--batch 1]
                                       [--repeats 9] [--threads 2] [--dtype float32]

The model is the preset at its real size with random weights (archlab.build, archlab.save,
transformers loads the files), so no download is needed; the full logits must agree before
anything is timed. Forwards alternate (A B, then B A), medians of the wall times and of the
per-pair ratios. Each side computes the last position's logits only, as generate's prefill
does in both libraries. Speed lives here, never in the tests.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import archlab


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--full-logits", action="store_true", help="archlab computes every position's logits (HF: the last only)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import transformers

    transformers.logging.set_verbosity_error()
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="archlab-prefill-") as tmp:
        ours = archlab.build(args.model)
        archlab.save(ours, Path(tmp))
        ref = transformers.AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32, attn_implementation="sdpa")
    ours, ref = ours.to(dtype).eval(), ref.to(dtype).eval()
    ids = torch.randint(0, ours.config.vocab_size, (args.batch, args.tokens), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        d = float((ours(ids).float() - ref(input_ids=ids).logits.float()).abs().max())
    if d > (1e-3 if dtype == torch.float32 else 0.5):
        raise SystemExit(f"logits differ by {d:.2e}; not the same model, nothing timed")

    def ours_step():
        if args.full_logits:  # what archlab.generate's prefill did before it kept the last position only
            return ours(ids)[:, -1]
        return ours.logits(ours(ids, return_hidden=True)[:, -1])

    def ref_step():
        return ref(input_ids=ids, use_cache=False, logits_to_keep=1).logits[:, -1]

    times = {"archlab": [], "hf": []}
    steps = {"archlab": ours_step, "hf": ref_step}
    with torch.inference_mode():
        for f in steps.values():
            f(), f()
        for i in range(args.repeats):
            for name in ("archlab", "hf") if i % 2 == 0 else ("hf", "archlab"):
                t0 = time.perf_counter()
                steps[name]()
                times[name].append(time.perf_counter() - t0)
    ratio = statistics.median(b / a for a, b in zip(times["archlab"], times["hf"]))
    tok = args.batch * args.tokens
    print(f"{args.model} prefill {args.batch} x {args.tokens} {args.dtype}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, transformers {transformers.__version__}; logits max|d| {d:.1e}")
    print(f"archlab {tok / statistics.median(times['archlab']):,.0f} tok/s, HF {tok / statistics.median(times['hf']):,.0f} "
          f"tok/s, archlab/HF {ratio:.2f}x (median of {args.repeats} pairs)")


if __name__ == "__main__":
    main()
