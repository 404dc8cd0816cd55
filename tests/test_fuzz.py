"""The fuzz harness (scripts/fuzz.py, issue 12): first that it sees each kind of problem it counts
(a harness that cannot fail proves nothing), then a slice of every target on this tree, which
must have no problem at all. The full runs (thousands of cases) are in docs/reliability.md."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch  # noqa: F401 - imported before the harness forks: a child importing it would take seconds

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

from fuzzlib.harness import Case, Sandbox  # noqa: E402


def _opens_outside(folder: Path):
    return (folder / "outside" / "secret").read_text()


def _allocates(folder: Path):
    import torch

    return torch.ones(3 << 28).sum()  # 3 GiB resident


def _allocates_too_much(folder: Path):
    import torch

    return torch.empty(1 << 40, dtype=torch.uint8)


def _sleeps(folder: Path):
    time.sleep(60)


def _raw(folder: Path):
    return {}["num_hidden_layers"]


def _named(folder: Path):
    raise ValueError("config.json: num_hidden_layers=-1; expected an integer from 1 to 4096")


def _unnamed(folder: Path):
    raise ValueError("invalid literal for int() with base 10: 'x'")


def _ones(folder: Path):
    return [1.0, 2.0]


def _nan(folder: Path):
    return [float("nan")]


def _killed(folder: Path):
    os.kill(os.getpid(), 9)


def _secret(folder: Path):
    (folder / "outside" / "secret").write_text("s")


def test_the_harness_sees_every_kind_of_problem(tmp_path):
    cases = [
        Case("t", "escape", "", _opens_outside, _secret),
        Case("t", "huge-rss", "", _allocates),
        Case("t", "huge-virtual", "", _allocates_too_much),
        Case("t", "hang", "", _sleeps),
        Case("t", "raw", "", _raw, names=("num_hidden_layers",)),
        Case("t", "named", "", _named, names=("num_hidden_layers",)),
        Case("t", "unnamed", "", _unnamed, names=("num_hidden_layers",)),
        Case("t", "bad-accepted", "", _ones, bad=True),
        Case("t", "bad-ignored", "", _ones, bad=True, reference="ref"),
        Case("t", "nan", "", _nan),
        Case("t", "good", "", _ones),
        Case("t", "escape-accepted", "", _ones, escape=True),
        Case("t", "killed", "", _killed),
    ]
    for i, c in enumerate(cases):
        c.index = i
    box = Sandbox(tmp_path, jobs=2, timeout=4, limit=2 << 30, references={"ref": _ones}, progress=False)
    got = {r.case.kind: r.outcome for r in box.run(cases)}
    assert got == {
        "escape": "escape", "huge-rss": "huge allocation", "huge-virtual": "huge allocation", "hang": "hang",
        "raw": "crash", "named": "clean error", "unnamed": "crash", "bad-accepted": "silent acceptance",
        "bad-ignored": "accepted", "nan": "silent acceptance", "good": "accepted", "escape-accepted": "escape",
        "killed": "crash",
    }


def _fuzz(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPTS / "fuzz.py"), *args], capture_output=True, text=True,
                          env=env, timeout=1800)


def test_a_slice_of_every_target_has_no_problem():
    out = _fuzz("--cases", "30", "--seed", "7")
    assert out.returncode == 0, out.stdout + out.stderr[-4000:]
    assert "| **all** |" in out.stdout


@pytest.mark.slow
def test_a_larger_slice_of_every_target_has_no_problem():
    out = _fuzz("--cases", "200", "--seed", "11")
    assert out.returncode == 0, out.stdout + out.stderr[-4000:]
