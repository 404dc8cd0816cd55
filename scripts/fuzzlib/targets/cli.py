"""The `archlab` command (archlab.cli.main) with hostile arguments: a valid command of every cheap
kind (compare, inspect, config, presets, report, generate, train, data, lab list) drawn from a
grammar, with one or two of its arguments made hostile (NaN, inf, negative, huge and non-numbers,
empty and non-UTF-8 strings as argv carries them, unknown presets, FIFOs, /dev/zero, directories,
missing and damaged files, model folders linking outside, repeated and conflicting flags).

An exception out of main is a crash (the user sees a traceback); a nonzero exit status is a
refusal, raised as ValueError carrying stderr, so the harness checks that it names the flag or
the value; exit status 0 is acceptance, a silent one where the value is certainly invalid (by
the flag's meaning: a negative --max-new-tokens, a NaN --temperature, a FIFO for a config)."""

from __future__ import annotations

import contextlib
import io
import math
import os
import random
from pathlib import Path

from fuzzlib.harness import Case

from . import cli_files as files
from .cli_files import CONFIG, CORPUS, MODEL

NAME = "cli"
make_seeds = files.make_seeds
PRESETS = ("gpt2", "llama-3-8b", "deepseek-v3", "gemma-3-27b", "qwen3-next-80b-a3b", "mixtral-8x7b")
NUMBERS = ["nan", "NaN", "inf", "-inf", "-1", "0", "1", "2", "1e400", "1.5", "-0", "1e-45", "18446744073709551616",
           "1" + "0" * 400, "", " ", "x", "0x10", "1_000", "\udcff\udcfe", "3", "٣"]


def _int_value(text: str):
    try:
        return int(text)
    except ValueError:
        return None


def _float_value(text: str):
    try:
        return float(text)
    except ValueError:
        return None


def _bad_number(spec: tuple, text: str) -> bool:
    """Certainly invalid for the flag: not its kind of number, non-finite, or outside (lo, hi)."""
    kind, lo, hi = spec
    v = _int_value(text) if kind == "int" else _float_value(text)
    if v is None or (kind == "float" and not math.isfinite(v)):
        return True
    return (lo is not None and v < lo) or (hi is not None and v > hi)


# flag: ("int" | "float", lowest valid, highest valid); None: no certain bound
COMPARE = {"--width": ("int", 1, None), "--batch": ("int", 1, None)}
GENERATE = {"--max-new-tokens": ("int", 0, None), "--temperature": ("float", 0, None), "--top-k": ("int", 1, None),
            "--top-p": ("float", 1e-300, 1), "--seed": ("int", None, None)}
TRAIN = {"--steps": ("int", 0, None), "--batch": ("int", 1, None), "--seq-len": ("int", 1, None),
         "--grad-accum": ("int", 1, None), "--lr": ("float", 0, None), "--min-lr": ("float", 0, None),
         "--warmup": ("int", 0, None), "--weight-decay": ("float", None, None), "--clip": ("float", 0, None),
         "--seed": ("int", None, None), "--eval-every": ("int", 0, None), "--eval-tokens": ("int", 0, None),
         "--save-every": ("int", 0, None), "--keep": ("int", 0, None), "--val-fraction": ("float", 1e-300, 0.999999),
         "--aux-coef": ("float", None, None), "--bias-rate": ("float", None, None), "--d-model": ("int", 1, None),
         "--n-layers": ("int", 1, None), "--n-heads": ("int", 1, None)}
# valid values above these make a run that is long by design, not a hang: redrawn. Past 2**40 a
# count is refused up front (TrainOptions), so those stay.
SLOW = {"--steps": 8, "--batch": 64, "--seq-len": 64, "--grad-accum": 8, "--eval-tokens": 4096, "--max-new-tokens": 2**40}
# values the user gives on a valid run: small, so that the run takes a fraction of a second
TRAIN_VALID = {"--steps": "2", "--batch": "2", "--seq-len": "16", "--eval-every": "1", "--eval-tokens": "32",
               "--lr": "0.001", "--warmup": "1", "--keep": "1"}


