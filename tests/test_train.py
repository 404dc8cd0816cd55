"""archlab.train: resumable exactly, the same on several processes, balanced MoE, safe checkpoints.

Every run here trains a tiny model on a small synthetic corpus with the byte tokenizer, on
the CPU. What is compared is always two runs of the loop against each other (resumed vs
uninterrupted, two processes vs one) or against a stated property (load toward uniform), never
against numbers recorded from an earlier run."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

import archlab
from archlab.training import TrainError, TrainOptions
from archlab.training import checkpoint as ckpt
from archlab.training import loop
from archlab import memory
from archlab.training.distributed import Processes

from marks import QUICK_PRESETS, slow_except

WORDS = ("the king hath sent for thee my lord and I will go to him anon but first tell me "
         "what news from France where the duke doth keep his court with all his men").split()


def _corpus(folder: Path, docs: int = 12, words: int = 900) -> Path:
    """Documents of pseudo-English: a fixed word list in a seeded order, so a model has
    something to learn (word spellings, spaces) and the text is the same on every run."""
    import random

    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(docs):
        lines = []
        for _ in range(words // 12):
            lines.append(" ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + ".")
        (folder / f"doc{d:02d}.txt").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return _corpus(tmp_path_factory.mktemp("corpus") / "texts")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    # token files are cached by content under $ARCHLAB_CACHE: a private one per test module
    monkeypatch.setenv("ARCHLAB_CACHE", str(tmp_path_factory.getbasetemp() / "archlab-cache"))


SMALL = dict(steps=8, batch=4, seq_len=32, eval_every=4, eval_tokens=256, quiet=True)


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _losses(run: Path) -> list[tuple]:
    """Everything a run logs that depends on the numbers (not on the clock)."""
    keys = ("step", "loss", "val_loss", "lr", "tokens", "grad_norm", "expert_imbalance", "aux_loss")
    return [tuple(r.get(k) for k in keys) for r in _metrics(run)]


class _Stop(Exception):
    pass


def _interrupt_at(monkeypatch, stop_step: int) -> None:
    """Make the loop die as a kill would, when it starts step `stop_step`."""
    real = loop.batch_starts

    def starts(seed, step, *args):
        if step == stop_step:
            raise _Stop(f"killed at step {step}")
        return real(seed, step, *args)

    monkeypatch.setattr(loop, "batch_starts", starts)


# ---- the run folder ----------------------------------------------------------------------------

def test_run_writes_metrics_plot_config_tokenizer_and_checkpoint(tmp_path, corpus):
    run = tmp_path / "run"
    result = archlab.train("llama-3-8b", corpus, run, tiny=True, **SMALL)
    records = _metrics(run)
    assert records[0] == {"step": 0, "tokens": 0, "val_loss": records[0]["val_loss"]}
    steps = [r for r in records if r["step"] > 0]
    assert [r["step"] for r in steps] == list(range(1, 9))
    for r in steps:
        assert {"step", "loss", "lr", "tokens", "tokens_per_s"} <= set(r)
        assert r["tokens"] == r["step"] * 4 * 32
    assert [r["step"] for r in records if "val_loss" in r] == [0, 4, 8]
    assert steps[-1]["loss"] < steps[0]["loss"]  # it learns
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert archlab.ModelConfig.from_dict(json.loads((run / "model_config.json").read_text())).vocab_size == 256
    assert (run / "tokenizer.json").is_file() and (run / "train_config.json").is_file()
    assert result.checkpoint == run / "checkpoints" / "step-00000008"
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-00000008"
    assert result.val_loss == records[-1]["val_loss"] and result.unigram > 0


def test_run_folder_loads_tokenizes_and_generates(tmp_path, corpus, capsys):
    run = tmp_path / "run"
    archlab.train("llama-3-8b", corpus, run, tiny=True, **SMALL)
    model = archlab.load(run)
    tok = archlab.load_tokenizer(run)
    assert tok.encode("king") == list(b"king")
    # the loaded model is the trained one: its validation loss is the run's last
    ids = torch.tensor([tok.encode("The king hath sent for thee my lord and I will go")])
    assert torch.isfinite(model(ids)).all()
    # every checkpoint file is read without unrestricted pickle
    latest = ckpt.latest(run)
    torch.load(latest / "optimizer.pt", weights_only=True)
    torch.load(latest / "rng.pt", weights_only=True)
    from archlab.cli import main

    assert main(["generate", str(run), "The king", "--max-new-tokens", "8"]) == 0
    assert capsys.readouterr().out.startswith("The king")


def test_loaded_checkpoint_equals_the_trained_model(tmp_path, corpus):
    run = tmp_path / "run"
    archlab.train("deepseek-v3", corpus, run, tiny=True, **SMALL)
    state = archlab.load(run).state_dict()
    saved = ckpt.load_weights(ckpt.latest(run) / "model.safetensors")
    assert state.keys() == saved.keys()
    for k in saved:
        assert torch.equal(state[k], saved[k]), k


# ---- resume ------------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", slow_except(["llama-3-8b", "deepseek-v3", "qwen3-next-80b-a3b"], ["llama-3-8b"]))
def test_resume_equals_uninterrupted(tmp_path, corpus, monkeypatch, preset):
    """Killed after its step-4 checkpoint, at step 6; resumed: every logged number of steps
    5-8 equals the uninterrupted run's exactly (CPU)."""
    options = dict(SMALL, save_every=4)
    archlab.train(preset, corpus, tmp_path / "straight", tiny=True, **options)
    _interrupt_at(monkeypatch, 6)
    with pytest.raises(_Stop):
        archlab.train(preset, corpus, tmp_path / "cut", tiny=True, **options)
    monkeypatch.undo()
    assert ckpt.latest(tmp_path / "cut").name == "step-00000004"
    archlab.train(preset, corpus, tmp_path / "cut", tiny=True, resume=True, **options)
    assert _losses(tmp_path / "cut") == _losses(tmp_path / "straight")


