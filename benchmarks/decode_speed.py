"""Decode speed of archlab beside HF transformers on the same model, in one run.

    python benchmarks/decode_speed.py [MODEL] [--tokens 64] [--dtype float32 bfloat16]

MODEL is a fetchable name (default smollm2-135m-instruct), a .gguf file or an HF directory.
Both libraries run the same dense weights: a GGUF is dequantized by archlab and handed to HF
through archlab.save (transformers 5 would otherwise keep GGUF weights packed and run its own
quantized kernels, a different computation). Both generate greedily from the same prompt and
must produce the same tokens; the table gives prefill time, decode tokens/s and archlab's
speed-up. Speed lives here, never in the tests.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

import archlab
from archlab.bench.decode import dense_hf_copy
from archlab.hub import resolve_model


def _hf_model(path: Path, dtype: torch.dtype):
    import transformers

    return transformers.AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation="sdpa").eval()


def _time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", default="smollm2-135m-instruct")
    ap.add_argument("--prompt", default="The capital of France is")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"])
    args = ap.parse_args()
    path = resolve_model(args.model)
    tok = archlab.load_tokenizer(path)
    hf_path = dense_hf_copy(path)
    ids = torch.tensor([tok.encode(args.prompt)])
    print(f"model {path.name}, prompt {ids.shape[1]} tokens, {args.tokens} new tokens, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}", file=sys.stderr)
    rows = []
    for dt_name in args.dtype:
        dtype = archlab.api.resolve_dtype(dt_name)
        ours = archlab.load(path, dtype=dtype).eval()
        ref = _hf_model(hf_path, dtype)
        n = args.tokens
        with torch.no_grad():
            pre_ours, _ = _time(lambda: ours(ids), args.repeats)
            pre_ref, _ = _time(lambda: ref(ids), args.repeats)
            t_ours, got = _time(lambda: archlab.generate(ours, ids, n), args.repeats)
            t_ref, want = _time(lambda: ref.generate(ids, max_new_tokens=n, do_sample=False, eos_token_id=None, pad_token_id=0), args.repeats)
        same = got[0].tolist() == want[0, ids.shape[1]:].tolist()
        # decode rate excludes the prefill, measured separately above
        r_ours, r_ref = (n - 1) / max(t_ours - pre_ours, 1e-9), (n - 1) / max(t_ref - pre_ref, 1e-9)
        rows.append((dt_name, pre_ours * 1e3, pre_ref * 1e3, r_ours, r_ref, r_ours / r_ref, same))
    print(f"{'dtype':<10}{'prefill ms (archlab / HF)':>28}{'decode tok/s (archlab / HF)':>30}{'speed-up':>10}{'same tokens':>13}")
    for dt, pa, pb, ra, rb, x, same in rows:
        print(f"{dt:<10}{pa:>14.1f} / {pb:<11.1f}{ra:>15.1f} / {rb:<12.1f}{x:>9.2f}x{('yes' if same else 'NO'):>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