def _base(rng: random.Random) -> tuple[str, list[str], dict, list[str]]:
    """(command, argv, numeric flags with their specs, seed files to place)."""
    cmd = rng.choice(["compare", "compare", "inspect", "config", "presets", "report", "generate", "generate",
                      "train", "train", "data", "lab"])
    if cmd == "compare":
        argv = ["compare", *rng.sample(PRESETS, rng.choice([1, 2, 3])), "--context", rng.choice(["8K", "4096", "1M"])]
        argv += rng.choice([[], ["--json"], ["--markdown"]]) + ["--width", "100", "--batch", "2"]
        return cmd, argv, COMPARE, []
    if cmd == "inspect":
        return cmd, ["inspect", rng.choice(PRESETS)] + rng.choice([[], ["--plan"]]), {}, []
    if cmd == "config":
        return cmd, ["config", rng.choice(PRESETS), "--tiny"], {}, []
    if cmd == "presets":
        return cmd, ["presets", "--width", "120"], {"--width": ("int", 1, None)}, []
    if cmd == "report":
        return cmd, ["report", rng.choice(PRESETS), "-o", "out.html", "-q", "--context", "8K"], {"--batch": ("int", 1, None)}, []
    if cmd == "generate":
        argv = ["generate", MODEL, "To be", "--max-new-tokens", "4", "--temperature", rng.choice(["0", "0.8"]),
                "--seed", "1"]
        return cmd, argv, GENERATE, [MODEL]
    if cmd == "train":
        argv = ["train", rng.choice(["llama-3-8b", "gpt2"]), "--tiny", "--data", CORPUS, "--out", "run", "-q",
                "--device", "cpu"]
        for flag, value in TRAIN_VALID.items():
            argv += [flag, value]
        return cmd, argv, TRAIN, [CORPUS]
    if cmd == "data":
        return cmd, ["data", CORPUS, "--tokenizer", "byte", "--val-fraction", "0.1"], {"--val-fraction": TRAIN["--val-fraction"]}, [CORPUS]
    return cmd, ["lab", "list", "--width", "100"], {"--width": ("int", 1, None)}, []


def _set(argv: list[str], flag: str, value: str) -> list[str]:
    if flag in argv:
        i = argv.index(flag)
        return argv[:i + 1] + [value] + argv[i + 2:]
    return argv + [flag, value]


def _mutate(rng, cmd, argv, numeric, prepares, used):
    """One hostile change: (argv, bad, names, escape, detail). `used`: flags already made hostile
    (a second value for one would replace the first, whose badness was already counted)."""
    roll = rng.random()
    free = sorted(set(numeric) - used)
    if free and roll < 0.45:
        flag = rng.choice(free)
        used.add(flag)
        value = rng.choice(NUMBERS)
        while flag in SLOW and not _bad_number(numeric[flag], value) and SLOW[flag] < (_int_value(value) or 0) <= 2**40:
            value = rng.choice(NUMBERS)
        bad = _bad_number(numeric[flag], value)
        # an error from the API under the flag may name its keyword (top_p for --top-p)
        return _set(argv, flag, value), bad, (flag, flag.lstrip("-").replace("-", "_")), False, f"{flag} {value!r}"
    if roll < 0.55:  # a flag given twice (the last wins: valid), or two that exclude each other
        if cmd == "compare" and rng.random() < 0.5:
            return argv + ["--json", "--markdown"], True, ("--json", "--markdown"), False, "--json with --markdown"
        if free:
            flag = rng.choice(free)
            i = argv.index(flag) if flag in argv else None
            if i is not None:
                return argv + [flag, argv[i + 1]], False, (flag,), False, f"{flag} twice"
        return argv + ["--no-such-flag"], True, ("--no-such-flag",), False, "an unknown flag"
    if cmd in ("compare", "inspect", "config", "report") and roll < 0.8:
        return _hostile_name(rng, cmd, argv, prepares)
    if cmd == "generate":
        return _hostile_generate(rng, argv, prepares)
    if cmd in ("train", "data"):
        return _hostile_corpus(rng, cmd, argv, prepares)
    if cmd == "lab":
        claim = rng.choice(["no-such-claim", "", "\udcff", "kv-cache --budget huge"])
        return ["lab", *claim.split(" ")], True, ("no-such-claim", "claim", "budget", "huge", "\udcff"), False, f"lab {claim!r}"
    if cmd == "report":
        out = rng.choice(["adir", "", "nodir/out.html"])
        if out == "adir":
            prepares.append(lambda f, s: (f / "in" / "adir").mkdir())
        return _set(argv, "-o", out), out != "nodir/out.html", ("adir", "-o", "--output", "nodir"), False, f"-o {out!r}"
    return argv + ["--help"], False, ("--help",), False, "--help"