def test_resume_from_a_finished_run_says_so(tmp_path, corpus):
    run = tmp_path / "run"
    archlab.train("llama-3-8b", corpus, run, tiny=True, **SMALL)
    with pytest.raises(TrainError, match="already at step 8.*raise --steps"):
        archlab.train("llama-3-8b", corpus, run, tiny=True, resume=True, **SMALL)
    result = archlab.train("llama-3-8b", corpus, run, tiny=True, resume=True, **{**SMALL, "steps": 10})
    assert result.steps == 10


def test_resume_refuses_another_architecture_tokenizer_or_batch(tmp_path, corpus):
    run = tmp_path / "run"
    archlab.train("llama-3-8b", corpus, run, tiny=True, **SMALL)
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    with pytest.raises(TrainError, match="trained llama-3-8b-tiny, a different architecture"):
        archlab.train("gpt2", corpus, run, tiny=True, resume=True, **{**SMALL, "steps": 10})
    with pytest.raises(TrainError, match="tokenizer 'byte'.*'bpe:300'"):
        archlab.train("llama-3-8b", corpus, run, tiny=True, resume=True, tokenizer="bpe:300", **{**SMALL, "steps": 10})
    with pytest.raises(TrainError, match="--batch 4 -> 8"):
        archlab.train("llama-3-8b", corpus, run, tiny=True, resume=True, **{**SMALL, "steps": 10, "batch": 8})
    with pytest.raises(TrainError, match="already holds a run.*--resume"):
        archlab.train("llama-3-8b", corpus, run, tiny=True, **SMALL)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before


def test_resume_without_a_checkpoint_is_refused(tmp_path, corpus):
    with pytest.raises(TrainError, match="no checkpoint to continue"):
        archlab.train("llama-3-8b", corpus, tmp_path / "nothing", tiny=True, resume=True, **SMALL)


# ---- fine-tuning from a run's weights ------------------------------------------------------------

