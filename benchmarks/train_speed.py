"""Training speed of archlab beside HF transformers on the same tiny model, in one run.

    python benchmarks/train_speed.py [--models llama-3-8b mixtral-8x7b gpt2] [--dtype float32 bfloat16]
                                     [--batch 8] [--seq-len 256] [--repeats 9] [--threads N] [--json FILE]

Each preset is shrunk with archlab.tiny (d_model 256, 4 layers, 4 heads, vocab 256: about the
size one trains on a laptop CPU), built by archlab, written with archlab.save and loaded by
transformers, so both libraries hold the same weights; the logits must agree (max |d| < 1e-4)
and so must the first step's loss (< 1e-5 in float32) before anything is timed. archlab.save
has no Mixtral writer yet, so for Mixtral the weights go the other way (HF save_pretrained,
archlab.load).

One step is what archlab.train's inner loop does (training/loop.py): under the autocast
context, forward with targets, backward; then clip_grad_norm_(1.0), AdamW (betas 0.9/0.95,
weight decay 0.1 on matrices only, foreach=False as on the CPU), zero_grad(set_to_none=True).
HF gets the identical step, its loss from its own loss function with the same targets
(`labels=` plus `shift_labels=`, so no shift is done inside and no position is dropped).
The MoE balancing loss is left out on both sides (HF's output_router_logits stays off): the
step compared is the language-modelling one. Steps of the two libraries alternate, which goes
first alternating too, so a slow stretch of the machine lands on both; each pair gives one
ratio, and a pair in which either step took over 1.3x its own median is dropped as disturbed.
The table gives median tokens/s with the min-max of the kept steps, and the median ratio.
Speed lives here, never in the tests.

Measured on 2026-11-30, this 2-core machine (torch 2.13.0+cpu, transformers 5.23.0, 2 threads,
defaults, 55 s; quiet apart from the shared host, yet steps still vary by +-15%):

| model | dtype | archlab tok/s (min-max) | HF tok/s (min-max) | archlab/HF (min-max) |
|---|---|---:|---:|---:|
| llama-3-8b-tiny (3.67M) | float32 | 4,417 (3,521-4,615) | 4,218 (3,801-5,042) | 0.91x (0.83-1.20) |
| llama-3-8b-tiny | bfloat16 | 7,477 (7,242-8,371) | 7,773 (6,881-8,165) | 1.00x (0.90-1.12) |
| mixtral-8x7b-tiny (22.95M) | float32 | 2,712 (2,469-2,933) | 2,638 (2,397-2,931) | 1.01x (0.99-1.04) |
| mixtral-8x7b-tiny | bfloat16 | 2,457 (2,044-3,540) | 2,250 (1,863-2,901) | 1.12x (0.92-1.31) |

That is parity within the noise; an earlier quiet run (5 repeats) gave 0.98, 0.98, 1.02, 1.22.
Under another process's load every step is ~10x slower and the ratios mean nothing: wait.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

import archlab
# the models, optimizer and losses are `archlab bench`'s (src/archlab/bench/train.py): one definition
from archlab.bench.train import SIZE, hf_loss as _hf_loss, hf_mixtral as _hf_mixtral, hf_model as _hf_model
from archlab.bench.train import optimizer as _optimizer, ours_loss as _ours_loss

DISTURBED = 1.3  # a step over this multiple of its side's median shared the machine with something



class _Side:
    """One library's model, optimizer and step, the step as loop.py takes it."""

    def __init__(self, name: str, model: torch.nn.Module, loss_fn, autocast, lr: float):
        self.name, self.model, self.loss_fn, self.autocast = name, model.train(), loss_fn, autocast
        self.opt, self.lr = _optimizer(model, lr), lr
        self.times: list[float] = []

    def step(self, ids: torch.Tensor, targets: torch.Tensor) -> float:
        t0 = time.perf_counter()
        for group in self.opt.param_groups:
            group["lr"] = self.lr
        with self.autocast():
            loss = self.loss_fn(self.model, ids, targets)
            loss.backward()
        value = float(loss.detach())  # loop.py reads the loss before clipping (its finiteness check)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.times.append(time.perf_counter() - t0)
        return value


def _spread(xs: list[float]) -> tuple[float, float, float]:
    return statistics.median(xs), min(xs), max(xs)


