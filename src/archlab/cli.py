"""The `archlab` command: thin commands over the public API."""

from __future__ import annotations

import argparse
import json
import sys

from . import api
from .config import ConfigError, MLAConfig, ModelConfig
from .io import CheckpointError


def _params(cfg: ModelConfig) -> int:
    return sum(p.numel() for p in api.build(cfg, device="meta").parameters())


def _attention(cfg: ModelConfig) -> str:
    a = cfg.attention
    if isinstance(a, MLAConfig):
        q = "" if a.q_lora_rank is None else f", q rank {a.q_lora_rank}"
        return f"MLA (latent {a.kv_lora_rank}{q})"
    kind = "MHA" if a.n_kv_heads == a.n_heads else "MQA" if a.n_kv_heads == 1 else "GQA"
    return f"{kind} {a.n_heads}/{a.n_kv_heads}"


def _ffn(cfg: ModelConfig) -> str:
    f = cfg.ffn
    dense = {"mlp": f"{f.activation.upper().replace('_TANH', '')} MLP", "glu": "SwiGLU" if f.activation == "silu" else "GeGLU"}[f.kind]
    if cfg.moe is None:
        return dense
    m = cfg.moe
    shared = f" +{m.n_shared} shared" if m.n_shared else ""
    return f"MoE {m.top_k}/{m.n_experts}{shared}"


def _fmt(n: int) -> str:
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


def cmd_presets(args: argparse.Namespace) -> int:
    rows = []
    for name in api.presets():
        cfg = api.config(name)
        rows.append((name, cfg.family, cfg.norm.kind, cfg.position, _attention(cfg), _ffn(cfg), _fmt(_params(cfg))))
    header = ("preset", "family", "norm", "position", "attention", "ffn", "params")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    cfg = api.config(args.name)
    if args.tiny:
        cfg = api.tiny(cfg)
    print(json.dumps({**cfg.to_dict(), "params": _params(cfg)}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="archlab", description="LLM architectures from one set of parts.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("presets", help="list every preset with its parts and parameter count")
    p.set_defaults(fn=cmd_presets)
    p = sub.add_parser("config", help="print a preset's full config as JSON")
    p.add_argument("name")
    p.add_argument("--tiny", action="store_true", help="the tiny version that keeps the architecture")
    p.set_defaults(fn=cmd_config)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except (ConfigError, CheckpointError, ValueError) as e:
        print(f"archlab: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