def test_init_from_starts_where_the_run_ended(tmp_path, corpus):
    """The fine-tune's step-0 evaluation is the same windows as the run's last one: equal
    losses exactly (CPU) mean the same weights; a fresh optimizer follows."""
    base = archlab.train("llama-3-8b", corpus, tmp_path / "base", tiny=True, **SMALL)
    ft = archlab.train(None, corpus, tmp_path / "ft", init_from=tmp_path / "base", **{**SMALL, "steps": 4, "seed": 1})
    assert ft.val_losses[0] == base.val_loss
    assert ft.config == base.config
    meta = json.loads((tmp_path / "ft" / "train_config.json").read_text())
    assert meta["init_from"] == {"checkpoint": str(ckpt.latest(tmp_path / "base")), "step": 8, "config_changes": []}
    # fresh weights would start near ln(256); these start from the trained run's loss
    fresh = archlab.train("llama-3-8b", corpus, tmp_path / "fresh", tiny=True, **{**SMALL, "steps": 4, "seed": 1})
    assert ft.val_losses[0] < fresh.val_losses[0] - 0.5
    # a checkpoint folder works as well as its run folder
    again = archlab.train(None, corpus, tmp_path / "ft2", init_from=ckpt.latest(tmp_path / "base"), **{**SMALL, "steps": 1})
    assert again.val_losses[0] == base.val_loss


def test_init_from_with_a_scaled_rope_at_a_longer_length(tmp_path, corpus):
    """The fine-tune the positions claim needs: RoPE scaled 4x, trained at 4x the length.
    The weights load unchanged; only the frequencies differ, and the change is recorded."""
    from archlab.model_config import RopeScaling

    archlab.train("llama-3-8b", corpus, tmp_path / "base", tiny=True, **SMALL)
    cfg = archlab.load(tmp_path / "base").config
    scaled = cfg.replace(position=dataclasses.replace(cfg.rope, scaling=RopeScaling("yarn", factor=4.0, original_max_seq_len=32)))
    ft = archlab.train(scaled, corpus, tmp_path / "ft", init_from=tmp_path / "base", **{**SMALL, "seq_len": 128, "steps": 2})
    assert ft.config.rope.scaling.kind == "yarn"
    changes = json.loads((tmp_path / "ft" / "train_config.json").read_text())["init_from"]["config_changes"]
    assert any("yarn" in c for c in changes), changes
    # at step 0 the weights are the base run's, to the bit
    start = archlab.build(ft.config)
    ckpt.load_initial_weights(ckpt.latest(tmp_path / "base"), start)
    base_sd = ckpt.load_weights(ckpt.latest(tmp_path / "base") / "model.safetensors")
    assert all(torch.equal(start.state_dict()[k], v) for k, v in base_sd.items())
    # and the fine-tune itself resumes like any run
    archlab.train(scaled, corpus, tmp_path / "ft", init_from=tmp_path / "base", resume=True, **{**SMALL, "seq_len": 128, "steps": 3})
    assert ckpt.latest(tmp_path / "ft").name == "step-00000003"


def test_init_from_refuses_weights_of_another_shape_and_another_tokenizer(tmp_path, corpus):
    archlab.train("gpt2", corpus, tmp_path / "gpt2", tiny=True, **SMALL)
    cfg = archlab.load(tmp_path / "gpt2").config
    # a learned position table cannot be made longer by a fine-tune, nor a model wider
    with pytest.raises(TrainError, match=r"do not fit.*saved \(\d+, 64\), the model has \(4096, 64\)"):
        archlab.train(cfg.replace(max_seq_len=4096), corpus, tmp_path / "x", init_from=tmp_path / "gpt2", **SMALL)
    with pytest.raises(TrainError, match=r"do not fit.*saved \(64, 64\), the model has \(96, 96\).*and \d+ more"):
        archlab.train(cfg.replace(d_model=96), corpus, tmp_path / "x", init_from=tmp_path / "gpt2", **SMALL)
    with pytest.raises(TrainError, match="another tokenizer.*'bpe:300'"):
        archlab.train(None, corpus, tmp_path / "y", init_from=tmp_path / "gpt2", tokenizer="bpe:300", **SMALL)
    with pytest.raises(TrainError, match="--init-from .*neither a training run"):
        archlab.train(None, corpus, tmp_path / "z", init_from=tmp_path / "nothing-here", **SMALL)
    with pytest.raises(TrainError, match="--tiny with --init-from"):
        archlab.train(None, corpus, tmp_path / "z", tiny=True, init_from=tmp_path / "gpt2", **SMALL)
    assert not (tmp_path / "x").exists() or not (tmp_path / "x" / "checkpoints").exists()


