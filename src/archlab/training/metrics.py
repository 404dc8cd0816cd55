"""What a run reports: metrics.jsonl (one JSON object per step), a progress bar, loss.png.
Only the first process writes any of them."""

from __future__ import annotations

import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from ..io.atomic import atomic_file


class MetricsLog:
    """DIR/metrics.jsonl, appended one line per step and flushed, so a killed run keeps every
    step it finished. Resuming at step s first drops the lines of steps after s (written by
    the run that was cut short after its last checkpoint), so the file reads as one run."""

    def __init__(self, path: Path, resume_step: int | None):
        self.path = path
        if resume_step is None or not path.exists():
            with atomic_file(path, "w"):
                pass
        else:
            kept = [line for line in read_metrics(path) if line.get("step", 0) <= resume_step]
            with atomic_file(path, "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in kept)
        self._f: TextIO = open(path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._f.write(json.dumps(record) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a metrics.jsonl (a line cut by a kill is skipped)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                out.append(record)
    return out


def _fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    """One line redrawn in place on a terminal: step, loss, validation loss, tokens/s, ETA.
    When stderr is not a terminal (a log file, CI) it prints only the evaluations, one line
    each, and nothing at all when quiet."""

    def __init__(self, total: int, start: int, quiet: bool = False, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.total, self.start = total, start
        self.quiet = quiet
        self.live = not quiet and self.stream.isatty()
        self.t0 = time.perf_counter()
        self.val: float | None = None
        self._last_draw = 0.0
        self._recent: list[tuple[int, float]] = []

    def eta(self, step: int) -> float:
        done = step - self.start
        if done <= 0:
            return float("nan")
        return (time.perf_counter() - self.t0) / done * (self.total - step)

    def update(self, step: int, loss: float, tokens: int, seconds: float) -> None:
        """After each step: its loss, tokens and time. Speed shown is over the last 20 steps
        (one step's is too jumpy to read)."""
        self._recent.append((tokens, seconds))
        del self._recent[:-20]
        if not self.live:
            return
        tokens_per_s = sum(t for t, _ in self._recent) / max(1e-9, sum(s for _, s in self._recent))
        now = time.perf_counter()
        if now - self._last_draw < 0.1 and step < self.total:
            return
        self._last_draw = now
        width = 24
        filled = int(width * step / self.total)
        bar = "#" * filled + "-" * (width - filled)
        val = f" val {self.val:.4f}" if self.val is not None else ""
        line = (f"\r[{bar}] {step}/{self.total} loss {loss:.4f}{val} | {tokens_per_s:,.0f} tok/s | "
                f"{_fmt_time(now - self.t0)} elapsed, {_fmt_time(self.eta(step))} left")
        self.stream.write(line + "\x1b[K")
        self.stream.flush()

    def evaluated(self, step: int, val_loss: float, loss: float | None = None) -> None:
        self.val = val_loss
        if self.quiet:
            return
        if self.live:
            self.stream.write("\r\x1b[K")
        train = f" loss {loss:.4f}" if loss is not None else ""
        self.stream.write(f"step {step}/{self.total}:{train} val_loss {val_loss:.4f} ({_fmt_time(time.perf_counter() - self.t0)})\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        if self.quiet:
            return
        if self.live:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()


def plot_losses(metrics: Path, target: Path, title: str, baseline: float | None = None) -> Path:
    """loss.png: the training loss per step (faint) with a moving average, the validation loss
    at each evaluation, and the unigram baseline (what knowing only token frequencies gives)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics)
    train = [(r["step"], r["loss"]) for r in records if "loss" in r and r["loss"] is not None]
    val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    if train:
        steps, losses = zip(*train)
        ax.plot(steps, losses, color="tab:blue", alpha=0.25, linewidth=0.8, label="train (each step)")
        k = max(1, len(losses) // 50)
        smooth = [sum(losses[max(0, i - k + 1): i + 1]) / len(losses[max(0, i - k + 1): i + 1]) for i in range(len(losses))]
        ax.plot(steps, smooth, color="tab:blue", linewidth=1.6, label=f"train (mean of {k})" if k > 1 else "train")
    if val:
        vs, vl = zip(*val)
        ax.plot(vs, vl, "o-", color="tab:orange", markersize=4, linewidth=1.4, label="validation")
    if baseline is not None:
        ax.axhline(baseline, color="gray", linestyle="--", linewidth=1, label=f"unigram baseline {baseline:.2f}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    with atomic_file(target) as f:
        f.write(buf.getvalue())
    return target
