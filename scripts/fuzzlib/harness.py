"""The fuzz harness of issue 12: every case runs in a forked child under an address-space limit
and a timeout, with an audit hook recording which files it opens; the parent counts outcomes.

Fork, not a fresh interpreter per case: importing torch and archlab takes seconds, a fork
milliseconds, so a few thousand cases take minutes. The parent imports archlab (this tree's, or
an old one's with --src, for "before" counts) but runs no torch op before forking, so no OpenMP
pool is copied half-alive into a child.

Outcomes (the issue's words):
  accepted           the input was used, and it was valid (or a bad value the reader ignores:
                     the outputs equal those of the undamaged input)
  clean error        refused with an error of the kind archlab raises for bad input (a ValueError
                     or OSError subclass) whose message names what was wrong (case.names)
  crash              any other exception, or an error naming nothing that was wrong, or a child
                     killed by a signal
  hang               still running at the timeout
  huge allocation    MemoryError, an allocator failure, or the peak resident memory grew by more
                     than HUGE while the input was a few KiB
  silent acceptance  a bad input (case.bad) used with an effect (outputs differ from the
                     undamaged input's), or non-finite outputs
  escape             a file outside the input folder was opened, or a case whose data lies only
                     outside the folder was accepted
"""

from __future__ import annotations

import json
import math
import shutil
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

OUTCOMES = ("accepted", "clean error", "crash", "hang", "huge allocation", "silent acceptance", "escape")
PROBLEMS = OUTCOMES[2:]
HUGE = 1 << 30  # inputs are at most a few MiB: a GiB more of resident memory is out of all proportion
_ALLOCATOR_FAILURES = ("can't allocate memory", "cannot allocate memory", "std::bad_alloc", "out of memory")


@dataclass
class Case:
    """One input and what a user would do with it. `prepare(folder)` runs in the parent and writes
    the input under folder/"in" (decoys meant to stay unread under folder/"outside"); `run(folder)`
    runs in the sandboxed child and returns outputs to check (a tensor, numbers, text) or None."""

    target: str
    kind: str
    detail: str
    run: Callable[[Path], Any]
    prepare: Callable[[Path], None] | None = None
    bad: bool = False  # an invalid input: it must be refused, or be ignored with no effect
    names: tuple[str, ...] = ()  # a clean error names at least one of these
    reference: str | None = None  # key of the undamaged input's outputs (Target.references)
    escape: bool = False  # the data it asks for lies only outside the folder: accepting it is an escape
    index: int = -1


# ---- the child ---------------------------------------------------------------------------------

_WATCH: dict[str, Any] = {}


def _audit(event: str, args: tuple) -> None:
    if event != "open" or not _WATCH:
        return
    path = args[0]
    if isinstance(path, int) or path is None:
        return
    try:
        real = os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return
    if real.startswith(_WATCH["outside"]):
        _WATCH["opened"].append(real)


sys.addaudithook(_audit)  # audit hooks cannot be removed: it records only while _WATCH is set


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _plain(value: Any) -> Any:
    """Outputs as JSON: tensors and arrays as nested lists of floats (NaN/inf as strings)."""
    if hasattr(value, "detach"):
        value = value.detach().double().cpu().numpy()
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return repr(value)