def test_init_from_takes_the_runs_tokenizer_by_default(tmp_path, corpus, capsys):
    archlab.train("llama-3-8b", corpus, tmp_path / "bpe", tiny=True, tokenizer="bpe:300", **SMALL)
    from archlab.cli import main

    out = tmp_path / "ft"
    assert main(["train", "--init-from", str(tmp_path / "bpe"), "--data", str(corpus), "--out", str(out),
                 "--steps", "2", "--batch", "4", "--seq-len", "32", "--eval-tokens", "256", "--quiet"]) == 0
    assert json.loads((out / "train_config.json").read_text())["tokenizer"] == "bpe:300"
    assert archlab.load_tokenizer(out).vocab_size == 300
    assert main(["train", "--data", str(corpus)]) == 2
    assert "name a MODEL" in capsys.readouterr().err


# ---- checkpoints survive kills and full disks ---------------------------------------------------

def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path, corpus, monkeypatch):
    """A full disk while writing step 8's checkpoint: a clear error, step 4's checkpoint and
    the pointer to it untouched, no half-written folder left behind."""
    run = tmp_path / "run"
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        if "step-00000008" in str(f):
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(TrainError, match=r"cannot write checkpoint .*step-00000008.*No space left on device.*step-00000004 is intact"):
        archlab.train("llama-3-8b", corpus, run, tiny=True, **dict(SMALL, save_every=4))
    assert [p.name for p in (run / "checkpoints").iterdir() if p.is_dir()] == ["step-00000004"]
    assert ckpt.latest(run).name == "step-00000004"
    archlab.load(run)


_KILLER = r"""
import os, sys, time, torch
import archlab
from archlab.training import checkpoint
real = checkpoint.write_json
def slow(path, data):
    real(path, data)
    if "step-00000006" in str(path) and path.name == "state.json":
        print("WRITING", flush=True)
        time.sleep(60)  # killed here, half-way through the checkpoint
checkpoint.write_json = slow
archlab.train("llama-3-8b", sys.argv[1], sys.argv[2], tiny=True, steps=8, batch=4, seq_len=32, eval_every=4,
              eval_tokens=256, save_every=3, quiet=True)
"""


@pytest.mark.slow
def test_kill_during_checkpoint_write_leaves_previous_loadable(tmp_path, corpus):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(archlab.__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", _KILLER, str(corpus), str(run)], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout.readline().strip() == "WRITING"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    assert ckpt.latest(run).name == "step-00000003"
    archlab.load(run)
    # the next run starts from step 3 and replaces the half-written folder
    result = archlab.train("llama-3-8b", corpus, run, tiny=True, resume=True, **dict(SMALL, save_every=3))
    assert result.steps == 8 and ckpt.latest(run).name == "step-00000008"
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]


def test_keep_prunes_old_checkpoints(tmp_path, corpus):
    run = tmp_path / "run"
    archlab.train("llama-3-8b", corpus, run, tiny=True, **dict(SMALL, save_every=2, keep=2))
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest", "step-00000006", "step-00000008"]


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_checkpoint(tmp_path, corpus, monkeypatch):
    run = tmp_path / "run"
    real = loop.batch_starts
    poisoned = {}

    def starts(seed, step, *args):
        poisoned["on"] = step >= 7
        return real(seed, step, *args)

    real_loss = archlab.Transformer.loss

    def loss(self, h, targets):
        value = real_loss(self, h, targets)
        return value * float("nan") if poisoned.get("on") and self.training else value

    monkeypatch.setattr(loop, "batch_starts", starts)
    monkeypatch.setattr(archlab.Transformer, "loss", loss)
    with pytest.raises(TrainError, match=r"step 7: the training loss is nan.*last good checkpoint is .*step-00000004"):
        archlab.train("llama-3-8b", corpus, run, tiny=True, **dict(SMALL, save_every=4))
    monkeypatch.undo()
    assert ckpt.latest(run).name == "step-00000004"
    archlab.load(run)


# ---- bad input -----------------------------------------------------------------------------------

def test_seq_len_beyond_learned_positions_is_refused(tmp_path, corpus):
    with pytest.raises(TrainError, match="--seq-len 512 exceeds the model's context of 256.*learned absolute positions"):
        archlab.train("gpt2", corpus, tmp_path / "run", tiny=True, **{**SMALL, "seq_len": 512})
    assert not (tmp_path / "run").exists()