def _hostile_name(rng, cmd, argv, prepares):
    """The preset name replaced: unknown, empty, non-UTF-8, or a config .json file that is damaged."""
    i = 1
    roll = rng.random()
    if roll < 0.4:
        name = rng.choice(["no-such-preset", "", "GPT2", "llama-3-8b ", "\udcffllama", "llama/3", "-x"])
        # "-x" reads as an option: argparse then misses the name
        names = (name.strip() or "preset", "preset", "NAME", "name") if name != "-x" else ("-x", "name")
        return argv[:i] + [name] + argv[i + 1:], True, names, False, f"preset {name!r}"
    prepares.append(lambda f, s: files.place(s, f, CONFIG))
    if roll < 0.5:
        return argv[:i] + [CONFIG] + argv[i + 1:], False, (CONFIG,), False, "a valid config file"
    damage = rng.choice(sorted(files.FILE_DAMAGE))
    how, bad = files.FILE_DAMAGE[damage]
    prepares.append(lambda f, s, how=how: how(f / "in" / CONFIG))
    return argv[:i] + [CONFIG] + argv[i + 1:], bad, (CONFIG,), False, f"config file {damage}"


def _hostile_generate(rng, argv, prepares):
    roll = rng.random()
    if roll < 0.3:
        prompt = rng.choice(["", "\udcff\udcfe", "x" * 200, "é" * 40, "\x00"])
        bad = len(prompt.encode("utf-8", "surrogateescape")) > 64  # past the seed model's context of 64
        return argv[:2] + [prompt] + argv[3:], bad, ("prompt", "context", "tokens"), False, f"prompt {prompt[:12]!r}"
    if roll < 0.4:
        dtype = rng.choice(["float64", "int8", "", "bfloat16", "\udcff", "float32 "])
        return argv + ["--dtype", dtype], dtype not in ("bfloat16",), ("dtype", "--dtype"), False, f"--dtype {dtype!r}"
    how, bad, escape, detail = files.damage_model(rng, MODEL)
    prepares.append(lambda f, s, how=how: how(f / "in" / MODEL))
    return argv, bad, (MODEL,), escape, detail


def _hostile_corpus(rng, cmd, argv, prepares):
    if cmd == "data" and rng.random() < 0.35:
        tok = rng.choice(["bpe:0", "bpe:-5", "bpe:nan", "bpe:", "bpe:99999999999999", "nosuch.json", "byte2", "",
                          "bpe:1e400", "\udcff"])
        return _set(argv, "--tokenizer", tok), True, ("--tokenizer", "tokenizer", tok or "tokenizer"), False, f"--tokenizer {tok!r}"
    damage = rng.choice(sorted(files.CORPUS_DAMAGE))
    how, bad = files.CORPUS_DAMAGE[damage]
    prepares.append(lambda f, s, how=how: how(f / "in" / CORPUS))
    return argv, bad, (CORPUS,), False, f"corpus {damage}"


def _run(argv: list[str], folder: Path):
    """main(argv) run in folder/in with the cache there too; a refusal raises ValueError(stderr)."""
    os.chdir(folder / "in")
    os.environ["ARCHLAB_CACHE"] = str(folder / "in" / "cache")
    os.environ["ARCHLAB_OFFLINE"] = "1"  # never fetch (the shakespeare corpus, a hub model)
    from archlab.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    if code:
        raise ValueError(f"exit status {code}: {err.getvalue()[-1500:]}")
    return {"code": code, "stdout_chars": len(out.getvalue())}


def case(seeds: Path, rng: random.Random, index: int) -> Case:
    cmd, argv, numeric, placed = _base(rng)
    prepares: list = []
    bad, names, escape, details, used = False, (), False, [], set()
    for k in range(rng.choice([1, 1, 2])):
        for _ in range(20):  # one file damage per case: a second on the same file would read a FIFO or /dev/zero
            before = len(prepares)
            drawn = _mutate(rng, cmd, argv, numeric, prepares, used)
            if k == 0 or before == 0 or len(prepares) == before:
                break
            del prepares[before:]
        else:
            break
        argv, b, n, e, d = drawn
        bad, names, escape = bad or b, names + n, escape or e
        details.append(d)

    if "--help" in argv:  # help is printed before anything else is looked at: the rest may be anything
        bad = False

    def prepare(folder, placed=tuple(placed), prepares=tuple(prepares)):
        for name in placed:
            files.place(seeds, folder, name)
        for p in prepares:
            p(folder, seeds)

    def run(folder, argv=list(argv)):
        return _run(argv, folder)

    return Case(NAME, f"{cmd}-{details[0].split(' ')[0]}", f"archlab {' '.join(map(repr, argv))}: {'; '.join(details)}",
                run, prepare, bad=bad, names=names, escape=escape)


def references(seeds: Path) -> dict:
    return {}
