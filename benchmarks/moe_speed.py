"""One MoE layer's experts, run by each of Experts' paths on the same weights and tokens.

    python benchmarks/moe_speed.py [--tokens 1024] [--experts 64] [--top-k 8] [--d-model 256]
                                   [--hidden 128] [--repeats 7] [--threads 2] [--paths split padded grouped]

Forward alone and forward+backward (the sum of squares of the output as the loss), float32
and bfloat16 autocast, the paths interleaved (the order reversed every other repetition),
medians; the ratio is split's time over each path's. The outputs are checked equal to the
split path's first. Speed lives here, never in the tests.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from archlab.model_config import MoEConfig
from archlab.nn.moe import MoE

FLAGS = {"split": False, "grouped": True, "padded": "padded", "auto": None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--experts", type=int, default=64)
    ap.add_argument("--top-k", type=int, default=8)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--paths", nargs="+", default=["split", "padded", "grouped"], choices=list(FLAGS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    moe = MoE(args.d_model, MoEConfig(n_experts=args.experts, top_k=args.top_k, hidden=args.hidden))
    for p in moe.parameters():
        torch.nn.init.normal_(p, std=0.02)
    x = torch.randn(args.tokens, args.d_model)
    paths = ["split"] + [p for p in args.paths if p != "split"]

    def run(path: str, train: bool, bf16: bool) -> tuple[float, torch.Tensor]:
        moe.experts.grouped = FLAGS[path]
        xx = x.clone().requires_grad_(train)
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16), torch.set_grad_enabled(train):
            y = moe(xx)
            if train:
                y.float().square().sum().backward()
        return time.perf_counter() - t0, y.detach()

    print(f"{args.tokens} tokens, {args.experts} experts top-{args.top_k}, d_model {args.d_model}, hidden "
          f"{args.hidden}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print("| dtype | pass | " + " | ".join(f"{p} ms" for p in paths) + " | " + " | ".join(f"split/{p}" for p in paths[1:]) + " |")
    print("|---|---|" + "---:|" * (2 * len(paths) - 1))
    for bf16 in (False, True):
        for train in (False, True):
            ref = run("split", train, bf16)[1]
            for p in paths[1:]:
                torch.testing.assert_close(run(p, train, bf16)[1], ref, rtol=2e-2 if bf16 else 1e-4, atol=1e-3 if bf16 else 1e-5)
            times: dict[str, list[float]] = {p: [] for p in paths}
            for i in range(args.repeats):
                for p in paths if i % 2 == 0 else paths[::-1]:
                    times[p].append(run(p, train, bf16)[0])
            med = {p: statistics.median(t) for p, t in times.items()}
            print(f"| {'bfloat16' if bf16 else 'float32'} | {'fwd+bwd' if train else 'fwd'} | "
                  + " | ".join(f"{med[p] * 1e3:.1f}" for p in paths) + " | "
                  + " | ".join(f"{med['split'] / med[p]:.2f}x" for p in paths[1:]) + " |", flush=True)


if __name__ == "__main__":
    main()