def test_bfloat16_autocast_trains(tmp_path, corpus):
    result = archlab.train("llama-3-8b", corpus, tmp_path / "run", tiny=True, dtype="bfloat16", **{**SMALL, "steps": 4})
    assert math.isfinite(result.loss) and result.val_losses[4] < result.val_losses[0]
    # weights stay float32 (autocast computes in bfloat16; the optimizer updates float32)
    assert {t.dtype for t in ckpt.load_weights(result.checkpoint / "model.safetensors").values()} == {torch.float32}


def test_a_model_too_big_for_memory_is_refused_before_allocating(tmp_path, corpus, monkeypatch):
    monkeypatch.setattr(memory, "available", lambda device: 24 * 2**30)  # whatever machine runs the tests
    # (6.98B: the 8B preset with the byte tokenizer's 256-row embedding)
    with pytest.raises(TrainError, match=r"llama-3-8b has 6.98B parameters: .* need about 104.0 GiB .* has 24.0 GiB available.*--tiny"):
        archlab.train("llama-3-8b", corpus, tmp_path / "run", **SMALL)
    assert not (tmp_path / "run").exists()


def test_a_config_file_trains(tmp_path, corpus, capsys):
    from archlab.cli import main

    assert main(["config", "qwen3-8b", "--tiny"]) == 0
    path = tmp_path / "mine.json"
    path.write_text(capsys.readouterr().out)
    out = tmp_path / "run"
    assert main(["train", str(path), "--data", str(corpus), "--out", str(out), "--steps", "2", "--batch", "2",
                 "--seq-len", "16", "--eval-tokens", "64", "--quiet"]) == 0
    assert archlab.load(out).config.name == "qwen3-8b-tiny"


def test_rope_models_take_a_longer_context(tmp_path, corpus):
    result = archlab.train("llama-3-8b", corpus, tmp_path / "run", tiny=True, **{**SMALL, "steps": 1, "seq_len": 300, "batch": 1})
    assert result.config.max_seq_len == 300


def test_batch_must_split_over_processes(tmp_path, corpus, monkeypatch):
    monkeypatch.setattr(loop, "start", lambda strategy, device: Processes(0, 3, 0, torch.device("cpu"), "ddp", False))
    with pytest.raises(TrainError, match=r"--batch 4 must be divisible by --grad-accum \(1\) x processes \(3\)"):
        archlab.train("llama-3-8b", corpus, tmp_path / "run", tiny=True, **SMALL)


def test_missing_and_empty_data_are_named(tmp_path):
    with pytest.raises(ValueError, match="nowhere"):
        archlab.train("llama-3-8b", tmp_path / "nowhere", tmp_path / "run", tiny=True, **SMALL)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        archlab.train("llama-3-8b", tmp_path / "empty", tmp_path / "run", tiny=True, **SMALL)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("bad, message", [
    (dict(steps=0), "--steps: must be a whole number >= 1"),
    (dict(batch=6, grad_accum=4), "--batch: must be divisible by --grad-accum"),
    (dict(lr=float("nan")), "--lr: must be a finite number"),
    (dict(dtype="float8"), "--dtype: expected one of auto, float32, bfloat16"),
    (dict(strategy="zero3"), "--strategy: expected one of"),
    (dict(min_lr=1.0), "--min-lr: must be between 0 and lr"),
])
def test_bad_options_fail_before_any_work(bad, message):
    with pytest.raises(TrainError, match=message):
        TrainOptions(**bad)


