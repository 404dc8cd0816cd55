"""archlab.train: any architecture, on real text, on one process or many.

    data -> token files (data.py) -> batches chosen by (seed, step) -> forward with targets
    -> + balance loss (MoE) -> backward (micro-steps) -> clip -> AdamW -> balance bias (MoE)
    -> metrics.jsonl, progress, evaluation, checkpoints -> loss.png

Which sequences make step s's batch depends only on the seed and s, so the data position of
a checkpoint is its step, and a resumed run sees exactly the batches the uninterrupted run
would have: on the CPU its losses are the same to the last bit.
"""

from __future__ import annotations

import hashlib
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..catalog import resolve as resolve_config
from ..catalog import tiny as tiny_config
from .. import memory
from ..model import build
from ..errors import CheckpointError
from ..model_config import ConfigError, ModelConfig
from . import checkpoint as ckpt
from .balance import Balancer, imbalance, resolve_balancing, with_selection_bias
from .distributed import Processes, no_sync, start, wrap
from .metrics import MetricsLog, Progress, plot_losses
from .options import TrainError, TrainOptions

RUN_CONFIG = "train_config.json"


@dataclass
class TrainResult:
    out: Path
    steps: int
    loss: float | None  # the last step's training loss
    val_loss: float | None  # the last evaluation's
    val_losses: dict[int, float] = field(default_factory=dict)  # step -> validation loss
    tokens: int = 0
    tokens_per_s: float = 0.0  # training throughput over the whole run (evaluation excluded)
    unigram: float | None = None  # entropy of the validation tokens' frequencies (nats)
    checkpoint: Path | None = None
    config: ModelConfig | None = None


# ---- what to train -------------------------------------------------------------------------------

def _model_config(model: str | ModelConfig | Path, tiny: bool, overrides: dict[str, Any]) -> ModelConfig:
    if isinstance(model, ModelConfig):
        cfg = model
    else:
        p = Path(model)
        if p.is_dir() and (ckpt.is_run(p) or ckpt.is_checkpoint(p)):  # a run's config, e.g. to fine-tune it
            cfg = ckpt.read_config(ckpt.checkpoint_of(p))
        elif p.suffix == ".json" or p.is_file():
            if not p.is_file():
                raise ConfigError(f"{p}: no such config file")
            cfg = ModelConfig.from_json_file(p)
        else:
            cfg = resolve_config(str(model))
    if tiny:
        return tiny_config(cfg, **overrides)
    if overrides:
        return cfg.replace(**overrides)
    return cfg


def _fit_to_data(cfg: ModelConfig, vocab: int, opts: TrainOptions, notes: list[str]) -> ModelConfig:
    """The config adjusted to the tokenizer and sequence length, each change said aloud."""
    if cfg.vocab_size != vocab:
        notes.append(f"vocabulary: {cfg.vocab_size} -> {vocab} (the tokenizer's)")
        cfg = cfg.replace(vocab_size=vocab)
    if opts.seq_len > cfg.max_seq_len:
        if cfg.position_kind == "learned":
            raise TrainError(
                f"--seq-len {opts.seq_len} exceeds the model's context of {cfg.max_seq_len}: {cfg.name or 'this model'} "
                "has learned absolute positions, which cannot go further. Use --seq-len <= "
                f"{cfg.max_seq_len}, or a config with a larger max_seq_len."
            )
        notes.append(f"context: {cfg.max_seq_len} -> {opts.seq_len} (--seq-len)")
        cfg = cfg.replace(max_seq_len=opts.seq_len)
    return cfg


def _tokenizer_hash(tokenizer) -> str:
    return hashlib.sha256(tokenizer.backend.to_str().encode()).hexdigest()[:16]


def _config_difference(a: ModelConfig, b: ModelConfig) -> list[str]:
    da, db = a.resolved().to_dict(), b.resolved().to_dict()
    return [f"{k}: {da.get(k)!r} vs {db.get(k)!r}" for k in sorted(set(da) | set(db)) if da.get(k) != db.get(k) and k != "name"]


