"""The options of `archlab generate` and `archlab chat`, defined once for both: each value is
checked by argparse when the command line is read (exit 2 naming the option and the value),
before torch is imported or a byte of a model is read; then the runtime (threads, device) is
set up, the model loaded with a loading line and its time kept for the stats line.

This module imports no torch at import time: `--help` and every refusal stay instant."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

DTYPES = ("float32", "bfloat16", "float16")
DEVICES = ("cpu", "cuda", "mps")
QUANTS = ("keep", "none", "int8", "int4")


# ---- argparse types: each names what it expected and what it got --------------------------------

def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def temperature(text: str) -> float:
    value = _number(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0 (0: greedy), got {text!r}")
    return value


def top_p(text: str) -> float:
    value = _number(text)
    if not 0 < value <= 1:  # nan fails too
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text!r}")
    return value


def at_least(low: int):
    def check(text: str) -> int:
        value = _whole(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {text!r}")
        return value

    check.__name__ = f"integer >= {low}"
    return check


def seed(text: str) -> int:
    value = _whole(text)
    if not -(2**63) <= value < 2**64:  # torch.Generator.manual_seed's range
        raise argparse.ArgumentTypeError(f"must be in [-2**63, 2**64), got {text!r}")
    return value


def default_threads() -> int:
    """$OMP_NUM_THREADS when it is set (torch's own default reads it), else the cores this
    process may run on (its affinity mask, which containers and taskset narrow)."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity mask
        return os.cpu_count() or 1


# ---- the options ----------------------------------------------------------------------------

def add_run_args(p: argparse.ArgumentParser, *, max_new: int, prompt: bool, temperature_default: float = 0.0,
                 top_p_default: float | None = None, top_k_default: int | None = None) -> None:
    """The options of a command that runs a model (generate when `prompt`, else chat); the
    sampling defaults are the caller's, since chat wants other ones than generate."""
    from .hub import known_models

    p.add_argument("model", help=f"a fetchable model ({', '.join(known_models())}; `archlab models`), a .gguf file or an "
                   "HF-format directory; an architecture preset with --random")
    if prompt:
        p.add_argument("prompt", help="the text to continue; - reads it from standard input")
        p.add_argument("--chat", action="store_true", help="wrap the prompt in the model's chat template")
    p.add_argument("--system", default=None, help="a system message (implies --chat for generate)")
    p.add_argument("--max-new-tokens", type=at_least(0), default=max_new, help=f"tokens to generate (default {max_new})")
    p.add_argument("--temperature", type=temperature, default=temperature_default,
                   help=f"sampling temperature; 0 is greedy (default {temperature_default:g})")
    p.add_argument("--top-k", type=at_least(1), default=top_k_default,
                   help=f"sample among the k likeliest tokens (default {top_k_default or 'all'})")
    p.add_argument("--top-p", type=top_p, default=top_p_default,
                   help=f"sample within the smallest set of likeliest tokens of probability p (default {top_p_default or 1})")
    p.add_argument("--seed", type=seed, default=None, help="the sampler's seed (default: a fresh one each run)")
    p.add_argument("--dtype", default=None, choices=DTYPES, help="the dtype the model computes in (default float32)")
    p.add_argument("--quant", default=None, choices=QUANTS,
                   help="how linear weights are held: keep a GGUF's own quantized blocks, none (dequantize to "
                   "--dtype), or quantize to int8 / int4 (default: keep for a GGUF on the CPU when the C kernel "
                   "builds: it loads without converting to float and decodes faster; else none)")
    p.add_argument("--device", default=None, choices=DEVICES, help="where the model runs (default: cuda when present, else cpu)")
    p.add_argument("--threads", type=at_least(1), default=None,
                   help=f"CPU threads, torch.set_num_threads (default: $OMP_NUM_THREADS, else the cores this process "
                   f"may use: {default_threads()} here)")
    p.add_argument("--random", action="store_true",
                   help="with an architecture preset (`archlab presets`): a tiny random-weight version of it and a "
                   "byte-level tokenizer, to try the machinery; its text is gibberish")
    p.add_argument("--compile", action="store_true",
                   help="decode through a torch.compile'd static step (CUDA graphs on CUDA); the first prompt compiles it")


# ---- before loading -------------------------------------------------------------------------

def _is_preset(name: str) -> bool:
    import archlab

    return not Path(name).expanduser().exists() and name in archlab.presets()


def check_model_name(args: argparse.Namespace) -> None:
    """An architecture preset without --random, or --random without one, is refused here."""
    from .hub import REGISTRY, known_models

    name = args.model
    preset = _is_preset(name) and name not in REGISTRY
    if args.random and not preset:
        raise ValueError(f"--random builds a tiny random model of an architecture preset (`archlab presets`); "
                         f"{name!r} is not one")
    if preset and not args.random:
        raise ValueError(
            f"{name!r} is an architecture preset: a shape without weights (`archlab presets` lists them). "
            f"To run real weights: `archlab fetch NAME` for a known model ({', '.join(known_models())}; "
            f"`archlab models`), or give a path to a .gguf file or an HF-format folder. "
            f"Or add --random for a tiny random-weight {name} with a byte-level tokenizer (its text is gibberish).")


def read_prompt(args: argparse.Namespace, stdin=None) -> str:
    """The prompt: the argument, or standard input for `-`; refused when empty or not UTF-8."""
    text = args.prompt
    if text == "-":
        text = (stdin or sys.stdin).read()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:  # argv carries bytes that are not UTF-8 as lone surrogates
        raise ValueError(f"the prompt is not valid UTF-8 (byte {e.start} of the argument)") from None
    if not text:
        raise ValueError("the prompt is empty" + (" (nothing on standard input)" if args.prompt == "-" else ""))
    return text


def warn_ignored(args: argparse.Namespace, err=None) -> None:
    """Sampling options that change nothing at temperature 0 (greedy), said in one line."""
    if args.temperature != 0:
        return
    given = [f"--{k.replace('_', '-')}" for k in ("top_p", "top_k", "seed") if getattr(args, k) is not None]
    if given:
        print(f"archlab: warning: {', '.join(given)} ignored at --temperature 0 (greedy decoding); "
              "give a temperature > 0 to sample", file=err or sys.stderr)


def setup_runtime(args: argparse.Namespace) -> str:
    """Threads set and the device checked (both need torch, none a model); returns the device."""
    import torch

    torch.set_num_threads(args.threads or default_threads())
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available to this torch "
                         f"({torch.__version__}, built {'with' if torch.version.cuda else 'without'} CUDA)")
    if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError("--device mps: Apple's Metal (MPS) is not available here (macOS on Apple silicon only)")
    return device


