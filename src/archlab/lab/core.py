"""The claims lab's frame: a claim is a statement, its source, and an experiment that measures
it and computes a verdict by a stated rule. This module runs one and writes what it found:

    OUT/CLAIM/result.json   claim, statement, source, verdict, rule, summary, measurements,
                            budget, seed, command, versions, device, seconds
    OUT/CLAIM/plot.png      the measurements drawn
    OUT/CLAIM/verdict.md    the same, for people

An experiment never writes its verdict by hand: it returns measurements and the verdict its
rule computes from them (helpers below), and a result too close to call at its budget says
"mixed" and why.
"""

from __future__ import annotations

import io
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io.atomic import atomic_file

BUDGETS = ("smoke", "default", "large")
VERDICTS = ("confirmed", "not confirmed", "mixed")


class LabError(ValueError):
    """A lab run that cannot start: the message names the claim, budget or folder."""


@dataclass
class Context:
    """What an experiment is given: its budget, seed, a folder for its own files (training
    runs), the device, and a way to say what it is doing."""

    claim: str
    budget: str
    seed: int
    folder: Path
    device: str | None = None
    quiet: bool = False
    main: bool = True  # under torchrun: the first process, which alone speaks and writes

    def say(self, text: str) -> None:
        if not self.quiet and self.main:
            print(f"[{self.claim}] {text}", file=sys.stderr, flush=True)

    def pick(self, smoke: Any, default: Any, large: Any) -> Any:
        """The value for this budget."""
        return {"smoke": smoke, "default": default, "large": large}[self.budget]


@dataclass
class Outcome:
    """What an experiment found. plot(fig) draws the measurements on a matplotlib figure."""

    verdict: str
    rule: str  # how the verdict follows from the measurements, in words
    summary: str  # one sentence with the deciding numbers
    measurements: dict[str, Any]
    plot: Callable[[Any], None] | None = None
    notes: list[str] = field(default_factory=list)  # where this scale differs from the published one, etc.

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


@dataclass(frozen=True)
class Claim:
    name: str
    statement: str
    source: str
    run: Callable[[Context], Outcome]
    needs_training: bool = False


# ---- verdict rules --------------------------------------------------------------------------------

def spread(values: Sequence[float]) -> float:
    """Max - min: with 3 seeds, as honest a spread as any."""
    return max(values) - min(values) if len(values) > 1 else 0.0


def better_beyond_spread(a: Sequence[float], b: Sequence[float], lower_is_better: bool = True) -> tuple[str, str]:
    """Whether a beats b by more than the larger of their spreads over seeds: (verdict, rule).
    A single seed has no spread, so one run can only ever be "mixed"."""
    rule = ("confirmed when the mean of A beats the mean of B by more than the larger spread (max - min) "
            "over seeds of either; not confirmed when B beats A by that much; mixed otherwise")
    if min(len(a), len(b)) < 2:
        return "mixed", rule + " (one seed per side: no spread to compare against)"
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    margin = max(spread(a), spread(b))
    gain = (mb - ma) if lower_is_better else (ma - mb)
    if gain > margin:
        return "confirmed", rule
    if -gain > margin:
        return "not confirmed", rule
    return "mixed", rule


def ratio_verdict(ratio: float, confirm_at: float, deny_below: float, what: str) -> tuple[str, str]:
    """A speed-up or saving: confirmed at or above confirm_at, not confirmed below deny_below."""
    rule = f"{what}: confirmed when >= {confirm_at:g}, not confirmed when < {deny_below:g}, mixed in between"
    if ratio >= confirm_at:
        return "confirmed", rule
    if ratio < deny_below:
        return "not confirmed", rule
    return "mixed", rule