@dataclass(frozen=True)
class _Init:
    """Where a fine-tune's weights come from: a run folder's latest checkpoint or one checkpoint."""

    checkpoint: Path
    config: ModelConfig
    step: int
    tokenizer: str | None  # the spec the run was trained with, when its folder says

    @classmethod
    def open(cls, path: Path) -> "_Init":
        try:
            checkpoint = ckpt.checkpoint_of(path)
        except CheckpointError as e:
            raise TrainError(f"--init-from {e}") from None
        state = ckpt.read_json(checkpoint / ckpt.STATE, "the checkpoint's step")
        run_config = checkpoint.parent.parent / RUN_CONFIG
        spec = ckpt.read_json(run_config, "the run's settings").get("tokenizer") if run_config.is_file() else None
        return cls(checkpoint, ckpt.read_config(checkpoint), int(state.get("step", 0)), spec if isinstance(spec, str) else None)


# ---- batches ---------------------------------------------------------------------------------------

def batch_starts(seed: int, step: int, n_tokens: int, batch: int, seq_len: int) -> np.ndarray:
    """Where the `batch` sequences of optimizer step `step` start in the training tokens: a
    function of (seed, step) alone, whatever the number of processes."""
    if n_tokens < seq_len + 1:
        raise TrainError(f"the training split has {n_tokens} tokens, fewer than one sequence of --seq-len {seq_len} + 1")
    rng = np.random.default_rng([seed, step])
    return rng.integers(0, n_tokens - seq_len, size=batch)


