"""The claims lab's frame and its registry: every claim runs at smoke budget and writes a
complete result whose verdict follows its rule."""

from __future__ import annotations

import json

import pytest

from archlab import lab
from archlab.lab import core
from archlab.lab.core import better_beyond_spread, ratio_verdict

FIELDS = ("claim", "statement", "source", "verdict", "rule", "summary", "measurements", "budget", "seed", "command",
          "versions", "device", "seconds")


def check_result(folder, name: str) -> dict:
    """What every claim's run must leave behind, whatever its verdict."""
    result = json.loads((folder / name / "result.json").read_text())
    assert set(FIELDS) <= set(result), set(FIELDS) - set(result)
    assert result["claim"] == name and result["verdict"] in core.VERDICTS
    assert result["summary"] and result["rule"] and result["source"]
    assert (folder / name / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"# {name}: {result['verdict']}" in (folder / name / "verdict.md").read_text()
    return result


def test_better_beyond_spread():
    rule = better_beyond_spread([1.0, 1.1, 1.05], [1.5, 1.6, 1.55])[1]
    assert "spread" in rule
    assert better_beyond_spread([1.0, 1.1, 1.05], [1.5, 1.6, 1.55])[0] == "confirmed"
    assert better_beyond_spread([1.5, 1.6, 1.55], [1.0, 1.1, 1.05])[0] == "not confirmed"
    assert better_beyond_spread([1.0, 1.3], [1.1, 1.2])[0] == "mixed"  # within the spread
    assert better_beyond_spread([1.0], [2.0])[0] == "mixed"  # one seed: no spread to judge by
    assert better_beyond_spread([2.0, 2.1], [1.0, 1.1], lower_is_better=False)[0] == "confirmed"


def test_ratio_verdict():
    assert ratio_verdict(2.5, 2.0, 1.2, "speed-up")[0] == "confirmed"
    assert ratio_verdict(1.5, 2.0, 1.2, "speed-up")[0] == "mixed"
    assert ratio_verdict(1.0, 2.0, 1.2, "speed-up")[0] == "not confirmed"


def test_outcome_refuses_a_made_up_verdict():
    with pytest.raises(ValueError, match="verdict must be one of"):
        core.Outcome("probably", "rule", "summary", {})


def test_every_claim_has_a_statement_and_a_source():
    claims = lab.claims()
    assert "kv-cache" in claims
    for name, claim in claims.items():
        assert claim.name == name and claim.statement and claim.source


def test_unknown_claim_and_budget_are_named(tmp_path, capsys):
    from archlab.cli import main

    assert main(["lab", "kv-cahce", "--out", str(tmp_path)]) == 2
    assert "unknown claim 'kv-cahce'; did you mean 'kv-cache'?" in capsys.readouterr().err
    assert main(["lab", "kv-cache", "--budget", "huge", "--out", str(tmp_path)]) == 2
    assert "--budget: expected one of smoke, default, large" in capsys.readouterr().err


def test_lab_list(capsys):
    from archlab.cli import main

    assert main(["lab", "list", "--width", "200"]) == 0
    out = capsys.readouterr().out
    for name in lab.claims():
        assert name in out


@pytest.mark.slow
def test_kv_cache_at_smoke_budget(tmp_path, capsys):
    from archlab.cli import main

    assert main(["lab", "kv-cache", "--budget", "smoke", "--out", str(tmp_path), "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("kv-cache: ")
    result = check_result(tmp_path, "kv-cache")
    summary = (tmp_path / "claims.md").read_text()
    assert f"| [kv-cache](#kv-cache) | **{result['verdict']}** |" in summary and "![kv-cache](kv-cache/plot.png)" in summary
    m = result["measurements"]
    # every cache measured from its tensors equals the analysis, and the ratios follow the head counts
    assert m["measured_bytes"] == m["analytic_bytes"]
    assert m["ratio_to_mha_at_max"]["GQA 8/2"] == 4 and m["ratio_to_mha_at_max"]["MQA"] == 8
    assert result["verdict"] == "confirmed" and result["budget"] == "smoke" and result["command"].startswith("archlab lab kv-cache")
    # the report shows the lab's verdicts and plots when given the folder
    page = tmp_path / "report.html"
    assert main(["report", "gpt2", "--lab", str(tmp_path), "-o", str(page), "--quiet"]) == 0
    html = page.read_text()
    assert "<h2>Claims, measured</h2>" in html and 'id="lab-kv-cache"' in html and "data:image/png;base64," in html
    assert main(["report", "gpt2", "--lab", str(tmp_path / "nothing"), "-o", str(page), "--quiet"]) == 2


def test_every_claim_has_a_smoke_run_test():
    """`archlab lab all --budget smoke` in pieces: each claim's own test file runs it at smoke."""
    from pathlib import Path

    from archlab.lab import _MODULES

    here = Path(__file__).parent
    for module in _MODULES:
        text = (here / f"test_lab_{module}.py").read_text() if module != "kv_cache" else Path(__file__).read_text()
        assert 'budget="smoke"' in text or '"--budget", "smoke"' in text, module


def _losses(tree, path=""):
    """Every number under a key naming a loss, by its path in the measurements."""
    out = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.update(_losses(v, f"{path}/{k}") if isinstance(v, (dict, list)) else
                       ({f"{path}/{k}": v} if "loss" in str(k) and isinstance(v, float) else {}))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out.update(_losses(v, f"{path}/{i}"))
    return out


@pytest.mark.slow
def test_lab_under_torchrun_trains_on_every_process_and_writes_once(tmp_path):
    """`torchrun -m archlab lab ffn`: its training runs are data-parallel over 2 processes, the
    first process alone writes, and every loss equals the one-process run's."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import archlab
    from archlab.cli import main

    assert main(["lab", "ffn", "--budget", "smoke", "--out", str(tmp_path / "one"), "--quiet"]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(archlab.__file__).parents[1])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "archlab",
           "lab", "ffn", "--budget", "smoke", "--out", str(tmp_path / "two"), "--quiet"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("ffn: ") == 1  # one process speaks
    one, two = check_result(tmp_path / "one", "ffn"), check_result(tmp_path / "two", "ffn")
    assert two["processes"] == 2 and one["processes"] == 1
    assert two["command"].startswith("torchrun --nproc-per-node 2 -m archlab lab ffn")
    states = list((tmp_path / "two" / "ffn" / "runs").rglob("state.json"))
    assert states and all(json.loads(p.read_text())["processes"] == 2 for p in states)
    a, b = _losses(one["measurements"]), _losses(two["measurements"])
    assert a.keys() == b.keys() and a
    for k in a:
        assert b[k] == pytest.approx(a[k], rel=1e-4), k
