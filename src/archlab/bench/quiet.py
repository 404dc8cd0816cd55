"""The quiet-machine gate: how much CPU other processes use, from /proc.

/proc/stat's first line counts every CPU's busy jiffies; /proc/self/stat's utime+stime (and
the reaped children's cutime+cstime) are this process's own. Busy minus ours over an interval,
divided by the interval's capacity (elapsed jiffies x CPUs), is the share of the machine that
others took. On a system without /proc (macOS, Windows) the gate reports 0: it cannot see.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def _busy_total() -> tuple[int, int] | None:
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted inside user/nice
    return total - idle, total


def _ours() -> int:
    try:
        text = Path("/proc/self/stat").read_text()
        fields = text[text.rindex(")") + 2:].split()
        return sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    except (OSError, ValueError):
        return 0


class Gate:
    """Samples others' CPU share; `others()` since the last mark, `wait()` for a quiet spell."""

    def __init__(self, threshold: float = 0.05, timeout: float = 120.0, enabled: bool = True, log=None):
        self.threshold, self.timeout, self.enabled = threshold, timeout, enabled
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.samples: list[float] = []  # others' share during each measured sample
        self.waited = 0.0
        self.timed_out = 0
        self._mark = self._read()

    def _read(self):
        bt = _busy_total()
        return None if bt is None else (bt[0], bt[1], _ours())

    def mark(self) -> None:
        self._mark = self._read()

    def others(self) -> float:
        """Others' share of all CPUs since the last mark (0..1), then marks again."""
        now = self._read()
        then, self._mark = self._mark, now
        if now is None or then is None or now[1] <= then[1]:
            return 0.0
        # /proc/stat's total sums every CPU; our jiffies are in the same unit (USER_HZ)
        busy, ours = now[0] - then[0], now[2] - then[2]
        return max(0.0, (busy - ours) / (now[1] - then[1]))

    def wait(self, what: str = "") -> float:
        """Block until others use under the threshold over a 0.5 s window, or the timeout."""
        if not self.enabled:
            return 0.0
        start = time.perf_counter()
        # once the machine has stayed busy through a whole timeout, later waits are short: a
        # loaded machine stays loaded, and the run should end; disturbed rounds are still dropped
        timeout = self.timeout if self.timed_out == 0 else min(self.timeout, 2.0)
        told = False
        while True:
            self.mark()
            time.sleep(0.5)
            share = self.others()
            if share < self.threshold:
                break
            if time.perf_counter() - start > timeout:
                self.timed_out += 1
                if self.timed_out == 1:
                    self.log(f"bench: the machine is still busy after {timeout:.0f} s (others use {share:.0%} of "
                             f"{os.cpu_count()} CPUs) before {what or 'measuring'}; measuring anyway (later waits "
                             "are 2 s), disturbed rounds are dropped")
                break
            if not told and self.timed_out == 0:
                self.log(f"bench: waiting for a quiet machine before {what or 'measuring'} "
                         f"(others use {share:.0%}; threshold {self.threshold:.0%}, timeout {self.timeout:.0f} s)")
                told = True
        self.waited += time.perf_counter() - start
        self.mark()
        return share