def _windows(tokens: np.ndarray, starts: np.ndarray, seq_len: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    rows = np.stack([np.asarray(tokens[s: s + seq_len + 1], dtype=np.int64) for s in starts])
    t = torch.from_numpy(rows).to(device, non_blocking=True)
    return t[:, :-1], t[:, 1:]


def eval_starts(n_tokens: int, seq_len: int, eval_tokens: int) -> np.ndarray:
    """The validation windows: evenly spread over the split, at most eval_tokens tokens."""
    n = min(max(1, eval_tokens // seq_len), (n_tokens - 1) // seq_len)
    if n < 1:
        raise TrainError(f"the validation split has {n_tokens} tokens, fewer than one sequence of --seq-len {seq_len} + 1")
    return np.linspace(0, n_tokens - seq_len - 1, n).astype(np.int64)


# ---- the run ---------------------------------------------------------------------------------------

class _Run:
    def __init__(self, procs: Processes, opts: TrainOptions, out: Path, quiet: bool):
        self.procs, self.opts, self.out, self.quiet = procs, opts, out, quiet
        self.notes: list[str] = []

    def say(self, text: str) -> None:
        if self.procs.main and not self.quiet:
            import sys

            print(text, file=sys.stderr, flush=True)


def _autocast(opts: TrainOptions, device: torch.device):
    dtype = opts.dtype
    if dtype == "auto":
        dtype = "bfloat16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "float32"
    if dtype == "bfloat16":
        return dtype, lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return dtype, nullcontext


def _optimizer(model: torch.nn.Module, opts: TrainOptions, device: torch.device) -> torch.optim.Optimizer:
    # Decay the matrices (embeddings, projections, stacked experts); never gains, biases or
    # the router's selection bias (a buffer anyway), as GPT-2/nanoGPT and most since do.
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    rest = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": opts.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    # foreach=False on the CPU: the same per-parameter arithmetic however the parameters are
    # grouped or sharded, which keeps one process and several equal
    return torch.optim.AdamW(groups, lr=opts.lr, betas=(opts.beta1, opts.beta2), foreach=device.type == "cuda")


@torch.no_grad()
def _evaluate(model, core, data, opts: TrainOptions, procs: Processes, autocast, micro: int) -> float:
    """Mean cross-entropy over the validation windows. Each process takes every world-th
    window; sums of losses and token counts are added over processes, so the mean is the
    same for any number of them. Processes with fewer windows run a batch whose targets are
    all ignored, because FSDP needs every process in every forward."""
    was_training = model.training
    model.eval()
    starts = eval_starts(len(data.val), opts.seq_len, opts.eval_tokens)
    mine = starts[procs.rank:: procs.world]
    rounds = math.ceil(len(starts) / procs.world / micro)
    total = torch.zeros(2, dtype=torch.float64)
    for r in range(rounds):
        chunk = mine[r * micro: (r + 1) * micro]
        ids, targets = _windows(data.val, chunk if len(chunk) else starts[:1], opts.seq_len, procs.device)
        if not len(chunk):
            targets = torch.full_like(targets, -100)
        with autocast():
            mean = model(ids, targets=targets)  # through the wrapper: FSDP gathers what it needs
        n = int((targets != -100).sum())
        total += torch.tensor([float(mean) * n if n else 0.0, n], dtype=torch.float64)
    core.reset_expert_load()
    total = procs.sum(total.to(procs.device)).cpu()
    model.train(was_training)
    return float(total[0] / total[1])


def train(
    model: str | ModelConfig | Path,
    data: str | Path = "shakespeare",
    out: str | Path = "runs/train",
    *,
    tiny: bool = False,
    tokenizer: str | None = None,
    resume: bool = False,
    init_from: str | Path | None = None,
    device: str | None = None,
    quiet: bool = False,
    model_overrides: dict[str, Any] | None = None,
    val_fraction: float = 0.1,
    **options: Any,
) -> TrainResult:
    """Train `model` (a preset name, a config .json file, or a ModelConfig; tiny=True shrinks it
    as `archlab.tiny` does, model_overrides change its fields) on `data` (`"shakespeare"`, a
    text file, a folder of text files or a JSONL file with a "text" field), writing metrics,
    checkpoints and the loss plot into `out`. `options` are TrainOptions' fields (steps, batch,
    seq_len, lr, ...). Under torchrun every process calls this, and they train together.

    init_from (a run folder or one of its checkpoints) starts from those weights instead of
    fresh ones, with a fresh optimizer and learning-rate schedule: a fine-tune. `model` may then
    be None (the checkpoint's own config) or a config that differs only where the weights'
    shapes do not (RoPE scaling, the context length); the differences are said at the start and
    kept in the run's train_config.json. The tokenizer defaults to the one that run used
    (otherwise to bytes), and must be the same."""
    opts = options.pop("options", None) or TrainOptions(**options)
    init = _Init.open(Path(init_from)) if init_from is not None else None
    if model is None:
        if init is None:
            raise TrainError("no model given: name a preset, a config file or a run folder, or give init_from")
        if tiny:
            raise TrainError(f"--tiny with --init-from {init_from}: the checkpoint's weights fix the model's size")
        model = init.config
    if tokenizer is None:
        tokenizer = init.tokenizer if init is not None and init.tokenizer else "byte"
    procs = start(opts.strategy, device)
    try:
        return _train(procs, opts, model, data, Path(out), tiny, tokenizer, resume, quiet, model_overrides or {},
                      val_fraction, init)
    finally:
        procs.close()


def _prepare_data(run: _Run, data, tokenizer: str, val_fraction: float, out: Path, resume: bool):
    from ..data import prepare

    import sys

    def progress(done: int, total: int) -> None:  # tokenizing is the one long wait before step 0
        if run.procs.main and not run.quiet and sys.stderr.isatty():
            sys.stderr.write(f"\rtokenizing {data}: {done}/{total} documents" + ("\r\x1b[K" if done == total else ""))
            sys.stderr.flush()

    # the first process tokenizes (once, into the cache); the others then find it there
    result: Any = None
    if run.procs.main:
        try:
            result = prepare(data, tokenizer, val_fraction=val_fraction, progress=progress)
        except Exception as e:
            run.procs.all_ok(False)
            raise e
    if not run.procs.all_ok(True):
        raise TrainError("the first process could not prepare the data (its error is above)")
    if not run.procs.main:
        result = prepare(data, tokenizer, val_fraction=val_fraction)
    return result


def _train(procs: Processes, opts: TrainOptions, model_arg, data_arg, out: Path, tiny: bool, tokenizer_spec: str,
           resume: bool, quiet: bool, overrides: dict, val_fraction: float, init: _Init | None = None) -> TrainResult:
    run = _Run(procs, opts, out, quiet)
    W, A = procs.world, opts.grad_accum
    if opts.batch % (W * A):
        raise TrainError(f"--batch {opts.batch} must be divisible by --grad-accum ({A}) x processes ({W}) = {A * W}: "
                         "it is the global batch, split evenly over every micro-step of every process")
    micro = opts.batch // (W * A)
    previous = ckpt.latest(out) if resume else None
    if resume and previous is None:
        raise TrainError(f"--resume: {out} has no checkpoint to continue ({out / ckpt.CHECKPOINTS / ckpt.LATEST} is missing)")
    if not resume and out.exists() and (out / ckpt.CHECKPOINTS).exists():
        raise TrainError(f"{out} already holds a run ({out / ckpt.CHECKPOINTS}); pass --resume to continue it, "
                         "or choose another --out (nothing was changed)")

    # the model first: a bad config fails before the data is tokenized
    cfg = _model_config(model_arg, tiny, overrides)
    data = _prepare_data(run, data_arg, tokenizer_spec, val_fraction, out, resume)
    tok = data.tokenizer
    cfg = _fit_to_data(cfg, data.vocab_size, opts, run.notes)
    balancing = resolve_balancing(opts.balancing, cfg)
    if balancing == "loss-free" and not cfg.moe.router.score_bias:
        run.notes.append("router: a selection-only bias added (loss-free balancing adjusts it)")
        cfg = with_selection_bias(cfg)
    has_experts = any(s.ffn == "moe" for s in cfg.layers)
    meta = {
        "model": cfg.name, "data": str(data_arg), "data_hash": data.meta.get("key"), "tokenizer": tokenizer_spec,
        "tokenizer_hash": _tokenizer_hash(tok), "balancing": balancing, "options": opts.to_dict(),
    }

    if init is not None:
        changes = _config_difference(init.config, cfg)
        meta["init_from"] = {"checkpoint": str(init.checkpoint), "step": init.step, "config_changes": changes}
        if previous is not None:
            run.notes.append(f"--init-from {init.checkpoint}: not read, the run's own checkpoint {previous.name} holds its weights")
        else:
            _check_init_tokenizer(init, meta)
            run.notes.append(f"starting from the weights of {init.checkpoint} (step {init.step}), with a fresh optimizer"
                             + (f"; the config differs in {'; '.join(changes)}" if changes else ""))

    if previous is not None:
        _check_resume(out, previous, cfg, meta, opts)

    _check_memory(cfg, procs)
    dtype_name, autocast = _autocast(opts, procs.device)
    torch.manual_seed(opts.seed)
    core = build(cfg, device=procs.device)
    if init is not None and previous is None:
        ckpt.load_initial_weights(init.checkpoint, core)
    core.train()
    model = wrap(core, procs)
    if opts.compile:
        model = torch.compile(model)
    optimizer = _optimizer(model, opts, procs.device)
    balancer = Balancer(core, balancing, opts.aux_coef, opts.bias_rate)

    step, tokens, train_time = 0, 0, 0.0
    if previous is not None:
        state = ckpt.restore(previous, model, optimizer, procs)
        step, tokens, train_time = state["step"], state["tokens"], state.get("train_time", 0.0)
        run.say(f"resuming {out} from {previous.name} (step {step}, {tokens:,} tokens)")
    if step >= opts.steps:
        raise TrainError(f"--resume: the run is already at step {step}, and --steps is {opts.steps}; raise --steps to train further")

    if procs.main:
        out.mkdir(parents=True, exist_ok=True)
        if previous is None:
            ckpt.write_json(out / ckpt.MODEL_CONFIG, cfg.to_dict())
            ckpt.write_json(out / RUN_CONFIG, meta)
            tok.save(out)
    procs.barrier()

    from ..analysis import analyze

    n_params = analyze(cfg).total_params
    unigram = data.unigram_entropy("val")
    for note in run.notes:
        run.say(f"note: {note}")
    run.say(f"training {cfg.name or 'model'} ({n_params / 1e6:.2f}M parameters) on {data_arg}: "
            f"{len(data.train):,} training / {len(data.val):,} validation tokens, vocab {data.vocab_size}; "
            f"{opts.steps} steps x {opts.batch} x {opts.seq_len} tokens, {W} process(es) [{procs.strategy}], "
            f"{procs.device}, {dtype_name}" + (f", MoE balancing: {balancing}" if has_experts else ""))

    log = MetricsLog(out / "metrics.jsonl", resume_step=step if previous is not None else None) if procs.main else None
    progress = Progress(opts.steps, step, quiet=quiet or not procs.main)
    result = TrainResult(out=out, steps=step, loss=None, val_loss=None, unigram=unigram, config=cfg)
    last_good = previous

    def evaluate(at: int, loss: float | None) -> float:
        v = _evaluate(model, core, data, opts, procs, autocast, micro)
        result.val_losses[at] = v
        result.val_loss = v
        progress.evaluated(at, v, loss)
        return v

    def save(at: int) -> Path:
        state = {"tokens": tokens, "train_time": train_time, "data_position": {"step": at, "seed": opts.seed},
                 "data_hash": meta["data_hash"], "tokenizer_hash": meta["tokenizer_hash"], "options": opts.to_dict()}
        path = ckpt.save(out, at, model, optimizer, procs, state, cfg, tok, opts.keep)
        return path

    try:
        if previous is None:
            v = evaluate(0, None)
            if log:
                log.write({"step": 0, "tokens": 0, "val_loss": v})
        while step < opts.steps:
            step += 1
            t0 = time.perf_counter()
            lr = opts.lr_at(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            starts = batch_starts(opts.seed, step, len(data.train), opts.batch, opts.seq_len).reshape(A, W, micro)
            core.reset_expert_load()
            loss_sum = torch.zeros((), device=procs.device)
            aux_sum = torch.zeros((), device=procs.device)
            for m in range(A):
                ids, targets = _windows(data.train, starts[m, procs.rank], opts.seq_len, procs.device)
                with no_sync(model, procs, last_micro_step=m == A - 1), autocast():
                    loss = model(ids, targets=targets)
                    aux = balancer.aux_loss()
                    total = loss if aux is None else loss + aux
                    (total / A).backward()
                loss_sum += loss.detach() / A
                if aux is not None:
                    aux_sum += aux.detach() / A
            logged = procs.mean(torch.stack([loss_sum, aux_sum]).float()).cpu()
            loss_value = float(logged[0])
            if not math.isfinite(loss_value):
                kept = f"the last good checkpoint is {last_good}" if last_good else "no checkpoint had been written yet"
                raise TrainError(f"step {step}: the training loss is {loss_value}; training stopped before the "
                                 f"optimizer step (lower --lr, or check the data); {kept}")
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), opts.clip if opts.clip > 0 else float("inf"))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            record: dict[str, Any] = {"step": step, "loss": loss_value, "lr": lr}
            if has_experts:
                load = procs.sum(core.expert_load())
                balancer.after_step(load)
                record["expert_imbalance"] = imbalance(load)  # per MoE layer: max load / mean load
                if balancing == "aux":
                    record["aux_loss"] = float(logged[1])
            if procs.device.type == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            train_time += dt
            step_tokens = opts.batch * opts.seq_len
            tokens += step_tokens
            norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm
            record.update(tokens=tokens, tokens_per_s=round(step_tokens / dt, 1), grad_norm=round(float(norm), 5))
            result.loss, result.steps, result.tokens = loss_value, step, tokens
            progress.update(step, loss_value, step_tokens, dt)
            if step % opts.eval_every == 0 or step == opts.steps:
                record["val_loss"] = evaluate(step, loss_value)
                if has_experts:  # the whole picture now and then: each expert's share, per layer
                    record["expert_load"] = [[round(x, 4) for x in row] for row in (load / load.sum(-1, keepdim=True)).tolist()]
            if log:
                log.write(record)
            if (opts.save_every and step % opts.save_every == 0) or step == opts.steps:
                last_good = save(step)
                result.checkpoint = last_good
    finally:
        progress.close()
        if log:
            log.close()
    result.tokens_per_s = tokens / train_time if train_time else 0.0
    if procs.main:
        plot_losses(out / "metrics.jsonl", out / "loss.png", f"{cfg.name or 'model'} on {data_arg} ({n_params / 1e6:.2f}M parameters)", unigram)
        run.say(f"done: {step} steps, loss {result.loss:.4f}, val_loss {result.val_loss:.4f} "
                f"(unigram baseline {unigram:.4f}), {result.tokens_per_s:,.0f} tokens/s; {out}/loss.png, {result.checkpoint}")
    procs.barrier()  # the run folder is whole for every process that reads it next
    return result


# float32 weights, gradients and AdamW's two moments: 16 bytes per parameter before activations
BYTES_PER_PARAM = 16


def _check_memory(cfg: ModelConfig, procs: Processes) -> None:
    """Refuse a model whose weights and optimizer state alone cannot fit, before allocating it
    (`archlab train llama-3-8b` without --tiny would otherwise start filling memory)."""
    memory.check(
        cfg, procs.device, BYTES_PER_PARAM, what="its weights, gradients and AdamW state", error=TrainError,
        share=procs.world if procs.strategy == "fsdp" else 1,
        ways_out="Train the --tiny version, a smaller config, or shard it over more processes (--strategy fsdp)",
    )


def _check_init_tokenizer(init: _Init, meta: dict) -> None:
    from ..tokenizer import load_tokenizer

    try:
        theirs = _tokenizer_hash(load_tokenizer(init.checkpoint))
    except CheckpointError as e:
        raise TrainError(f"--init-from: {e}") from None
    if theirs != meta["tokenizer_hash"]:
        raise TrainError(f"--init-from {init.checkpoint}: its model was trained with another tokenizer "
                         f"({init.tokenizer or 'the one saved beside it'}) than --tokenizer {meta['tokenizer']!r}: the "
                         "token ids would mean different things; leave --tokenizer out to use the run's own")


def _check_resume(out: Path, previous: Path, cfg: ModelConfig, meta: dict, opts: TrainOptions) -> None:
    saved = ckpt.read_json(out / RUN_CONFIG, "the run's settings")
    try:
        saved_cfg = ModelConfig.from_dict(ckpt.read_json(previous / ckpt.MODEL_CONFIG, "the model's config"))
    except (TypeError, ValueError) as e:
        raise TrainError(f"{previous / ckpt.MODEL_CONFIG}: not a valid model config ({e})") from None
    if saved.get("tokenizer_hash") != meta["tokenizer_hash"]:
        raise TrainError(f"--resume: {out} was trained with tokenizer {saved.get('tokenizer')!r}; this command's "
                         f"tokenizer ({meta['tokenizer']!r}) is a different one")
    if saved.get("data_hash") != meta["data_hash"]:
        raise TrainError(f"--resume: {out} was trained on {saved.get('data')!r} (tokens {saved.get('data_hash')}); "
                         f"{meta['data']!r} gives different tokens ({meta['data_hash']})")
    diff = _config_difference(saved_cfg, cfg)
    if diff:
        raise TrainError(f"--resume: {out} trained {saved_cfg.name or 'another model'}, a different architecture "
                         f"from the one asked for ({cfg.name or 'model'}): " + "; ".join(diff[:6]))
    before = saved.get("options", {})
    changed = [f"--{k.replace('_', '-')} {before[k]} -> {getattr(opts, k)}" for k in TrainOptions.RESUME_FIXED
               if k in before and before[k] != getattr(opts, k)]
    if changed:
        raise TrainError("--resume: these options decide which tokens each step sees and must stay as they were: " + ", ".join(changed))