def bench_model(preset: str, args, workdir: Path) -> list[dict]:
    torch.manual_seed(0)
    cfg = archlab.tiny(preset, **SIZE, max_seq_len=max(args.seq_len, 256))
    path = workdir / preset
    kind = cfg.family
    try:
        ours = archlab.build(cfg)
        archlab.save(ours, path)
        route = "archlab.save -> HF"
    except archlab.ConfigError:
        if cfg.moe is None or kind != "mistral":
            raise
        # archlab reads Mixtral checkpoints but has no writer for them yet, so the weights go
        # the other way: HF makes and saves the model, archlab loads it
        _hf_mixtral(cfg).save_pretrained(path)
        ours = archlab.load(path, dtype=torch.float32)
        route = "HF save_pretrained -> archlab.load"
    init = {k: v.clone() for k, v in ours.state_dict().items()}
    ref = _hf_model(path, kind)
    n_ours = sum(p.numel() for p in ours.parameters())
    n_ref = sum(p.numel() for p in ref.parameters())

    g = torch.Generator().manual_seed(1)
    seq = torch.randint(0, cfg.vocab_size, (args.batch, args.seq_len + 1), generator=g)
    ids, targets = seq[:, :-1], seq[:, 1:]
    with torch.no_grad():
        d_logits = float((ours.eval()(ids) - ref.eval()(input_ids=ids).logits).abs().max())
    if d_logits >= 1e-4:
        raise SystemExit(f"{preset}: logits differ by {d_logits:.2e}; not the same model, nothing timed")

    rows = []
    for dt_name in args.dtype:
        autocast = nullcontext if dt_name == "float32" else (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        if rows:  # fresh weights and optimizer state for each dtype: both sides start again equal
            ours.load_state_dict(init)
            ref = _hf_model(path, kind)
        a = _Side("archlab", ours, _ours_loss, autocast, args.lr)
        b = _Side("hf", ref, _hf_loss, autocast, args.lr)
        first = (a.step(ids, targets), b.step(ids, targets))
        d_loss = abs(first[0] - first[1])
        if dt_name == "float32" and d_loss >= 1e-5:
            raise SystemExit(f"{preset}: first losses differ, {first[0]:.7f} vs {first[1]:.7f}; nothing timed")
        for _ in range(args.warmup):
            a.step(ids, targets), b.step(ids, targets)
        a.times.clear(), b.times.clear()
        last = (0.0, 0.0)
        for i in range(args.repeats):
            # who goes first alternates, so neither side always follows the other's cache traffic
            if i % 2 == 0:
                last = (a.step(ids, targets), b.step(ids, targets))
            else:
                last = tuple(reversed((b.step(ids, targets), a.step(ids, targets))))
        med_a, med_b = statistics.median(a.times), statistics.median(b.times)
        kept = [(ta, tb) for ta, tb in zip(a.times, b.times) if ta <= DISTURBED * med_a and tb <= DISTURBED * med_b]
        tokens = args.batch * args.seq_len
        tps_a = [tokens / ta for ta, _ in kept]
        tps_b = [tokens / tb for _, tb in kept]
        ratios = [tb / ta for ta, tb in kept]
        rows.append(dict(
            model=cfg.name, weights=route, dtype=dt_name, params=n_ours, params_hf=n_ref,
            archlab_tok_s=_spread(tps_a), hf_tok_s=_spread(tps_b), ratio=_spread(ratios),
            kept=len(kept), repeats=args.repeats, max_logit_diff=d_logits,
            first_loss=first, first_loss_diff=d_loss, last_loss=last, last_loss_diff=abs(last[0] - last[1]),
            step_s=dict(archlab=a.times, hf=b.times),
        ))
        print(f"  {cfg.name} {dt_name}: {rows[-1]['archlab_tok_s'][0]:,.0f} vs {rows[-1]['hf_tok_s'][0]:,.0f} tok/s, "
              f"{len(kept)}/{args.repeats} pairs kept", file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    out = ["| model | dtype | params | archlab tok/s (min-max) | HF tok/s (min-max) | archlab/HF (min-max) | pairs kept |",
           "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        a, b, x = r["archlab_tok_s"], r["hf_tok_s"], r["ratio"]
        out.append(f"| {r['model']} | {r['dtype']} | {r['params'] / 1e6:.2f}M | {a[0]:,.0f} ({a[1]:,.0f}-{a[2]:,.0f}) "
                   f"| {b[0]:,.0f} ({b[1]:,.0f}-{b[2]:,.0f}) | {x[0]:.2f}x ({x[1]:.2f}-{x[2]:.2f}) | {r['kept']}/{r['repeats']} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["llama-3-8b", "mixtral-8x7b"], help="presets (gpt2 works too)")
    ap.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=9, help="timed steps per library, model and dtype")
    ap.add_argument("--warmup", type=int, default=0, help="untimed steps after the checked first one")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures, every step time included, here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers

    transformers.logging.set_verbosity_error()  # loading bars and config notices would bury the table
    transformers.logging.disable_progress_bar()
    load = os.getloadavg()[0]
    head = (f"batch {args.batch} x {args.seq_len} tokens, {torch.get_num_threads()} threads, "
            f"torch {torch.__version__}, transformers {transformers.__version__}, load average {load:.2f} at start")
    print(head, file=sys.stderr, flush=True)
    if load > 0.5 * (os.cpu_count() or 1):
        print(f"warning: the machine is busy (load {load:.2f} on {os.cpu_count()} cores; a one-minute "
              "average, so a run just finished counts too); check `top` and rerun when it is quiet", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory(prefix="archlab-train-bench-") as tmp:
        for preset in args.models:
            rows += bench_model(preset, args, Path(tmp))
    print(table(rows))
    checks = "; ".join(f"{r['model']} {r['dtype']}: logits max|d| {r['max_logit_diff']:.1e}, first loss |d| "
                       f"{r['first_loss_diff']:.1e}, last loss |d| {r['last_loss_diff']:.1e}" for r in rows)
    print(f"\n{head}, load average {os.getloadavg()[0]:.2f} at end\n{checks}")
    if args.json:
        args.json.write_text(json.dumps(dict(settings=vars(args) | {"json": str(args.json)}, threads=torch.get_num_threads(),
                                             torch=torch.__version__, transformers=transformers.__version__, rows=rows),
                                        indent=1, default=str))
    return 0 if all(math.isfinite(r["ratio"][0]) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