def test_cli_errors_are_one_line(tmp_path, corpus, capsys):
    from archlab.cli import main

    assert main(["train", "gpt2", "--tiny", "--data", str(corpus), "--seq-len", "999", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("archlab: error: --seq-len 999 exceeds") and err.count("\n") == 1
    assert main(["train", "gpt2", "--n-layers", "3", "--data", str(corpus)]) == 2
    assert "--n-layers shapes the --tiny model" in capsys.readouterr().err


# ---- the schedule and the optimizer --------------------------------------------------------------

def test_warmup_then_cosine():
    o = TrainOptions(steps=100, lr=1e-3, warmup=10)
    assert o.lr_at(5) == pytest.approx(5e-4)
    assert o.lr_at(10) == pytest.approx(1e-3)
    assert o.lr_at(55) == pytest.approx(1e-4 + 0.5 * 9e-4)  # half-way down the cosine
    assert o.lr_at(100) == pytest.approx(1e-4)
    assert all(o.lr_at(s) >= o.lr_at(s + 1) for s in range(10, 100))


from hypothesis import given, settings, strategies as st


@settings(max_examples=200, deadline=None)
@given(steps=st.integers(1, 5000), warmup=st.integers(0, 500), lr=st.floats(1e-6, 1.0), frac=st.floats(0, 1))
def test_lr_stays_between_min_and_peak(steps, warmup, lr, frac):
    if warmup and warmup >= steps:
        with pytest.raises(TrainError, match="--warmup: must be shorter than --steps"):
            TrainOptions(steps=steps, warmup=warmup)
        return
    o = TrainOptions(steps=steps, warmup=warmup, lr=lr, min_lr=lr * frac)
    rates = [o.lr_at(s) for s in range(1, steps + 1)]
    assert all(0 <= r <= lr * (1 + 1e-12) for r in rates)
    assert max(rates) == pytest.approx(lr) or warmup == 0  # the peak is reached (at the end of warmup)
    assert all(r >= o.final_lr * (1 - 1e-12) for r in rates[warmup:])
    assert rates[-1] == pytest.approx(o.final_lr)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(40, 10**7), batch=st.integers(1, 64), seq=st.integers(1, 39), seed=st.integers(0, 2**32 - 1),
       step=st.integers(1, 10**6))
def test_every_window_fits_the_split(n, batch, seq, seed, step):
    starts = loop.batch_starts(seed, step, n, batch, seq)
    assert len(starts) == batch and starts.min() >= 0 and starts.max() + seq + 1 <= n


def test_weight_decay_on_matrices_only():
    model = archlab.build(archlab.tiny("deepseek-v3"))
    opt = loop._optimizer(model, TrainOptions(weight_decay=0.1), torch.device("cpu"))
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    for name, p in model.named_parameters():
        assert (id(p) in decayed) == (p.dim() >= 2), name
    assert any("experts" in n for n, p in model.named_parameters() if id(p) in decayed)


def test_batches_depend_on_seed_and_step_only():
    a = loop.batch_starts(0, 5, 10_000, 8, 32)
    assert (a == loop.batch_starts(0, 5, 10_000, 8, 32)).all()
    assert not (a == loop.batch_starts(0, 6, 10_000, 8, 32)).all()
    assert a.min() >= 0 and a.max() <= 10_000 - 33


# ---- MoE ----------------------------------------------------------------------------------------

def _skewed(monkeypatch):
    """Routers that start out sending most tokens to expert 0 (their weight for it aligned
    with every token's mean direction), so balancing has something to fix."""
    real = archlab.Transformer.init_weights

    def init(self):
        real(self)
        from archlab.nn.moe import Router

        for m in self.modules():
            if isinstance(m, Router):
                with torch.no_grad():
                    m.weight[0] += 0.5
    monkeypatch.setattr(archlab.Transformer, "init_weights", init)


def _final_imbalance(run: Path) -> float:
    last = [r for r in _metrics(run) if "expert_imbalance" in r][-4:]
    return sum(sum(r["expert_imbalance"]) / len(r["expert_imbalance"]) for r in last) / len(last)


@pytest.mark.slow
def test_moe_balancing_moves_expert_load_toward_uniform(tmp_path, corpus, monkeypatch):
    _skewed(monkeypatch)
    opts = dict(SMALL, steps=30, eval_every=30, lr=3e-3)
    runs = {}
    for method, extra in [("none", {}), ("aux", {"aux_coef": 0.1}), ("loss-free", {"bias_rate": 0.01})]:
        runs[method] = tmp_path / method
        archlab.train("mixtral-8x7b", corpus, runs[method], tiny=True, balancing=method, **opts, **extra)
    first = _metrics(runs["none"])[1]["expert_imbalance"]
    start = sum(first) / len(first)
    none, aux, free = (_final_imbalance(runs[m]) for m in ("none", "aux", "loss-free"))
    assert start > 2.0  # the skew took
    # unbalanced, the skew grows (the favoured experts learn fastest); balanced, it shrinks
    assert none > start
    assert aux < min(start, 0.75 * none) and free < min(start, 0.75 * none)
    # the auxiliary loss is logged, and only where it is used
    assert all("aux_loss" in r for r in _metrics(runs["aux"]) if r["step"] > 0)
    assert not any("aux_loss" in r for r in _metrics(runs["loss-free"]))


def test_balancing_follows_the_paper_by_default(tmp_path, corpus):
    from archlab.training.balance import resolve_balancing

    assert resolve_balancing("auto", archlab.tiny("deepseek-v3")) == "loss-free"
    assert resolve_balancing("auto", archlab.tiny("mixtral-8x7b")) == "aux"
    assert resolve_balancing("auto", archlab.tiny("llama-3-8b")) == "none"
    # loss-free on a router without a selection bias: the bias is added (and said)
    result = archlab.train("mixtral-8x7b", corpus, tmp_path / "run", tiny=True, balancing="loss-free", **{**SMALL, "steps": 2})
    assert result.config.moe.router.score_bias


# ---- every architecture trains -------------------------------------------------------------------

@pytest.mark.parametrize("preset", slow_except(archlab.presets(), [p for p in QUICK_PRESETS if p != "bloom-176b"]))
def test_every_preset_trains_at_tiny_size(tmp_path, corpus, preset):
    result = archlab.train(preset, corpus, tmp_path / "run", tiny=True,
                           **{**SMALL, "steps": 6, "eval_every": 6, "lr": 3e-3, "seq_len": 32})
    records = [r for r in _metrics(tmp_path / "run") if r["step"] > 0]
    assert all(math.isfinite(r["loss"]) for r in records)
    assert result.val_losses[6] < result.val_losses[0], "six steps at a high learning rate lower the validation loss"


# ---- several processes (torchrun) -----------------------------------------------------------------

_WORKER = r"""
import sys, archlab
from archlab.training import loop
preset, corpus, out, strategy, stop, resume = sys.argv[1:7]
if int(stop):
    real = loop.batch_starts
    def starts(seed, step, *a):
        if step == int(stop):
            raise SystemExit(0)
        return real(seed, step, *a)
    loop.batch_starts = starts
archlab.train(preset, corpus, out, tiny=True, steps=8, batch=4, seq_len=32, eval_every=4, eval_tokens=256,
              save_every=4, quiet=True, strategy=strategy, resume=resume == "1")
"""


def _torchrun(tmp_path: Path, n: int, *args: str) -> None:
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(archlab.__file__).parents[1])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n), str(script), *args]
    if n == 1:
        cmd = [sys.executable, str(script), *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        # Once, under a load of 6-8 on 2 cores, a launch failed and never again in 4 reruns; its
        # output was lost. A second failure shows both, so a real fault cannot hide behind this.
        first = done.stderr[-3000:]
        if args[-1] == "0":  # a fresh run starts over (a resumed one continues from its latest checkpoint)
            import shutil

            shutil.rmtree(args[2], ignore_errors=True)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"failed twice; first:\n{first}\nsecond:\n{done.stderr[-3000:]}"
        warnings.warn(f"torchrun failed once, then passed; its first output:\n{first}")


def _close(a: Path, b: Path, rel: float = 1e-5) -> None:
    ra, rb = _metrics(a), _metrics(b)
    assert [r["step"] for r in ra] == [r["step"] for r in rb]
    for x, y in zip(ra, rb):
        for k in ("loss", "val_loss"):
            assert (k in x) == (k in y)
            if k in x:
                assert x[k] == pytest.approx(y[k], rel=rel), (x["step"], k)
        assert x.get("expert_imbalance") == y.get("expert_imbalance")


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["llama-3-8b", "deepseek-v3"])
def test_ddp_two_processes_equals_one(tmp_path, corpus, preset):
    archlab.train(preset, corpus, tmp_path / "one", tiny=True, **dict(SMALL, save_every=4))
    _torchrun(tmp_path, 2, preset, str(corpus), str(tmp_path / "two"), "ddp", "0", "0")
    _close(tmp_path / "one", tmp_path / "two")