def _child(case: Case, folder: Path, limit: int) -> None:
    """In the forked child: limits, run, record. Never returns."""
    code = 0
    try:
        os.setsid()  # the parent kills the whole group at the timeout
        out = os.open(folder / "output.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        import resource

        import torch

        torch.set_num_threads(1)
        resource.setrlimit(resource.RLIMIT_AS, (_status("VmSize") + limit,) * 2)
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM: the peak from here on is this case's
        except OSError:
            pass
        start = _status("VmRSS")
        _WATCH.update(outside=str(folder / "outside"), opened=[])
        result: dict[str, Any] = {}
        try:
            result["outputs"] = _plain(case.run(folder))
        except MemoryError as e:
            result.update(error="MemoryError", module="builtins", message=str(e)[:2000], memory_error=True)
        except BaseException as e:  # noqa: BLE001 - every exception is an outcome to count
            result.update(error=type(e).__name__, module=type(e).__module__, message=str(e)[:2000],
                          mro=[c.__name__ for c in type(e).__mro__],
                          where=traceback.format_exc(limit=-3)[-2000:])
        result["opened_outside"] = list(_WATCH["opened"])
        _WATCH.clear()
        result["peak_growth"] = max(0, _status("VmHWM") - start)
        tmp = folder / "result.json.tmp"
        tmp.write_text(json.dumps(result))
        os.replace(tmp, folder / "result.json")
    except BaseException:  # noqa: BLE001
        code = 3
    finally:
        os._exit(code)


# ---- the parent --------------------------------------------------------------------------------

@dataclass
class Outcome:
    case: Case
    outcome: str
    error: str = ""
    seconds: float = 0.0
    peak: int = 0
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        c = self.case
        return {"target": c.target, "index": c.index, "kind": c.kind, "detail": c.detail, "bad": c.bad,
                "outcome": self.outcome, "error": self.error, "seconds": round(self.seconds, 3),
                "peak_mib": round(self.peak / 2**20, 1), **self.extra}


def _finite(value: Any) -> bool:
    if isinstance(value, str):
        return value not in ("nan", "inf", "-inf")
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


def _numbers(value: Any) -> bool:
    return isinstance(value, (int, float)) or (isinstance(value, list) and all(_numbers(v) for v in value))


def same(a: Any, b: Any, tol: float = 1e-4) -> bool:
    """Outputs equal up to float rounding (numbers) or exactly (anything else)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], tol) for k in a)
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= tol * max(1.0, abs(b))
    return a == b


def classify(case: Case, res: dict, reference: Any = None) -> tuple[str, str]:
    """(outcome, the error or what was wrong) of a finished child's result."""
    if res.get("opened_outside"):
        return "escape", f"opened {res['opened_outside'][0]}"
    message = res.get("message", "")
    if res.get("memory_error") or any(s in message.lower() for s in _ALLOCATOR_FAILURES):
        return "huge allocation", f"{res.get('error')}: {message}"
    if res.get("peak_growth", 0) > HUGE:
        return "huge allocation", f"peak memory grew by {res['peak_growth'] / 2**30:.1f} GiB"
    if "error" in res:
        text = f"{res['error']}: {message}"
        kind_ok = bool({"ValueError", "OSError"} & set(res.get("mro", []))) and res["error"] not in (
            "UnicodeDecodeError", "UnicodeEncodeError", "JSONDecodeError")
        named = any(n.lower() in message.lower() for n in case.names) if case.names else True
        return ("clean error" if kind_ok and named and message.strip() else "crash"), text
    outputs = res.get("outputs")
    if case.escape:
        return "escape", "accepted data that lies only outside the input folder"
    if not _finite(outputs):
        return "silent acceptance", "accepted, and its outputs are not finite"
    if case.bad:
        if reference is not None and same(outputs, reference):
            return "accepted", "the bad value is ignored: outputs equal the undamaged input's"
        return "silent acceptance", "a bad input was accepted" + (" and changed the outputs" if reference is not None else "")
    return "accepted", ""


class Sandbox:
    """Runs cases `jobs` at a time in forked children under `folder`."""

    def __init__(self, folder: Path, *, jobs: int = 2, timeout: float = 30.0, limit: int = 4 << 30,
                 references: dict[str, Callable[[Path], Any]] | None = None, progress: bool = True,
                 keep: bool = False):
        self.folder, self.jobs, self.timeout, self.limit = Path(folder), jobs, timeout, limit
        self.reference_runs = references or {}
        self.references: dict[str, Any] = {}
        self.progress, self.keep = progress, keep

    def _reference(self, key: str | None) -> Any:
        if key is None:
            return None
        if key not in self.references:
            case = Case("reference", key, key, self.reference_runs[key])
            [res] = self._run_all([case])
            if res.outcome != "accepted":
                raise RuntimeError(f"the undamaged input {key!r} itself fails: {res.outcome}: {res.error}")
            self.references[key] = res.extra.pop("outputs")
        return self.references[key]

    def run(self, cases: list[Case]) -> list[Outcome]:
        for key in dict.fromkeys(c.reference for c in cases if c.reference):
            self._reference(key)
        return self._run_all(cases)

    def _run_all(self, cases: list[Case]) -> list[Outcome]:
        results: list[Outcome | None] = [None] * len(cases)
        running: dict[int, tuple[int, Path, float]] = {}
        pending = list(enumerate(cases))
        done = 0
        while pending or running:
            while pending and len(running) < self.jobs:
                i, case = pending.pop(0)
                folder = self.folder / f"{case.target}-{case.index}-{case.kind}"[:120]
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "in").mkdir(exist_ok=True)
                (folder / "outside").mkdir(exist_ok=True)
                try:
                    if case.prepare is not None:
                        case.prepare(folder)
                except Exception as e:  # a generator slip: report it, do not count it against archlab
                    raise RuntimeError(f"preparing {case.target} case {case.index} ({case.kind}) failed: {e!r}") from e
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _child(case, folder, self.limit)
                running[pid] = (i, folder, time.monotonic())
            finished = False
            for pid, (i, folder, start) in list(running.items()):
                got, status = os.waitpid(pid, os.WNOHANG)
                elapsed = time.monotonic() - start
                if got == 0 and elapsed < self.timeout:
                    continue
                if got == 0:  # past the timeout
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    os.waitpid(pid, 0)
                    results[i] = Outcome(cases[i], "hang", f"still running after {self.timeout:.0f} s", elapsed)
                else:
                    results[i] = self._finished(cases[i], folder, status, elapsed)
                del running[pid]
                finished = True
                done += 1
                if self.progress and len(cases) > 1 and (done % 50 == 0 or done == len(cases)):
                    print(f"  {done}/{len(cases)} cases", file=sys.stderr, flush=True)
            if not finished:
                time.sleep(0.005)
        return results  # type: ignore[return-value]

    def _finished(self, case: Case, folder: Path, status: int, elapsed: float) -> Outcome:
        path = folder / "result.json"
        if not path.is_file():
            tail = (folder / "output.txt").read_text(errors="replace")[-1500:] if (folder / "output.txt").exists() else ""
            how = f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit status {os.WEXITSTATUS(status)}"
            outcome = "huge allocation" if any(s in tail.lower() for s in _ALLOCATOR_FAILURES) else "crash"
            return Outcome(case, outcome, f"the child died ({how}) {tail.strip()[-300:]}", elapsed)
        res = json.loads(path.read_text())
        if case.target == "reference":
            return Outcome(case, "accepted" if "error" not in res else "crash", res.get("message", ""), elapsed,
                           res.get("peak_growth", 0), {"outputs": res.get("outputs")})
        outcome, why = classify(case, res, self.references.get(case.reference) if case.reference else None)
        extra = {"where": res["where"]} if outcome == "crash" and "where" in res else {}
        if outcome in ("accepted", "clean error") and not self.keep:
            shutil.rmtree(folder, ignore_errors=True)  # problems stay, to look at
        return Outcome(case, outcome, why[:1000], elapsed, res.get("peak_growth", 0), extra)
