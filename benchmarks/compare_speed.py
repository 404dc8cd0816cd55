"""How long `archlab compare` over every preset takes, as a user meets it: a fresh process each time.

    python benchmarks/compare_speed.py [--repeats 7] [--target 2.0]

Beside it, in the same run, the floor any command pays: the interpreter starting and
`import archlab`. The difference is the command's own work (resolving presets, analysing,
describing, laying out the tables). Also checks that the command imported neither torch nor
matplotlib, which would cost seconds. Speed lives here, never in the tests.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMPARE = (
    "import sys, io, contextlib\n"
    "from archlab.cli import main\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    rc = main(['compare', '--all'] + sys.argv[1:])\n"
    "heavy = [m for m in ('torch', 'matplotlib') if m in sys.modules]\n"
    "print(rc, ','.join(heavy) or '-')\n"
)
IMPORT_ONLY = "import archlab\nprint(0, '-')\n"


def _run(code: str, args: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout.strip()


def _time(code: str, args: list[str], repeats: int) -> tuple[float, float, str]:
    times, out = [], ""
    for _ in range(repeats):
        t, out = _run(code, args)
        times.append(t)
    return statistics.median(times), min(times), out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--target", type=float, default=2.0, help="seconds the whole command should stay under")
    p.add_argument("--json", action="store_true", help="time `compare --all --json` instead of the table")
    args = p.parse_args()
    extra = ["--json"] if args.json else []

    import archlab

    n = len(archlab.presets())
    _run(COMPARE, extra)  # warm the file cache so the first timing is not an outlier
    base_med, base_min, _ = _time(IMPORT_ONLY, [], args.repeats)
    cmp_med, cmp_min, out = _time(COMPARE, extra, args.repeats)
    rc, heavy = out.split()
    what = f"archlab compare --all{' --json' if args.json else ''} ({n} presets)"
    print(f"{'fresh process':<44} {'median s':>9} {'min s':>7}")
    print(f"{'python + import archlab':<44} {base_med:>9.3f} {base_min:>7.3f}")
    print(f"{what:<44} {cmp_med:>9.3f} {cmp_min:>7.3f}")
    print(f"the command's own work: {cmp_med - base_med:.3f} s median; "
          f"{cmp_med / base_med:.1f}x the bare import")
    print(f"exit status {rc}; heavy imports: {heavy if heavy != '-' else 'none (no torch, no matplotlib)'}")
    ok = rc == "0" and heavy == "-" and cmp_med < args.target
    print(f"target < {args.target:g} s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