@pytest.mark.slow
def test_torchrun_runs_the_cli(tmp_path, corpus):
    """`torchrun -m archlab train ...`, as the README says: the same numbers as one process."""
    archlab.train("gpt2", corpus, tmp_path / "one", tiny=True, **dict(SMALL, save_every=4))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(archlab.__file__).parents[1])}
    args = ["train", "gpt2", "--tiny", "--data", str(corpus), "--out", str(tmp_path / "two"), "--steps", "8", "--batch", "4",
            "--seq-len", "32", "--eval-every", "4", "--eval-tokens", "256", "--save-every", "4", "--quiet"]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "archlab", *args],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    _close(tmp_path / "one", tmp_path / "two")
    assert json.loads((tmp_path / "two" / "checkpoints" / "step-00000008" / "state.json").read_text())["processes"] == 2


@pytest.mark.slow
def test_fsdp_saves_and_resumes_on_two_processes_and_on_one(tmp_path, corpus):
    archlab.train("deepseek-v3", corpus, tmp_path / "one", tiny=True, **dict(SMALL, save_every=4))
    _torchrun(tmp_path, 2, "deepseek-v3", str(corpus), str(tmp_path / "a"), "fsdp", "6", "0")
    assert (ckpt.latest(tmp_path / "a") / "dcp").is_dir()
    import shutil

    shutil.copytree(tmp_path / "a", tmp_path / "b")
    _torchrun(tmp_path, 2, "deepseek-v3", str(corpus), str(tmp_path / "a"), "fsdp", "0", "1")  # 2 -> 2 processes
    _torchrun(tmp_path, 1, "deepseek-v3", str(corpus), str(tmp_path / "b"), "none", "0", "1")  # 2 -> 1
    _close(tmp_path / "one", tmp_path / "a")
    _close(tmp_path / "one", tmp_path / "b")
    # the sharded checkpoint loads as a plain model too, and starts a fine-tune on one process
    assert torch.isfinite(archlab.load(tmp_path / "a")(torch.tensor([[1, 2, 3]]))).all()
    ft = archlab.train(None, corpus, tmp_path / "ft", init_from=tmp_path / "a", **{**SMALL, "steps": 1})
    assert ft.val_losses[0] == pytest.approx(_metrics(tmp_path / "a")[-1]["val_loss"], rel=1e-5)


