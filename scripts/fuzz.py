"""Fuzz archlab with hostile and malformed inputs (issue 12), each case in a sandboxed child.

    python scripts/fuzz.py --cases 500                    # 500 cases per target, all targets
    python scripts/fuzz.py --targets gguf --cases 50      # one target
    python scripts/fuzz.py --targets config --only 17     # one case again, with its error and output
    python scripts/fuzz.py --src /tmp/old/src             # the same cases against another archlab

Targets: see fuzzlib/targets. Outcomes and how each is decided: fuzzlib/harness.py. The table is
printed as Markdown; --json keeps every case that was not accepted or cleanly refused. Cases are
drawn from (seed, target, index) alone, so a case number reproduces the same input anywhere.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))


def _seed_dir(target: str, module) -> Path:
    """The target's undamaged inputs, made once per version of its module by this tree's archlab
    (and the test reference, HF transformers) in a separate process."""
    # every module of the targets (a target's seed maker may live in a helper module of it)
    sources = sorted((HERE / "fuzzlib").rglob("*.py"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    folder = ROOT / ".fuzz" / "seeds" / f"{target}-{digest}"
    if not folder.is_dir():
        print(f"making the {target} seeds in {folder}", file=sys.stderr, flush=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target}-", dir=folder.parent if folder.parent.mkdir(parents=True, exist_ok=True) is None else None))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests"), str(HERE)]),
               "OMP_NUM_THREADS": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error"}
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "--make-seeds", target, str(tmp)],
                       check=True, env=env)
        os.replace(tmp, folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=100, help="cases per target (default 100)")
    ap.add_argument("--targets", default="", help="comma-separated targets (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", type=int, default=None, help="run this one case number and show it")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds before a case counts as a hang")
    ap.add_argument("--mem-gib", type=float, default=4.0, help="address space each case may add (GiB)")
    ap.add_argument("--src", default=str(ROOT / "src"), help="the archlab source tree to fuzz")
    ap.add_argument("--json", default=None, help="write the counts and every problem case here")
    ap.add_argument("--keep", action="store_true", help="keep every case's folder, not only the problems'")
    ap.add_argument("--kinds", action="store_true", help="also print the outcomes by kind of input")
    ap.add_argument("--make-seeds", nargs=2, metavar=("TARGET", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    from fuzzlib.targets import TARGETS

    if args.make_seeds:
        target, folder = args.make_seeds
        TARGETS[target].make_seeds(Path(folder))
        return 0
    names = [t for t in args.targets.split(",") if t] or list(TARGETS)
    unknown = [t for t in names if t not in TARGETS]
    if unknown:
        ap.error(f"unknown target(s) {unknown}; known: {', '.join(TARGETS)}")
    seeds = {t: _seed_dir(t, TARGETS[t]) for t in names}

    # the archlab under test, imported once here so that every forked case has it already
    sys.path.insert(0, str(Path(args.src).resolve()))
    import torch  # noqa: F401
    import archlab
    import archlab.api  # noqa: F401
    import archlab.cli  # noqa: F401
    import importlib
    import pkgutil

    for m in pkgutil.walk_packages(archlab.__path__, "archlab."):  # what cases import lazily: once, here
        if m.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(m.name)
        except Exception:  # noqa: BLE001 - an optional part (e.g. needing a missing extra)
            pass

    try:  # torch imports much on first use of a device context: once here, on meta (no OpenMP pool)
        archlab.build(archlab.tiny("llama-3-8b"), device="meta")
    except Exception:  # noqa: BLE001
        pass
    print(f"archlab from {Path(archlab.__file__).parent}", file=sys.stderr)
    from fuzzlib.harness import OUTCOMES, PROBLEMS, Sandbox

    work = Path(tempfile.mkdtemp(prefix="archlab-fuzz-"))
    table, problems, started = {}, [], time.monotonic()
    for t in names:
        mod = TARGETS[t]
        indices = [args.only] if args.only is not None else range(args.cases)
        cases = []
        for i in indices:
            case = mod.case(seeds[t], random.Random(f"{args.seed}:{t}:{i}"), i)
            case.index = i
            cases.append(case)
        box = Sandbox(work / t, jobs=args.jobs, timeout=args.timeout, limit=int(args.mem_gib * 2**30),
                      references=mod.references(seeds[t]), keep=args.keep or args.only is not None)
        t0 = time.monotonic()
        print(f"{t}: {len(cases)} cases", file=sys.stderr, flush=True)
        results = box.run(cases)
        counts = {o: 0 for o in OUTCOMES}
        kinds: dict[str, dict[str, int]] = {}
        for r in results:
            counts[r.outcome] += 1
            row = kinds.setdefault(r.case.kind, {o: 0 for o in OUTCOMES})
            row[r.outcome] += 1
            if r.outcome in PROBLEMS:
                problems.append(r.to_json())
            if args.only is not None:
                print(f"case {r.case.index} ({r.case.kind}): {r.case.detail}\noutcome: {r.outcome}\n{r.error}")
                print(f"its folder: {work / t}")
        table[t] = {"cases": len(results), **counts, "seconds": round(time.monotonic() - t0, 1), "kinds": kinds}

    cols = ["cases", *OUTCOMES]
    print("| target | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for t, row in table.items():
        print(f"| {t} | " + " | ".join(str(row[c]) for c in cols) + " |")
    total = {c: sum(row[c] for row in table.values()) for c in cols}
    print("| **all** | " + " | ".join(f"**{total[c]}**" for c in cols) + " |")
    if args.kinds:
        print("\n| target | kind of input | cases | accepted | clean error | problems |")
        print("|---|---|---:|---:|---:|---:|")
        for t, row in table.items():
            for kind, c in sorted(row["kinds"].items()):
                print(f"| {t} | {kind} | {sum(c.values())} | {c['accepted']} | {c['clean error']} | "
                      f"{sum(c[p] for p in PROBLEMS)} |")
    print(f"\n{sum(total[p] for p in PROBLEMS)} problem case(s) in {time.monotonic() - started:.0f} s; "
          f"problem folders under {work}", file=sys.stderr)
    for p in problems[:40]:
        print(f"  {p['target']} #{p['index']} {p['kind']}: {p['outcome']}: {p['error'][:200]}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({"seed": args.seed, "src": args.src, "table": table,
                                               "problems": problems}, indent=1))
    return 1 if any(total[p] for p in PROBLEMS) else 0


if __name__ == "__main__":
    sys.exit(main())