def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 1, sync: Callable[[], None] | None = None) -> float:
    """Median seconds of fn() over repeats, after warmup calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if sync:
            sync()
        t = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# ---- writing ---------------------------------------------------------------------------------------

def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("archlab", "torch", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _device(device: str | None) -> str:
    import torch

    if device and device.startswith("cuda") or (device is None and torch.cuda.is_available()):
        return torch.cuda.get_device_name()
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def _verdict_md(result: dict[str, Any]) -> str:
    lines = [
        f"# {result['claim']}: {result['verdict']}", "",
        f"**Claim.** {result['statement']} ({result['source']})", "",
        f"**Found.** {result['summary']}", "",
        f"**Rule.** {result['rule']}", "",
        f"Budget `{result['budget']}`, seed {result['seed']}, {result['seconds']:.0f} s on {result['device']}.",
        f"Reproduce: `{result['command']}`", "",
        "![plot](plot.png)",
    ]
    if result.get("notes"):
        lines += ["", "**Notes.**", ""] + [f"- {n}" for n in result["notes"]]
    return "\n".join(lines) + "\n"


def write_result(claim: Claim, ctx: Context, outcome: Outcome, seconds: float, command: str,
                 write: bool = True) -> dict[str, Any]:
    result = {
        "claim": claim.name, "statement": claim.statement, "source": claim.source,
        "verdict": outcome.verdict, "rule": outcome.rule, "summary": outcome.summary,
        "measurements": outcome.measurements, "notes": outcome.notes,
        "budget": ctx.budget, "seed": ctx.seed, "command": command, "versions": _versions(),
        "device": _device(ctx.device), "seconds": round(seconds, 1),
        "processes": _launched()[1],
    }
    if not write:
        return result
    folder = ctx.folder
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_file(folder / "result.json", "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    if outcome.plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(7.5, 4.5), dpi=110)
        outcome.plot(fig)
        fig.suptitle(f"{claim.name}: {outcome.verdict}", fontsize=10)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        with atomic_file(folder / "plot.png") as f:
            f.write(buf.getvalue())
    with atomic_file(folder / "verdict.md", "w") as f:
        f.write(_verdict_md(result))
    return result


def _launched() -> tuple[int, int]:
    """(rank, world) as torchrun set them, as training.distributed.start reads them; (0, 1) alone."""
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return int(env["RANK"]), int(env["WORLD_SIZE"])
    return 0, 1


@contextmanager
def processes(device: str | None = None) -> Iterator[Any]:
    """Under torchrun, one process group for a whole lab run, so that every archlab.train a
    claim makes trains data-parallel over all the processes (each on its own GPU, when there
    are GPUs). Everything else a claim does runs on every process alike, from the same seed,
    and the first process alone writes. Yields the Processes, or None when alone."""
    world = _launched()[1]
    import torch.distributed as dist

    if world <= 1 or (dist.is_available() and dist.is_initialized()):
        yield None
        return
    from ..training.distributed import start

    procs = start("ddp", device)
    try:
        yield procs
    finally:
        procs.close()


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def run_claim(claim: Claim, out: Path, budget: str = "default", seed: int = 0, device: str | None = None,
              quiet: bool = False, command: str | None = None) -> dict[str, Any]:
    if budget not in BUDGETS:
        raise LabError(f"--budget: expected one of {', '.join(BUDGETS)}, got {budget!r}")
    with processes(device):
        main = _launched()[0] == 0
        ctx = Context(claim.name, budget, seed, Path(out) / claim.name, device, quiet, main)
        runs = ctx.folder / "runs"
        if runs.is_dir() and main:  # a rerun of the claim starts its training runs afresh (the results are replaced at the end)
            import shutil

            shutil.rmtree(runs)
        _barrier()
        command = command or f"archlab lab {claim.name} --budget {budget} --seed {seed}"
        start = time.perf_counter()
        ctx.say(f"{claim.statement} ({budget} budget)")
        outcome = claim.run(ctx)
        result = write_result(claim, ctx, outcome, time.perf_counter() - start, command, write=main)
        ctx.say(f"{result['verdict']}: {result['summary']} ({result['seconds']:.0f} s) -> {ctx.folder}")
        _barrier()
    return result


def read_results(folder: str | Path) -> list[dict[str, Any]]:
    """Every claim's result.json under `folder` (as `archlab lab` wrote them), each with its
    plot's bytes under "plot_png", in the order of the folder's names."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LabError(f"{folder}: no such lab results folder")
    out = []
    for path in sorted(folder.glob("*/result.json")):
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise LabError(f"{path}: not a readable result ({e})") from None
        if not isinstance(result, dict) or not {"claim", "verdict", "summary", "statement"} <= set(result):
            raise LabError(f"{path}: not a lab result (needs claim, statement, verdict, summary)")
        plot = path.parent / "plot.png"
        result["plot_png"] = plot.read_bytes() if plot.is_file() else None
        out.append(result)
    if not out:
        raise LabError(f"{folder}: no results (OUT/CLAIM/result.json) inside; run `archlab lab CLAIM --out {folder}`")
    return out


def write_summary(folder: str | Path) -> Path:
    """OUT/claims.md: every result in the folder, a table of verdicts with the deciding
    numbers, then each claim's rule, plot and the command that reproduces it."""
    folder = Path(folder)
    results = read_results(folder)
    lines = ["# The claims, measured", "",
             "Generated by `archlab lab` from the results in this folder; every verdict is computed from the",
             "measurements by the rule shown under it.", "",
             "| claim | verdict | found | budget | time |", "|---|---|---|---|---:|"]
    for r in results:
        summary = str(r["summary"]).replace("|", "\\|")
        lines.append(f"| [{r['claim']}](#{r['claim']}) | **{r['verdict']}** | {summary} | {r.get('budget', '?')} | {r.get('seconds', 0):.0f} s |")
    for r in results:
        lines += ["", f"## {r['claim']}", "", f"**Claim.** {r['statement']} ({r['source']})", "",
                  f"**Verdict: {r['verdict']}.** {r['summary']}", "", f"**Rule.** {r.get('rule', '')}", ""]
        if r.get("plot_png"):
            lines += [f"![{r['claim']}]({r['claim']}/plot.png)", ""]
        lines.append(f"Reproduce: `{r.get('command', '')}` ({r.get('device', '')}, seed {r.get('seed', '?')}).")
        if r.get("notes"):
            lines += ["", "Notes:", ""] + [f"- {note}" for note in r["notes"]]
    target = folder / "claims.md"
    with atomic_file(target, "w") as f:
        f.write("\n".join(lines) + "\n")
    return target