# ---- what the user sees ------------------------------------------------------------------------

class _Stream:
    def __init__(self, tty: bool):
        self.tty, self.text = tty, ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, s: str) -> None:
        self.text += s

    def flush(self) -> None:
        pass


def test_progress_line_on_a_terminal_and_evaluations_only_elsewhere():
    from archlab.training.metrics import Progress

    for tty in (True, False):
        stream = _Stream(tty)
        p = Progress(10, 0, stream=stream)
        for step in range(1, 11):
            p.update(step, 2.0 - step / 10, 1000, 0.01)
            if step == 5:
                p.evaluated(5, 1.5, 1.5)
        p.close()
        lines = [line for line in stream.text.replace("\r", "\n").split("\n") if line.strip("\x1b[K")]
        assert "step 5/10: loss 1.5000 val_loss 1.5000" in stream.text
        if tty:
            assert "[########################] 10/10 loss 1.0000 val 1.5000 | 100,000 tok/s" in stream.text
            assert "left" in stream.text
        else:
            assert len(lines) == 1  # no bar in a log file: the evaluation alone
    quiet = _Stream(True)
    p = Progress(10, 0, quiet=True, stream=quiet)
    p.update(1, 1.0, 10, 0.1)
    p.evaluated(1, 1.0)
    p.close()
    assert quiet.text == ""


def test_a_moe_config_cut_to_its_dense_layers_trains(tmp_path, corpus):
    # deepseek-v3's first three layers are dense: two layers hold no router at all
    result = archlab.train("deepseek-v3", corpus, tmp_path / "run", tiny=True, model_overrides={"n_layers": 2}, **{**SMALL, "steps": 2})
    assert math.isfinite(result.loss)
    assert not any("expert_imbalance" in r for r in _metrics(tmp_path / "run"))