def prepare(args: argparse.Namespace) -> str | None:
    """Everything a run checks before loading; returns the prompt (generate) or None (chat)."""
    check_model_name(args)
    text = read_prompt(args) if getattr(args, "prompt", None) is not None else None
    if args.system is not None and hasattr(args, "chat"):
        args.chat = True
    if getattr(args, "random", False) and (not hasattr(args, "prompt") or args.chat):
        # the byte-level tokenizer of a random model has no chat template: say so before building it
        raise ValueError(f"--random: a random model's byte-level tokenizer has no chat template; try "
                         f"`archlab generate {args.model} \"some text\" --random`")
    warn_ignored(args)
    return text


# ---- loading, with a line on the terminal -----------------------------------------------------

class _Progress:
    """The loading line: a bar through the stages of loading when stderr is a terminal (tqdm,
    imported only then), nothing otherwise: the stats line gives the load time either way.
    It starts before torch is imported, so that the terminal shows something at once."""

    def __init__(self, what: str, stages: int, err=None):
        self.bar, self.what, self.started = None, what, False
        err = err or sys.stderr
        if err.isatty():
            try:
                from tqdm import tqdm
            except ImportError:
                print(f"archlab: loading {what} ...", file=err, flush=True)
            else:
                self.bar = tqdm(total=stages, desc=f"loading {what}", file=err, leave=False,
                                bar_format="{desc} {bar:20} [{elapsed}]")

    def stage(self, name: str) -> None:
        """`name` starts; the stage before it is done."""
        if self.bar is not None:
            if self.started:
                self.bar.update(1)
            self.started = True
            self.bar.set_description_str(f"loading {self.what}: {name}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.update(self.bar.total - self.bar.n)
            self.bar.close()
            self.bar = None


def random_model(preset: str, device: str, dtype: str | None):
    """archlab.tiny(preset) with random weights over 256 byte tokens, and the byte tokenizer, so
    that any text encodes; seeded, so that the same preset gives the same model."""
    import torch

    import archlab
    from .tokenizer import byte_tokenizer

    torch.manual_seed(0)
    model = archlab.build(archlab.tiny(preset, vocab_size=256), dtype=dtype, device=device).eval()
    print(f"archlab: --random: a tiny {preset} ({sum(p.numel() for p in model.parameters()):,} parameters) with random "
          "weights and a byte-level tokenizer; its text is gibberish", file=sys.stderr)
    return model, byte_tokenizer()


def load_for_run(args: argparse.Namespace, err=None):
    """(model, tokenizer, seconds to load) for the checked `args`; threads and device set first."""
    start = time.perf_counter()
    bar = _Progress(args.model, 2 if args.random else 4, err)
    try:
        bar.stage("importing torch")
        device = setup_runtime(args)
        if args.random:
            bar.stage("building")
            bar.close()
            model, tok = random_model(args.model, device, args.dtype)
            return model, tok, time.perf_counter() - start
        import archlab
        from .api import choose_quant
        from .hub import resolve_model

        bar.stage("finding the file")
        path = resolve_model(args.model)
        quant = choose_quant(path, args.quant, device)
        bar.stage("weights" + (f" (quant {quant})" if quant else ""))
        if quant == "keep" and device == "cpu" and path.suffix == ".gguf":
            from .load_cache import load_kept

            model = load_kept(path, args.dtype, lambda: archlab.load(path, dtype=args.dtype, quant="keep")).eval()
        else:
            model = archlab.load(path, dtype=args.dtype, device=device, quant=quant).eval()
        bar.stage("tokenizer")
        if path.suffix == ".gguf":
            from .load_cache import load_tokenizer_kept

            tok = load_tokenizer_kept(path, lambda: archlab.load_tokenizer(path))
        else:
            tok = archlab.load_tokenizer(path)
    finally:
        bar.close()
    return model, tok, time.perf_counter() - start


def stats_line(load: float, n: int, first: float, total: float) -> str:
    """"load 0.4 s, prefill+first token 120 ms, 64 tokens, 45.1 tok/s": the rate is decoding's,
    the tokens after the first over the time after it; no rate (never nan) below two tokens."""
    parts = [f"load {load:.1f} s"]
    if n:
        parts.append(f"prefill+first token {first * 1000:.0f} ms")
    parts.append(f"{n} token{'s' * (n != 1)}")
    if n > 1 and total > first:
        parts.append(f"{(n - 1) / (total - first):.1f} tok/s")
    return ", ".join(parts)
